"""The change-stream reader: one per API process, MongoDB changes in, Tandem events out.

One database-level change stream over collaborations, messages, approvals and
presence (`$match` on `ns.coll`). Each change becomes an event
(`backend.realtime.events`) handed to `publish` — the hub's, which writes the frames
to the transports; the reader holds no socket. Inserts carry their document; where an update needs the
whole current document (an approval, the presence list) the reader reads it,
which is what `fullDocument: "updateLookup"` would do, but only for those: on
one stream over four collections, updateLookup would also fetch every
collaboration document (up to megabytes) for every change, and
collaboration_updated is built from `updateDescription` alone. The stream
sequence (`seq`, backend/store/stream.py) is taken off the changes and put on
the event; a change of `seq` alone (a message's bump) makes no event.

It keeps the latest resume token (also the post-batch token of a quiet
stream), so after a transient error it resumes right after the last change it
handled: nothing lost, nothing twice. When MongoDB no longer holds that point
(code 286, history lost) it opens a fresh stream and calls `lost` — the hub
then tells every subscriber `resync_required`, since any collaboration may
have changed meanwhile.

A drop, rename or dropDatabase of what it watches, and the invalidate event that
ends a stream, are not changes to publish: the reader logs them, opens a fresh
stream from now (an invalidate token can only be resumed with startAfter, and
the collections are not what they were) and then calls `lost("invalidated")`,
so every subscriber resyncs from a snapshot taken after the new stream opened.

Any other exception (a bug here or in the hub's `publish`) must not end the
reader either: it is logged, `lost("internal")` tells every subscriber to
resync (what the failed change should have told them is in their next
snapshot), and the stream reopens after the failed change. `running` is
false from the error until the stream is open again.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable

from backend.metrics import Metrics
from backend.realtime import events as ev
from backend.store.failures import StoreError, StreamClosed, history_lost
from backend.store.presence_records import collaboration_of
from backend.store.store import Store

log = logging.getLogger("tandem.realtime")

MAX_AWAIT_MS = 500
RETRY_FIRST, RETRY_MAX = 0.05, 5.0
# operation types that end what the stream was following: no documentKey, nothing to publish
ENDING = frozenset({"drop", "rename", "dropDatabase", "invalidate"})


class StreamInvalidated(Exception):
    """The stream saw a drop, rename, dropDatabase or invalidate event."""

    def __init__(self, change: dict[str, Any]):
        super().__init__(change.get("operationType"))
        self.operation = change.get("operationType")
        self.ns = change.get("ns")


class ChangeReader:
    def __init__(
        self,
        store: Store,
        publish: Callable[[ev.Event], None],
        lost: Callable[[str], object],
        metrics: Metrics | None = None,
        *,
        max_await_ms: int = MAX_AWAIT_MS,
        idle: Callable[[], None] | None = None,
        wanted: Callable[[str], bool] | None = None,
    ):
        self._store = store
        self._publish = publish
        self._lost = lost
        # Does anyone here listen to this collaboration? Presence events need a read of the
        # presence list, skipped when nobody would get them (a subscriber who registers later
        # reads the list itself when subscribing). None: every collaboration is wanted.
        self._wanted = wanted
        self._idle = idle  # told after each empty batch: everything committed before it was read is published
        self._metrics = metrics
        self._max_await_ms = max_await_ms
        self._task: asyncio.Task[None] | None = None
        self._opened = asyncio.Event()
        self._open = False  # a stream is open and being read
        self.token: dict[str, Any] | None = None  # resume after this

    async def start(self, timeout: float = 10.0) -> None:
        """Start reading; returns once the first stream is open, so no later change is missed."""
        self._task = asyncio.get_running_loop().create_task(self._run(), name="tandem-change-reader")
        try:
            await asyncio.wait_for(asyncio.shield(self._opened.wait()), timeout)
        except asyncio.TimeoutError:
            log.error("change stream did not open within %.0f s; retrying in the background", timeout)

    @property
    def running(self) -> bool:
        """A stream is open and being read (/api/ready): false while reopening, once stopped, if the task died."""
        return self._open and self._task is not None and not self._task.done()

    async def stop(self) -> None:
        self._open = False
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            except Exception:
                log.exception("the change reader had stopped on an error")
            self._task = None

    # -- the loop

    async def _run(self) -> None:
        delay = RETRY_FIRST
        self._fresh_start: str | None = None  # the reason to tell subscribers once a fresh stream is open
        while True:
            self._opened_now = False
            try:
                await self._read()
            except asyncio.CancelledError:
                self._open = False
                raise
            except StreamInvalidated as ended:
                self._open = False
                log.warning("change stream: %s of %s; starting afresh, subscribers resync", ended.operation, ended.ns)
                self._restarted("invalidated")
                self.token, self._fresh_start = None, "invalidated"
                continue
            except StoreError as exc:
                self._open = False
                if history_lost(exc):
                    log.warning(
                        "change stream history lost (code %s): starting afresh, subscribers resync",
                        getattr(exc, "code", None),  # history_lost: an OperationFailure, which has one
                    )
                    self._restarted("history_lost")
                    self.token, self._fresh_start = None, "history_lost"
                    continue
                if self._opened_now:
                    delay = RETRY_FIRST
                log.warning("change stream error, resuming in %.2f s: %r", delay, exc)
                self._restarted("error")
            except Exception:
                self._open = False
                if self._opened_now:
                    delay = RETRY_FIRST
                log.exception("change reader failed: every subscriber resyncs; resuming in %.2f s", delay)
                self._restarted("internal")
                self._tell_lost("internal")
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX)

    async def _read(self) -> None:
        async with self._store.watch_changes(self.token, self._max_await_ms) as stream:
            self._open = self._opened_now = True
            self._opened.set()
            if self._fresh_start:
                reason, self._fresh_start = self._fresh_start, None
                self._tell_lost(reason)  # after the new stream's start: resubscribing clients miss nothing
            while stream.alive:
                change = await stream.try_next()
                if change is not None and change.get("operationType") in ENDING:
                    raise StreamInvalidated(change)
                if change is not None:
                    try:
                        await self._handle(change)
                    except Exception:
                        self.token = stream.resume_token or self.token  # the resync stands for it: not again
                        raise
                elif self._idle is not None:
                    self._idle()
                self.token = stream.resume_token or self.token
        self._open = False
        raise StreamClosed("the change stream was closed")

    def _tell_lost(self, reason: str) -> None:
        try:
            self._lost(reason)
        except Exception:
            log.exception("could not tell subscribers to resync", extra={"reason": reason})

    def _restarted(self, reason: str) -> None:
        if self._metrics is not None:
            self._metrics.reader_restarts.labels(reason).inc()

    # -- one change

    async def _handle(self, change: dict[str, Any]) -> None:
        try:
            event = await self._event(change)
        except Exception:
            log.exception("could not turn a change into an event", extra={"ns": change.get("ns")})
            cid = _collaboration_of(change)
            event = ev.resync_required(cid, "internal") if cid else None
        if event is None:
            return
        self._publish(event)
        if self._metrics is not None:
            self._metrics.events.labels(event.type).inc()

    async def _event(self, change: dict[str, Any]) -> ev.Event | None:
        coll, op = change["ns"]["coll"], change["operationType"]
        doc = change.get("fullDocument")
        if coll == "collaborations":
            return await self._collaboration(change, op, doc)
        if coll == "messages":
            return ev.message_created(doc) if op == "insert" and doc else None
        if coll == "approvals":
            if op == "insert" and doc:
                return ev.approval_event(ev.APPROVAL_CREATED, doc)
            if op in ("update", "replace"):
                doc = doc if op == "replace" else await self._store.approvals.get(change["documentKey"]["_id"])
                return ev.approval_event(ev.APPROVAL_UPDATED, doc) if doc else None
            return None
        if coll == "presence":
            cid = collaboration_of(change["documentKey"]["_id"])
            if cid is None or ev.presence_only_heartbeat(change):
                return None
            if self._wanted is not None and not self._wanted(cid):
                return None
            return ev.presence_event(cid, await self._store.presence.for_collaboration(cid))
        return None

    async def _collaboration(self, change: dict[str, Any], op: str, doc: dict[str, Any] | None) -> ev.Event | None:
        cid = change["documentKey"]["_id"]
        if op == "insert" and doc:
            return ev.collaboration_inserted(doc)
        if op != "update":  # replace, delete: not expressible as changes
            return ev.resync_required(cid, "deleted" if op == "delete" else "replaced")
        if (change.get("updateDescription") or {}).get("truncatedArrays"):
            doc = await self._store.collaborations.get(cid)  # the arrays are sent whole, if still at that version
        fields = ev.changed_fields(change, doc)
        seq = fields[0].pop("seq", None) if fields is not None else None  # the stream's (backend/store/stream.py)
        if fields is not None and seq is not None and not fields[0] and not fields[1]:
            return None  # a message's seq bump: its message_created carries the seq
        if fields is None or not isinstance(fields[0].get("version"), int):
            log.warning(
                "a collaboration change that cannot be sent as changes; subscribers resync",
                extra={"collaborationId": cid},
            )
            return ev.resync_required(cid, "unexpressible_change")
        updated, removed = fields
        last = updated.get("lastAction")
        if not isinstance(last, dict):
            last = await self._last_action(cid, updated["version"])
            # what the write set (and its stored changes hold, backend/store/stream.py)
            if last is not None and not any(path.startswith("lastAction.") for path in updated):
                updated["lastAction"] = last
        return ev.collaboration_updated(cid, updated, removed, last, seq if isinstance(seq, int) else None)

    async def _last_action(self, cid: str, version: int) -> dict[str, Any] | None:
        """lastAction at `version` when the change does not carry it. The engine sets it whole
        (backend/domain/diff.py set_whole), but a `$set` to the value already there is not
        reported: the same actor ran the same action in the same millisecond. Then the audit
        entry of that version says it."""
        entry = await self._store.audit.for_version(cid, version)
        if entry is None:
            return None
        return {"name": entry.get("action"), "actor": entry.get("actor"), "at": entry.get("at")}


def _collaboration_of(change: dict[str, Any]) -> str | None:
    coll = change.get("ns", {}).get("coll")
    key = change.get("documentKey", {}).get("_id")
    if coll == "collaborations":
        collaboration_id: str | None = key  # a collaboration's _id is its id
        return collaboration_id
    if coll == "presence":
        return collaboration_of(key)
    doc = change.get("fullDocument") or {}
    collaboration_id = doc.get("collaborationId")
    return collaboration_id
