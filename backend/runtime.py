"""The services one process runs on, built once from the settings.

`Runtime.open(settings)` connects the store, creates the indexes and wires the
engine, auth and metrics; the API's lifespan and the worker both use it.

The layers started on top of it keep their part here, as typed attributes
(None until that layer starts): `limits` (the API's rate limits, set by
`create_app`), `realtime` (backend/realtime), `ai_provider` (the shared AI
provider, backend/ai), `worker` (the in-process worker of `tandem dev`) and
`checkin` (what `POST /api/dev/checkin` runs, set by backend/composition.py in dev mode).
The layers are imported for their types only, so the worker's process never
loads the HTTP or WebSocket code (tests/test_layout.py).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Awaitable, Protocol

from backend.auth.directory import MemberDirectory
from backend.auth.invitations import Invitations
from backend.auth.tokens import TokenVerifier
from backend.engine import ActionEngine
from backend.metrics import Metrics
from backend.settings import Settings
from backend.store.client import Database, open_database
from backend.store.indexes import ensure_indexes
from backend.store.store import Store
from backend.store.users import KnownUsers

if TYPE_CHECKING:
    from backend.ai.provider import Provider
    from backend.api.ratelimit import Limits
    from backend.realtime import Realtime
    from worker.main import Worker

log = logging.getLogger("tandem")


class RunsCheckin(Protocol):
    """Runs one AI check-in now and returns its summary (worker/checkin.py `Checkin.run`)."""

    def __call__(self, *, trigger: str, collaboration_ids: list[str] | None) -> Awaitable[dict[str, Any]]: ...


class Runtime:
    def __init__(self, settings: Settings, handle: Database):
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
        self.limits: Limits | None = None
        self.realtime: Realtime | None = None
        self.ai_provider: Provider | None = None
        self.worker: Worker | None = None
        self.checkin: RunsCheckin | None = None

    @classmethod
    async def open(cls, settings: Settings) -> "Runtime":
        handle = await open_database(settings)
        await ensure_indexes(handle.db)
        return cls(settings, handle)

    async def close(self) -> None:
        await self.verifier.aclose()
        await self.directory.aclose()
        await self.handle.close()
