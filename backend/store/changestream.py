"""MongoDB change streams, emulated in-process for the embedded store.

(Over 300 lines: `ChangeLog` and `ChangeStream` are one emulation of the server's
change-stream rules, positions, resume, invalidate and errors; split, the resume rules would
live in two files. updateDescription is apart, in backend/store/updates.py.)

`ChangeLog` keeps one database's recent change events in MongoDB's own shape
(bounded by `settings.change_history`); `ChangeStream` reads them the way
motor's change stream does (`async with`, `async for`, `next`, `try_next`,
`resume_token`, `close`, `alive`). An update event's `updateDescription` is
computed by backend/store/updates.py.

Positions are cluster times: a resume token encodes the `clusterTime`
(`bson.Timestamp`) of the event it follows, and resuming replays every event
with a later cluster time, like MongoDB resuming from the oplog.
"""

from __future__ import annotations

import asyncio
import copy
import time
import weakref
from collections import deque
from typing import Any, Callable

from bson import Timestamp
from bson.tz_util import utc
from pymongo.errors import ConnectionFailure, CursorNotFound, OperationFailure, PyMongoError

from backend.clock import utcnow
from backend.store.failures import EmbeddedUnsupported
from backend.store.matching import matches
from backend.store.trees import structure

DEFAULT_MAX_AWAIT_MS = 1000  # what MongoDB waits on a change stream getMore without maxAwaitTimeMS
_TOKEN_PREFIX = "82"  # MongoDB's tokens start with 0x82 then the cluster time, in hex

Lookup = Callable[[str, Any], "dict[str, Any] | None"]


class Deferred:
    """An event's value made when a stream first needs it, by `make()` (once; the log's event then
    holds what it made). The embedded store records an insert's `fullDocument` so: the UTC-aware
    copy of the stored document, which no later write changes in place (embedded.py, `_Writable`),
    is made for a stream that reads the event, not for every write (an audit entry's insert, which
    the change reader's `$match` drops, is never copied). Nothing outside the log sees one: a
    stream settles the event before its `$match` reads a document field, and before it copies it."""

    __slots__ = ("make",)

    def __init__(self, make: Callable[[], Any]):
        self.make = make


def _settle(event: dict[str, Any]) -> None:
    """Replace the event's deferred `fullDocument` by its value (in the log's own event)."""
    full = event.get("fullDocument")
    if type(full) is Deferred:
        event["fullDocument"] = full.make()


# -- errors and tokens ---------------------------------------------------------------------------


def _failure(code: int, code_name: str, message: str, labels: tuple[str, ...] = ()) -> OperationFailure:
    details: dict[str, Any] = {"ok": 0.0, "errmsg": message, "code": code, "codeName": code_name}
    if labels:
        details["errorLabels"] = list(labels)
    return OperationFailure(message, code, details)


def history_lost(stage: str) -> OperationFailure:
    """The error MongoDB raises when a resume point has left the oplog (code 286)."""
    reason = "Resume of change stream was not possible, as the resume point may no longer be in the oplog."
    return _failure(
        286,
        "ChangeStreamHistoryLost",
        f"Executor error during {stage} :: caused by :: {reason}",
        ("NonResumableChangeStreamError",),
    )


def position_lost(seq: int) -> OperationFailure:
    """What a getMore gets when the oplog entries it was about to read are gone (code 136):
    not resumable, and resuming from the stream's token then fails with 286."""
    return _failure(
        136,
        "CappedPositionLost",
        "Executor error during getMore :: caused by :: CollectionScan died due to position in "
        f"capped collection being deleted. Last seen record id: RecordId({seq})",
    )


def resumable(exc: BaseException) -> bool:
    """pymongo's rule: a change stream survives these errors and resumes."""
    if isinstance(exc, (ConnectionFailure, CursorNotFound)):
        return True
    return isinstance(exc, OperationFailure) and exc.has_error_label("ResumableChangeStreamError")


_INVALIDATE_SUFFIX = "01"  # an invalidate event's token: the invalidating event's, marked


def make_token(ts: Timestamp, invalidate: bool = False) -> dict[str, Any]:
    return {"_data": f"{_TOKEN_PREFIX}{ts.time:08X}{ts.inc:08X}" + (_INVALIDATE_SUFFIX if invalidate else "")}


