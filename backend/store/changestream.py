"""MongoDB change streams, emulated in-process for the embedded store.

`ChangeLog` keeps one database's recent change events in MongoDB's own shape
(bounded by `settings.change_history`); `ChangeStream` reads them the way
motor's change stream does (`async with`, `async for`, `next`, `try_next`,
`resume_token`, `close`, `alive`). `update_description` computes an update
event's `updateDescription` by diffing a document before and after a write.

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
from mongomock.filtering import filter_applies
from pymongo.errors import ConnectionFailure, CursorNotFound, OperationFailure, PyMongoError

from backend.clock import utcnow
from backend.store.errors import EmbeddedUnsupported

DEFAULT_MAX_AWAIT_MS = 1000  # what MongoDB waits on a change stream getMore without maxAwaitTimeMS
_TOKEN_PREFIX = "82"  # MongoDB's tokens start with 0x82 then the cluster time, in hex

Lookup = Callable[[str, Any], "dict | None"]


# -- updateDescription ---------------------------------------------------------------------------


def update_description(before: dict, after: dict) -> dict:
    """MongoDB's `updateDescription` for a document that went from `before` to `after`.

    Paths are dotted, numeric segments index arrays; elements appended to an
    array are reported as `arr.N`. An array that shrank is reported whole in
    `updatedFields` (what MongoDB does for `$pull`, `$pop` and `$set` of an
    array), so `truncatedArrays` is always empty.
    """
    updated: dict[str, Any] = {}
    removed: list[str] = []
    _diff_document(before, after, "", updated, removed)
    return {"updatedFields": updated, "removedFields": removed, "truncatedArrays": []}


def _diff_document(old: dict, new: dict, prefix: str, updated: dict, removed: list) -> None:
    for key, value in new.items():
        if key in old:
            _diff_value(old[key], value, prefix + key, updated, removed)
        else:
            updated[prefix + key] = value
    removed.extend(prefix + key for key in old if key not in new)


def _diff_value(old: Any, new: Any, path: str, updated: dict, removed: list) -> None:
    if isinstance(old, dict) and isinstance(new, dict):
        _diff_document(old, new, path + ".", updated, removed)
    elif isinstance(old, list) and isinstance(new, list) and len(new) >= len(old):
        for index, item in enumerate(new):
            if index < len(old):
                _diff_value(old[index], item, f"{path}.{index}", updated, removed)
            else:
                updated[f"{path}.{index}"] = item
    elif type(old) is not type(new) or old != new:
        updated[path] = new


# -- errors and tokens ---------------------------------------------------------------------------


def history_lost(stage: str) -> OperationFailure:
    """The error MongoDB raises when a resume point has left the oplog (code 286)."""
    reason = "Resume of change stream was not possible, as the resume point may no longer be in the oplog."
    message = f"Executor error during {stage} :: caused by :: {reason}"
    details = {"ok": 0.0, "errmsg": message, "code": 286, "codeName": "ChangeStreamHistoryLost",
               "errorLabels": ["NonResumableChangeStreamError"]}
    return OperationFailure(message, 286, details)


def resumable(exc: BaseException) -> bool:
    """pymongo's rule: a change stream survives these errors and resumes."""
    if isinstance(exc, (ConnectionFailure, CursorNotFound)):
        return True
    return isinstance(exc, OperationFailure) and exc.has_error_label("ResumableChangeStreamError")


def make_token(ts: Timestamp) -> dict:
    return {"_data": f"{_TOKEN_PREFIX}{ts.time:08X}{ts.inc:08X}"}


def parse_token(token: Any) -> Timestamp:
    data = token.get("_data") if isinstance(token, dict) else None
    try:
        if not isinstance(data, str) or len(data) != 18 or not data.startswith(_TOKEN_PREFIX):
            raise ValueError(data)
        return Timestamp(int(data[2:10], 16), int(data[10:], 16))
    except (ValueError, TypeError):
        raise OperationFailure(f"Invalid resume token: {token!r}", 260,
                               {"code": 260, "codeName": "InvalidResumeToken"}) from None


# -- the log -------------------------------------------------------------------------------------


