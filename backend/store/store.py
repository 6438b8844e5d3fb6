"""`Store`: the repositories over one database handle. Everything above it uses these."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from backend.clock import utcnow
from backend.settings import Settings
from backend.store.approvals import Approvals
from backend.store.audit import Audit
from backend.store.checkin_runs import CheckinRuns
from backend.store.collaborations import Collaborations
from backend.store.dev_users import DevUsers
from backend.store.driver import ChangeStream
from backend.store.idempotency import Idempotency
from backend.store.jobs import Jobs
from backend.store.messages import Messages
from backend.store.presence_records import Presence
from backend.store.reminders import Reminders
from backend.store.stream import Stream
from backend.store.workers import Workers
from backend.store.writes import Writer

if TYPE_CHECKING:
    from backend.store.client import Database


# The collections whose changes become realtime events (backend/realtime/changes.py).
WATCHED = ("collaborations", "messages", "approvals", "presence")


class Store:
    def __init__(self, handle: Database, settings: Settings):
        self.handle = handle
        self.db = handle.db
        self.embedded: bool = handle.embedded
        writer = Writer(handle.client, handle.embedded)
        self.collaborations = Collaborations(self.db, writer, settings.max_document_bytes)
        self.messages = Messages(self.db, writer)
        self.audit = Audit(self.db)
        self.approvals = Approvals(self.db, writer)
        self.presence = Presence(self.db)
        self.jobs = Jobs(self.db)
        self.checkin_runs = CheckinRuns(self.db)
        self.reminders = Reminders(self.db)
        self.workers = Workers(self.db)
        self.dev_users = DevUsers(self.db)
        self.idempotency = Idempotency(self.db, settings.idempotency_ttl, utcnow)
        self.stream = Stream(self.db)

    def watch_changes(self, resume_after: dict[str, Any] | None, max_await_ms: int) -> ChangeStream:
        """One database-level change stream over WATCHED, resuming after `resume_after` (None: from now).

        An async context manager with `alive`, `try_next()` and `resume_token`, on real MongoDB
        and on the embedded store alike. No `fullDocument: updateLookup`: on one stream over
        four collections it would fetch every collaboration document for every change."""
        pipeline = [{"$match": {"ns.coll": {"$in": list(WATCHED)}}}]
        return self.db.watch(pipeline, resume_after=resume_after, max_await_time_ms=max_await_ms)