def parse_token(token: Any) -> tuple[Timestamp, bool]:
    """A token's cluster time and whether it is an invalidate event's token."""
    data = token.get("_data") if isinstance(token, dict) else None
    try:
        if not isinstance(data, str) or len(data) not in (18, 20) or not data.startswith(_TOKEN_PREFIX):
            raise ValueError(data)
        if len(data) == 20 and not data.endswith(_INVALIDATE_SUFFIX):
            raise ValueError(data)
        return Timestamp(int(data[2:10], 16), int(data[10:18], 16)), len(data) == 20
    except (ValueError, TypeError):
        raise _failure(260, "InvalidResumeToken", f"Invalid resume token: {token!r}") from None


# -- the log -------------------------------------------------------------------------------------

# The operation types that end a stream: a collection stream on drop or rename of its
# collection (and on dropDatabase, through the drop of its collection); a database stream on
# dropDatabase. Each is followed by an invalidate event, then the stream is closed.
_DDL = frozenset({"drop", "rename", "dropDatabase"})


class ChangeLog:
    """One database's recent change events, oldest first, and the streams reading them."""

    def __init__(self, db_name: str, capacity: int, lookup: Lookup):
        self.db_name = db_name
        self.lookup = lookup  # (collection, _id) -> the current document, for updateLookup
        self._events: deque[dict[str, Any]] = deque(maxlen=capacity)
        self._next_seq = 0  # sequence number of the next event; events[i] has next_seq - len + i
        self._clock = Timestamp(int(time.time()), 0)
        self._floor = self._clock  # resuming from before this point has lost history
        self._streams: weakref.WeakSet[ChangeStream] = weakref.WeakSet()
        self.wakeup = asyncio.Event()  # replaced after every notify; waiters hold the old one

    def record(self, operation: str, coll: str | None, _id: Any = None, **fields: Any) -> None:
        """Append one event: `fields` are fullDocument, updateDescription or (rename) `to`.

        A drop, rename or dropDatabase event has no documentKey; dropDatabase has no ns.coll."""
        ts = self._tick()
        event: dict[str, Any] = {
            "_id": make_token(ts),
            "operationType": operation,
            "clusterTime": ts,
            "wallTime": utcnow().replace(tzinfo=utc),  # the same instant (UTC both), bson's tzinfo as motor's
        }
        if "fullDocument" in fields:
            event["fullDocument"] = fields.pop("fullDocument")
        event["ns"] = {"db": self.db_name, "coll": coll} if coll is not None else {"db": self.db_name}
        if operation not in _DDL:
            event["documentKey"] = {"_id": _id}
        if "to" in fields:
            event["to"] = {"db": self.db_name, "coll": fields.pop("to")}
        event.update(fields)
        if len(self._events) == self._events.maxlen:
            self._floor = self._events[0]["clusterTime"]
        self._events.append(event)
        self._next_seq += 1
        self.notify()

    def notify(self) -> None:
        """Wake every waiting stream: they re-check for events, errors and closing."""
        woken, self.wakeup = self.wakeup, asyncio.Event()
        woken.set()

    def open(
        self, stream: "ChangeStream", position: Timestamp | None, inclusive: bool, stage: str
    ) -> tuple[int, dict[str, Any], dict[str, Any] | None]:
        """Register a stream reading from `position` (None: from now; `inclusive`: events at
        `position` too, as startAtOperationTime). Returns the sequence number it reads next,
        its first resume token and the event at `position`, if any (a resumed stream may owe
        an invalidate for it)."""
        at = None
        if position is None:
            start, first_token = self._next_seq, make_token(self.now())
        else:
            if position < self._floor or (inclusive and position == self._floor):
                raise history_lost(stage)
            self._clock = max(self._clock, position)  # later events come after a token from the future
            start = self._seq_after(position, inclusive)
            first_token = make_token(position)
            at = next((e for e in self._events if e["clusterTime"] == position), None)
        self._streams.add(stream)
        return start, first_token, at

    def event(self, seq: int) -> dict[str, Any] | None:
        """The event numbered `seq`, None if it has not happened yet."""
        first = self._next_seq - len(self._events)
        if seq < first:
            raise position_lost(seq)
        return self._events[seq - first] if seq < self._next_seq else None

    def check_kept(self, seq: int, stage: str) -> None:
        """Resuming at `seq` (after a resumable error) finds its history, or fails with 286."""
        if seq < self._next_seq - len(self._events):
            raise history_lost(stage)

    def now(self) -> Timestamp:
        """The current cluster time; it never goes back and no later event is at or before it."""
        seconds = int(time.time())
        if seconds > self._clock.time:
            self._clock = Timestamp(seconds, 0)
        return self._clock

    def inject_error(self, exc: BaseException, times: int) -> None:
        for stream in list(self._streams):
            stream.fail_next(exc, times)
        self.notify()

    def close(self) -> None:
        for stream in list(self._streams):
            stream.end()
        self.notify()

    def forget(self, stream: "ChangeStream") -> None:
        self._streams.discard(stream)

    def _tick(self) -> Timestamp:
        now = self.now()
        self._clock = Timestamp(now.time, now.inc + 1)
        return self._clock

    def _seq_after(self, position: Timestamp, inclusive: bool) -> int:
        seq = self._next_seq
        for event in reversed(self._events):
            if event["clusterTime"] < position or (event["clusterTime"] == position and not inclusive):
                break
            seq -= 1
        return seq