class ChangeLog:
    """One database's recent change events, oldest first, and the streams reading them."""

    def __init__(self, db_name: str, capacity: int, lookup: Lookup):
        self.db_name = db_name
        self.lookup = lookup  # (collection, _id) -> the current document, for updateLookup
        self._events: deque[dict] = deque(maxlen=capacity)
        self._next_seq = 0  # sequence number of the next event; events[i] has next_seq - len + i
        self._clock = Timestamp(int(time.time()), 0)
        self._floor = self._clock  # resuming from before this point has lost history
        self._streams: weakref.WeakSet[ChangeStream] = weakref.WeakSet()
        self.wakeup = asyncio.Event()  # replaced after every notify; waiters hold the old one

    def record(self, operation: str, coll: str, _id: Any, **fields: Any) -> None:
        """Append one event: `fields` are fullDocument and/or updateDescription."""
        ts = self._tick()
        event: dict[str, Any] = {"_id": make_token(ts), "operationType": operation,
                                 "clusterTime": ts, "wallTime": utcnow().astimezone(utc)}
        if "fullDocument" in fields:
            event["fullDocument"] = fields.pop("fullDocument")
        event["ns"] = {"db": self.db_name, "coll": coll}
        event["documentKey"] = {"_id": _id}
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

    def open(self, stream: "ChangeStream", token: dict | None, stage: str) -> tuple[int, dict]:
        """Register a stream; returns the sequence number it reads next and its first resume token."""
        if token is None:
            start, first_token = self._next_seq, make_token(self.now())
        else:
            position = parse_token(token)
            if position < self._floor:
                raise history_lost(stage)
            self._clock = max(self._clock, position)  # later events come after a token from the future
            start, first_token = self._seq_after(position), token
        self._streams.add(stream)
        return start, first_token

    def event(self, seq: int, stage: str = "getMore") -> dict | None:
        """The event numbered `seq`, None if it has not happened yet."""
        first = self._next_seq - len(self._events)
        if seq < first:
            raise history_lost(stage)
        return self._events[seq - first] if seq < self._next_seq else None

    def now(self) -> Timestamp:
        """The current cluster time; it never goes back and no later event is at or before it."""
        seconds = int(time.time())
        if seconds > self._clock.time:
            self._clock = Timestamp(seconds, 0)
        return self._clock

    def inject_error(self, exc: BaseException) -> None:
        for stream in list(self._streams):
            stream.fail_next(exc)
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

    def _seq_after(self, position: Timestamp) -> int:
        seq = self._next_seq
        for event in reversed(self._events):
            if event["clusterTime"] <= position:
                break
            seq -= 1
        return seq


# -- the stream ----------------------------------------------------------------------------------


class ChangeStream:
    """A change stream over a ChangeLog, used like motor's `AsyncIOMotorChangeStream`.

    Like motor it starts lazily: the position is taken (and a stale resume
    token raises code 286) on `async with`, or on the first `next()` /
    `try_next()`, never in `watch()` itself.
    """

    def __init__(self, log: ChangeLog, coll: str | None, pipeline: list | None = None,
                 full_document: str | None = None, resume_after: dict | None = None,
                 max_await_time_ms: int | None = None, batch_size: int | None = None,
                 start_after: dict | None = None, comment: Any = None, **unsupported: Any):
        given = sorted(name for name, value in unsupported.items() if value is not None)
        if given:
            raise EmbeddedUnsupported(f"the embedded store's watch() does not support: {', '.join(given)}")
        if full_document not in (None, "default", "updateLookup"):
            raise EmbeddedUnsupported(f"the embedded store's watch() does not support full_document={full_document!r}")
        self._log = log
        self._coll = coll
        self._filters = _match_filters(pipeline or [])
        self._lookup = full_document == "updateLookup"
        self._token_in = start_after if start_after is not None else resume_after
        self._max_await = (max_await_time_ms if max_await_time_ms is not None else DEFAULT_MAX_AWAIT_MS) / 1000
        self._stage = f"aggregate command on namespace: {log.db_name}.{coll or '$cmd.aggregate'}"
        self._seq: int | None = None  # next event to read; None until started
        self._resume_token: dict | None = None
        self._pending_error: BaseException | None = None
        self._closed = False

    @property
    def alive(self) -> bool:
        return not self._closed

    @property
    def resume_token(self) -> dict | None:
        """The token to resume after what this stream has returned (None before it starts)."""
        return copy.deepcopy(self._resume_token)

    async def next(self) -> dict:
        change = await self._wait(None)
        if change is None:
            raise StopAsyncIteration
        return change

    async def try_next(self) -> dict | None:
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

    def fail_next(self, exc: BaseException) -> None:
        """The next next()/try_next() raises `exc` (an injected error, for tests)."""
        self._pending_error = exc

    def __aiter__(self) -> "ChangeStream":
        return self

    __anext__ = next

    async def __aenter__(self) -> "ChangeStream":
        self._start()
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.close()

    def _start(self) -> None:
        if self._seq is None and not self._closed:
            self._seq, self._resume_token = self._log.open(self, self._token_in, self._stage)

    async def _wait(self, timeout: float | None) -> dict | None:
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

    def _take(self) -> dict | None:
        """The next matching event, skipping others; synchronous, so atomic among coroutines."""
        if self._pending_error is not None:
            exc, self._pending_error = self._pending_error, None
            self._fail_unless_resumable(exc)
            raise exc
        while not self._closed:
            try:
                event = self._log.event(self._seq)
            except PyMongoError as exc:
                self._fail_unless_resumable(exc)
                raise
            if event is None:
                self._resume_token = make_token(self._log.now())  # like a post-batch resume token
                return None
            self._seq += 1
            if self._coll is not None and event["ns"]["coll"] != self._coll:
                continue
            change = self._shape(event)
            if all(filter_applies(spec, change) for spec in self._filters):
                self._resume_token = copy.deepcopy(event["_id"])
                return change
        return None

    def _shape(self, event: dict) -> dict:
        change = copy.deepcopy(event)
        if self._lookup and change["operationType"] == "update":
            change["fullDocument"] = self._log.lookup(change["ns"]["coll"], change["documentKey"]["_id"])
        return change

    def _fail_unless_resumable(self, exc: BaseException) -> None:
        if not resumable(exc):
            self.end()


def _match_filters(pipeline: list) -> list[dict]:
    filters = []
    for stage in pipeline:
        if not isinstance(stage, dict) or list(stage) != ["$match"]:
            raise EmbeddedUnsupported(f"the embedded store's change streams support only $match stages, not {stage!r}")
        filters.append(stage["$match"])
    return filters
