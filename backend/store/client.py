"""Open the database: motor on MONGODB_URI, else the embedded store.

Everything above `backend.store` gets a `Database` handle and uses
`handle.db["collaborations"]` with motor's API; it never needs to know which
store it is talking to. Both kinds are made here, as the driver Protocols
(backend/store/driver.py): mypy checks the embedded store's classes against them.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import cast

from motor.motor_asyncio import AsyncIOMotorClient
from pymongo.errors import PyMongoError

from backend.settings import Settings
from backend.store.driver import Client, Db, Document
from backend.store.embedded import EmbeddedClient, EmbeddedDatabase

log = logging.getLogger(__name__)

EMBEDDED_WARNING = (
    "EMBEDDED STORE: MONGODB_URI is not set, so all data is kept in memory only "
    "and is LOST when this process ends. Set MONGODB_URI to a MongoDB replica set to keep it."
)


@dataclass(eq=False)
class Database:
    """An open database: `db` is a motor database (or the embedded look-alike)."""

    db: Db
    client: Client  # AsyncIOMotorClient or EmbeddedClient
    embedded: bool

    async def close(self) -> None:
        """Close the client; on the embedded store every open change stream ends."""
        self.client.close()

    def inject_change_stream_error(self, exc: BaseException, times: int = 2) -> None:
        """Tests only: the next `times` read attempts of every open change stream raise `exc`
        (a resumable error is retried once inside a read, so times=1 is never seen)."""
        if not isinstance(self.db, EmbeddedDatabase):  # `embedded` is False
            raise RuntimeError("only the embedded store can inject change-stream errors")
        self.db.inject_change_stream_error(exc, times)


async def open_database(settings: Settings) -> Database:
    if settings.mongodb_uri:
        client: AsyncIOMotorClient[Document] = AsyncIOMotorClient(settings.mongodb_uri, tz_aware=True)
        log.info("store: MongoDB, database %r", settings.mongodb_db)
        # The one place motor is taken on trust: its stubs declare a change stream's `alive` a
        # method (at runtime it is a property, which backend/realtime/changes.py reads) and its
        # `resume_token` a Mapping, so its database does not match `Db.watch` as written. Every
        # other call of `Db` motor's stubs do match (test_store_driver.py lists them on motor).
        return Database(cast(Db, client[settings.mongodb_db]), client, embedded=False)
    log.warning(EMBEDDED_WARNING)
    embedded = EmbeddedClient(history=settings.change_history)
    return Database(embedded[settings.mongodb_db], embedded, embedded=True)


async def close(handle: Database) -> None:
    await handle.close()


async def ping(handle: Database, timeout: float = 2.0) -> bool:
    """True when the database answers a ping within `timeout` seconds (for /api/ready)."""
    try:
        await asyncio.wait_for(handle.db.command("ping"), timeout)
    except (PyMongoError, asyncio.TimeoutError):
        return False
    return True