# -- the stream ----------------------------------------------------------------------------------

# Stages MongoDB allows in a change stream that the emulation does not run (EmbeddedUnsupported),
# and aggregation stages it refuses there (IllegalOperation, at the first read, like the server).
_ALLOWED_NOT_EMULATED = frozenset(
    {
        "$project",
        "$addFields",
        "$set",
        "$unset",
        "$replaceRoot",
        "$replaceWith",
        "$redact",
        "$changeStreamSplitLargeEvent",
    }
)
_NOT_IN_CHANGE_STREAMS = frozenset(
    {
        "$bucket",
        "$bucketAuto",
        "$collStats",
        "$count",
        "$densify",
        "$facet",
        "$fill",
        "$geoNear",
        "$graphLookup",
        "$group",
        "$indexStats",
        "$limit",
        "$listSessions",
        "$lookup",
        "$merge",
        "$out",
        "$sample",
        "$setWindowFields",
        "$skip",
        "$sort",
        "$sortByCount",
        "$unionWith",
        "$unwind",
        "$documents",
        "$search",
        "$searchMeta",
        "$vectorSearch",
        "$changeStream",
        "$currentOp",
        "$listLocalSessions",
        "$planCacheStats",
    }
)


class ChangeStream:
    """A change stream over a ChangeLog, used like motor's `AsyncIOMotorChangeStream`.

    Like motor it starts lazily: the options are checked and the position is taken (a stale
    resume token raises code 286) on `async with`, or on the first `next()` / `try_next()`,
    never in `watch()` itself. What the emulation lacks raises EmbeddedUnsupported in watch().
    """

    def __init__(
        self,
        log: ChangeLog,
        coll: str | None,
        pipeline: list[Any] | None = None,
        full_document: str | None = None,
        resume_after: dict[str, Any] | None = None,
        max_await_time_ms: int | None = None,
        batch_size: int | None = None,
        start_after: dict[str, Any] | None = None,
        comment: Any = None,
        start_at_operation_time: Timestamp | None = None,
        **unsupported: Any,
    ):
        given = sorted(name for name, value in unsupported.items() if value is not None)
        if given:
            raise EmbeddedUnsupported(f"the embedded store's watch() does not support: {', '.join(given)}")
        if full_document not in (None, "default", "updateLookup"):
            raise EmbeddedUnsupported(f"the embedded store's watch() does not support full_document={full_document!r}")
        self._log = log
        self._coll = coll
        self._filters, self._pipeline_error = _match_filters(pipeline or [])
        # does a filter read past the event's envelope (a document field, or an operator that may)?
        self._filters_read_documents = any(set(spec) - _ENVELOPE for spec in self._filters if isinstance(spec, dict))
        self._lookup = full_document == "updateLookup"
        self._resume_after, self._start_after = resume_after, start_after
        self._start_at = start_at_operation_time
        self._max_await = (max_await_time_ms if max_await_time_ms is not None else DEFAULT_MAX_AWAIT_MS) / 1000
        self._stage = f"aggregate command on namespace: {log.db_name}.{coll or '$cmd.aggregate'}"
        self._seq: int | None = None  # next event to read; None until started
        self._resume_token: dict[str, Any] | None = None
        self._pending_errors: list[BaseException] = []
        self._invalidate: dict[str, Any] | None = None  # the invalidate event owed after an invalidating one
        self._closed = False

    @property
    def alive(self) -> bool:
        return not self._closed

    @property
    def resume_token(self) -> dict[str, Any] | None:
        """The token to resume after what this stream has returned (None before it starts)."""
        return copy.deepcopy(self._resume_token)

    async def next(self) -> dict[str, Any]:
        change = await self._wait(None)
        if change is None:
            raise StopAsyncIteration
        return change

    async def try_next(self) -> dict[str, Any] | None:
        """The next change, or None after waiting up to max_await_time_ms (or once closed)."""
        return await self._wait(self._max_await)

    async def close(self) -> None:
        if not self._closed:
            self.end()
            self._log.notify()

    def end(self) -> None:
        """Close without waking anyone (the log's close() wakes every stream at once)."""
        self._closed = True
        self._log.forget(self)

    def fail_next(self, exc: BaseException, times: int = 1) -> None:
        """The next `times` read attempts raise `exc` (an injected error, for tests)."""
        self._pending_errors = [exc] * times

    def __aiter__(self) -> "ChangeStream":
        return self

    __anext__ = next

    async def __aenter__(self) -> "ChangeStream":
        self._start()
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.close()

    def _start(self) -> None:
        """The aggregate: check the options as the server does, then take the position."""
        if self._seq is not None or self._closed:
            return
        try:
            if self._pipeline_error is not None:
                raise self._pipeline_error
            # pymongo sends one resume option: startAfter if given, else resumeAfter, and
            # startAtOperationTime only without a token (change_stream_shared.py,
            # _change_stream_options), so the server's 50865 and 40674 never reach a caller
            token = self._start_after if self._start_after is not None else self._resume_after
            position, inclusive, from_invalidate = None, False, False
            if token is not None:
                position, from_invalidate = parse_token(token)
                if from_invalidate and self._start_after is None:
                    raise _failure(
                        260,
                        "InvalidResumeToken",
                        "Attempting to resume a change stream using 'resumeAfter' is not allowed from "
                        "an invalidate notification",
                    )
            elif self._start_at is not None:
                position, inclusive = self._start_at, True
            self._seq, self._resume_token, at = self._log.open(self, position, inclusive, self._stage)
        except PyMongoError:
            self.end()
            raise
        if token is not None:
            self._resume_token = copy.deepcopy(token)
        if at is not None and not from_invalidate and self._invalidates(at):
            self._invalidate = _invalidate_event(at)  # resuming from a drop: the invalidate comes again

    async def _wait(self, timeout: float | None) -> dict[str, Any] | None:
        self._start()
        deadline = None if timeout is None else asyncio.get_running_loop().time() + timeout
        while not self._closed:
            wakeup = self._log.wakeup  # taken before reading, so no event can slip in between
            change = self._take()
            if change is not None:
                return change
            remaining = None if deadline is None else deadline - asyncio.get_running_loop().time()
            if remaining is not None and remaining <= 0:
                return None
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a
            # cancellation that arrives as the wakeup fires, and the reader's task then
            # never stops (a shutdown that hangs).
            try:
                async with asyncio.timeout(remaining):
                    await wakeup.wait()
            except TimeoutError:
                return None
        return None

    def _take(self) -> dict[str, Any] | None:
        """The next matching event, skipping others; synchronous, so atomic among coroutines.

        A resumable error is retried once, as pymongo does: the stream resumes from its token
        (which fails with 286 if that point has left the history) and reads again; only a
        second failure reaches the caller, and the stream stays open."""
        if self._pending_errors:
            exc = self._pending_errors.pop(0)
            if not resumable(exc):
                self._pending_errors.clear()
                self.end()
                raise exc
            if self._pending_errors:  # the resume fails too
                self._pending_errors.pop(0)
                raise exc
            self._resume()
        if self._invalidate is not None:
            change, self._invalidate = self._invalidate, None
            self._resume_token = copy.deepcopy(change["_id"])
            self.end()  # an invalidate is the last event of a stream, even one its $match drops
            return change if all(matches(spec, change) for spec in self._filters) else None
        while not self._closed:
            assert self._seq is not None  # set by _start (in _wait) before the first read
            try:
                event = self._log.event(self._seq)
            except PyMongoError as exc:
                self._fail_unless_resumable(exc)
                raise
            if event is None:
                self._resume_token = make_token(self._log.now())  # like a post-batch resume token
                return None
            self._seq += 1
            if self._coll is not None and not self._concerns(event):
                continue
            if self._invalidates(event):
                self._invalidate = _invalidate_event(event)  # after the event, whether $match keeps it or not
            # the filters see the event as the stream would return it; it is copied only when
            # kept (the copy is equal to the event unless updateLookup adds the document)
            looks_up = self._lookup and event["operationType"] == "update"
            if self._filters_read_documents:
                _settle(event)
            change = self._shape(event) if looks_up else event
            if all(matches(spec, change) for spec in self._filters):
                self._resume_token = structure(event["_id"])
                return change if looks_up else self._shape(event)
            if self._invalidate is not None:
                return self._take()
        return None

    def _resume(self) -> None:
        assert self._seq is not None  # set by _start (in _wait) before the first read
        try:
            self._log.check_kept(self._seq, self._stage)
        except PyMongoError:
            self.end()
            raise

    def _concerns(self, event: dict[str, Any]) -> bool:
        """Is this event on this collection stream's collection? A rename onto it is too."""
        return bool(event["ns"].get("coll") == self._coll or event.get("to", {}).get("coll") == self._coll)

    def _invalidates(self, event: dict[str, Any]) -> bool:
        """Does this event end this stream? (collection: a drop of it, a rename of it or onto it;
        database: dropDatabase)"""
        operation = event["operationType"]
        if self._coll is not None:
            return operation in ("drop", "rename") and self._concerns(event)
        return bool(operation == "dropDatabase")

    def _shape(self, event: dict[str, Any]) -> dict[str, Any]:
        _settle(event)
        change: dict[str, Any] = structure(event)
        if self._lookup and change["operationType"] == "update":
            change["fullDocument"] = self._log.lookup(change["ns"]["coll"], change["documentKey"]["_id"])
        return change

    def _fail_unless_resumable(self, exc: BaseException) -> None:
        if not resumable(exc):
            self.end()


