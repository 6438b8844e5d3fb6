"""The services one process runs on, built once from the settings.

`Runtime.open(settings)` connects the store, creates the indexes and wires the
engine, auth and metrics; the API's lifespan and the worker both use it.
"""

from __future__ import annotations

import logging
from typing import Any

from backend.metrics import Metrics
from backend.auth.directory import MemberDirectory
from backend.auth.invitations import Invitations
from backend.auth.tokens import TokenVerifier
from backend.store.users import KnownUsers
from backend.engine import ActionEngine
from backend.settings import Settings
from backend.store.client import open_database
from backend.store.indexes import ensure_indexes
from backend.store.store import Store

log = logging.getLogger("tandem")


class Runtime:
    def __init__(self, settings: Settings, handle: Any):
        self.settings = settings
        self.handle = handle
        self.store = Store(handle, settings)
        self.metrics = Metrics()
        self.users = KnownUsers(self.store.db)
        self.directory = MemberDirectory(settings, self.store.dev_users, users=self.users)
        self.invitations = Invitations(self.store)
        self.directory.on_added.append(self.invitations.forget)  # an add here: that user is checked again
        self.verifier = TokenVerifier(settings)
        self.engine = ActionEngine(self.store, settings, self.directory)
        self.extras: dict[str, Any] = {}

    @classmethod
    async def open(cls, settings: Settings) -> "Runtime":
        handle = await open_database(settings)
        await ensure_indexes(handle.db)
        return cls(settings, handle)

    async def close(self) -> None:
        await self.verifier.aclose()
        await self.directory.aclose()
        await self.handle.close()
