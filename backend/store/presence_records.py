"""The `presence` collection: who is connected to which collaboration, on any API process.

One document per (collaboration, connection): `_id` is `"<collaborationId>/<connectionId>"`,
so a delete event alone still names its collaboration. `expiresAt` carries a
TTL index; each API process refreshes the documents of its own connections
(`heartbeat`), so those of a process that died expire on their own.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from backend.clock import utcnow
from backend.store.driver import Db
from backend.store.size import check_storable


def presence_id(collaboration_id: str, connection_id: str) -> str:
    return f"{collaboration_id}/{connection_id}"


def collaboration_of(presence_id_: Any) -> str | None:
    """The collaboration id inside a presence document's `_id` (None if it is not one of ours)."""
    if not isinstance(presence_id_, str) or "/" not in presence_id_:
        return None
    return presence_id_.rsplit("/", 1)[0]


class Presence:
    def __init__(self, db: Db):
        self._coll = db["presence"]

    async def upsert(
        self, collaboration_id: str, connection_id: str, user_id: str, process_id: str, state: dict[str, Any], ttl: int
    ) -> None:
        check_storable(state, "state")
        now = utcnow()
        await self._coll.update_one(
            {"_id": presence_id(collaboration_id, connection_id)},
            {
                "$set": {"state": state, "updatedAt": now, "expiresAt": now + timedelta(seconds=ttl)},
                "$setOnInsert": {
                    "collaborationId": collaboration_id,
                    "connectionId": connection_id,
                    "userId": user_id,
                    "process": process_id,
                    "since": now,
                },
            },
            upsert=True,
        )

    async def remove(self, collaboration_id: str, connection_id: str) -> None:
        await self._coll.delete_one({"_id": presence_id(collaboration_id, connection_id)})

    async def remove_connection(self, connection_id: str) -> None:
        await self._coll.delete_many({"connectionId": connection_id})

    async def remove_process(self, process_id: str) -> None:
        await self._coll.delete_many({"process": process_id})

    async def heartbeat(self, process_id: str, ttl: int) -> None:
        """Push back the expiry of every document of this process (one write, whatever their number)."""
        expires = utcnow() + timedelta(seconds=ttl)
        await self._coll.update_many({"process": process_id}, {"$set": {"expiresAt": expires}})

    async def for_collaboration(self, collaboration_id: str, now: datetime | None = None) -> list[dict[str, Any]]:
        """The live documents of a collaboration, oldest first (expired ones are left out)."""
        now = now or utcnow()
        query = {"collaborationId": collaboration_id, "expiresAt": {"$gt": now}}
        return await self._coll.find(query).sort("since", 1).to_list(length=1000)