def _invalidate_event(event: dict[str, Any]) -> dict[str, Any]:
    """The invalidate event that follows `event`: same cluster time, no ns, its own token."""
    return {
        "_id": make_token(event["clusterTime"], invalidate=True),
        "operationType": "invalidate",
        "clusterTime": event["clusterTime"],
        "wallTime": event["wallTime"],
    }


# what a `$match` key may name without reading a document: an event's envelope (a dotted key
# into it too). Any other key (`fullDocument...`, `$or`, ...) settles deferred documents first.
_ENVELOPE = frozenset(
    {"_id", "operationType", "clusterTime", "wallTime", "ns", "ns.db", "ns.coll", "to", "to.db", "to.coll"}
    | {"documentKey", "documentKey._id"}
)


def _match_filters(pipeline: list[Any]) -> tuple[list[dict[str, Any]], OperationFailure | None]:
    """The $match filters, and the error the server gives at the first read for a stage it
    refuses (an unknown name, or one not allowed in a change stream). A stage MongoDB allows
    but the emulation does not run raises EmbeddedUnsupported here."""
    filters: list[dict[str, Any]] = []
    for stage in pipeline:
        name = next(iter(stage)) if isinstance(stage, dict) and len(stage) == 1 else None
        if name == "$match":
            filters.append(stage["$match"])
        elif name in _ALLOWED_NOT_EMULATED or name is None:
            raise EmbeddedUnsupported(f"the embedded store's change streams support only $match stages, not {stage!r}")
        elif name in _NOT_IN_CHANGE_STREAMS:
            return filters, _failure(20, "IllegalOperation", f"{name} is not permitted in a $changeStream pipeline")
        else:
            return filters, _failure(40324, "Location40324", f"Unrecognized pipeline stage name: '{name}'")
    return filters, None
