"""The hub: events in, subscribers out. It never reads MongoDB and never parses a frame.

- `Hub.publish(event)` hands one event to every subscription of its
  collaboration, synchronously: the event's frame is encoded once and the same
  object goes to every subscriber's `Outbox`; nobody waits for anybody.
- An `Outbox` is one connection's way out. While the connection's transport
  takes writes at once, a frame is written at once (with `write_now`, the
  pre-framed sends of backend.realtime.transport, the frame's bytes go
  straight to the transport; else the ASGI send coroutine is stepped by hand
  and finishes without suspending); once a write has to wait,
  a writer task finishes it and later frames queue behind it, at most
  `queue_size` frames and `queue_bytes` bytes (each frame knows its size, so
  that is an integer add). One more and the outbox overflows: its owner
  closes the connection with 4009. A snapshot is queued beside the byte
  budget, one at a time, so that one larger than it still reaches a client.
- A `Subscription` starts pending (events are buffered while the endpoint
  reads the snapshot), is activated with what the client already has, then
  filters live events: seqs (backend/store/stream.py) at or below what it
  sent, or, for the older `sinceVersion` subscriptions, versions at or below
  it, owner-only events
  for non-owners, and membership: a change that removes the subscriber's user
  sends `membership_removed` instead and ends the subscription. A message it
  was sent from the store (a snapshot) is not sent again when its event comes.
- `History` keeps the last `hub_history` collaboration_updated events and the
  last `hub_history` message_created events of each collaboration, the latter
  in the order the change stream gave them (commit order), at most
  `history_bytes` in all, for `sinceVersion` / `sinceMessageId` catch-up, and
  as a cache in front of the database for `sinceSeq` (`History.by_seq`).
"""

from __future__ import annotations

import asyncio
import itertools
from collections import OrderedDict, deque
from typing import Any, Awaitable, Callable, Iterable

from backend.realtime.events import (
    PRESENCE, RESYNC_REQUIRED, Event, Frame, membership_removed, resync_required, track_member,
)

Send = Callable[[Frame], Awaitable[None]]
WriteNow = Callable[[Frame], bool]  # writes the frame if the transport takes it now, else False
DEFAULT_HISTORY_BYTES = 32 * 1024 * 1024
DEFAULT_QUEUE_BYTES = 4 * 1024 * 1024


# -- one connection's way out ---------------------------------------------------------------------


class _Finish:
    """Awaiting it finishes a coroutine that was stepped once by hand and is suspended on `pending`."""

    __slots__ = ("_coro", "_pending")

    def __init__(self, coro: Any, pending: Any):
        self._coro, self._pending = coro, pending

    def __await__(self) -> Any:
        coro, value = self._coro, self._pending
        while True:
            try:
                sent = yield value
            except BaseException as exc:  # cancellation and the like go to the coroutine
                try:
                    value = coro.throw(exc)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    value = coro.send(sent)
                except StopIteration as stop:
                    return stop.value


class Outbox:
    """Frames to one connection: written at once while possible, else queued (bounded) behind a writer task.

    What is queued (the frame the writer is waiting to write, and those behind it) is bounded in
    frames (`limit`) and in bytes (`limit_bytes`): a frame past either overflows the outbox, once.
    A snapshot is queued beside that budget, one at a time (`put_snapshot`): a snapshot larger
    than the budget still reaches a client that reads, and the next subscribe waits until the
    previous snapshot is written (`snapshot_written`).
    """

    __slots__ = ("_send", "_write_now", "_limit", "_limit_bytes", "_backlog", "_writer", "_on_overflow", "closed",
                 "overflowed", "bytes", "_snapshot", "_written")

    def __init__(self, send: Send, limit: int, on_overflow: Callable[[], None], limit_bytes: int = DEFAULT_QUEUE_BYTES,
                 write_now: WriteNow | None = None):
        self._send = send
        self._write_now = write_now
        self._limit = limit
        self._limit_bytes = limit_bytes
        self._backlog: deque[Frame] = deque()
        self._writer: asyncio.Task[None] | None = None
        self._on_overflow = on_overflow
        self.closed = False
        self.overflowed = False
        self.bytes = 0  # queued, the snapshot aside
        self._snapshot: Frame | None = None  # the snapshot queued, if any
        self._written: asyncio.Future[bool] | None = None  # resolved once that snapshot is written

    @property
    def backlog(self) -> int:
        return len(self._backlog)

    @property
    def room(self) -> int:
        """Bytes that can still be queued."""
        return self._limit_bytes - self.bytes

    def put(self, frame: Frame) -> None:
        if self.closed:
            return
        if self._writer is None:
            self._write_or_queue(frame, False)
            return
        if len(self._backlog) >= self._limit or self.bytes + frame.size > self._limit_bytes:
            self._overflow()
            return
        self.bytes += frame.size
        self._backlog.append(frame)

    def put_snapshot(self, frame: Frame) -> None:
        """Queue a snapshot beside the byte budget. One at a time: the caller waits for
        `snapshot_written()` first (a second one overflows the outbox)."""
        if self.closed:
            return
        if self._snapshot is not None:
            self._overflow()
        elif self._writer is None:
            self._write_or_queue(frame, True)
        else:
            self._snapshot = frame
            self._backlog.append(frame)

    async def snapshot_written(self, timeout: float) -> bool:
        """Wait until no snapshot is queued (True), or `timeout` seconds or the outbox closing (False)."""
        if self._snapshot is None:
            return not self.closed
        if self._written is None:
            self._written = asyncio.get_running_loop().create_future()
        try:
            async with asyncio.timeout(timeout):
                return await asyncio.shield(self._written)
        except TimeoutError:
            return False

    async def flush(self, timeout: float) -> bool:
        """Wait until everything queued is written (True), or `timeout` seconds (False)."""
        writer = self._writer
        if writer is None:
            return True
        done, _ = await asyncio.wait({writer}, timeout=timeout)
        return bool(done)

    def close(self) -> None:
        """Write nothing more: drop what is queued and stop the writer."""
        self.closed = True
        self._backlog.clear()
        self.bytes = 0
        self._snapshot = None
        self._resolve(False)
        if self._writer is not None:
            self._writer.cancel()

    def _write_or_queue(self, frame: Frame, snapshot: bool) -> None:
        """Write `frame` at once if the transport takes it; else hand the write to a writer task."""
        first: _Finish | None = None  # None: the writer sends `frame` itself
        try:
            if self._write_now is not None:  # pre-framed: no coroutine unless the transport is full
                if self._write_now(frame):
                    return  # written
            else:
                coro = self._send(frame)
                try:
                    pending = coro.send(None)
                except StopIteration:
                    return  # written
                first = _Finish(coro, pending)
        except Exception:  # noqa: BLE001 - the connection is gone; its endpoint sees the disconnect
            self.close()
            return
        if snapshot:
            self._snapshot = frame
        else:
            self.bytes += frame.size
        self._writer = asyncio.get_running_loop().create_task(self._drain(first, frame))

    def _overflow(self) -> None:
        self.overflowed = True
        self.close()
        self._on_overflow()

    def _written_out(self, frame: Frame) -> None:
        if frame is self._snapshot:
            self._snapshot = None
            self._resolve(True)
        else:
            self.bytes -= frame.size

    def _resolve(self, written: bool) -> None:
        waiter, self._written = self._written, None
        if waiter is not None and not waiter.done():
            waiter.set_result(written)

    async def _drain(self, first: _Finish | None, frame: Frame) -> None:
        try:
            await (first if first is not None else self._send(frame))
            self._written_out(frame)
            backlog = self._backlog
            while backlog and not self.closed:
                frame = backlog.popleft()
                await self._send(frame)
                self._written_out(frame)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - the connection is gone
            self.close()
        finally:
            self._writer = None


# -- subscriptions --------------------------------------------------------------------------------


class Subscription:
    """One connection's subscription to one collaboration."""

    __slots__ = ("collaboration_id", "user_id", "outbox", "on_end", "pending", "buffer", "floor",
                 "tracked_from", "index", "role", "ended", "sent", "seq", "_hub")

    def __init__(self, hub: "Hub", collaboration_id: str, user_id: str, outbox: Outbox,
                 on_end: Callable[["Subscription", str], None]):
        self._hub = hub
        self.collaboration_id = collaboration_id
        self.user_id = user_id
        self.outbox = outbox
        self.on_end = on_end
        self.pending = True
        self.buffer: list[Event] | None = []
        self.floor = 0  # the highest version this subscriber has (drop events at or below it)
        self.tracked_from = 0  # membership is tracked for versions above the snapshot's
        self.index = -1  # position in `members`
        self.role: str | None = None
        self.ended = False
        self.sent: set[str] | None = None  # ids of messages sent from the store whose events may still come
        self.seq: int | None = None  # the stream seq this subscriber has (drop events at or below it); None: not by seq

    def deliver(self, event: Event) -> None:
        seq = event.seq
        if seq is not None and self.seq is not None:
            if seq <= self.seq:
                return  # sent already (a snapshot or a replay at or past it)
            self.seq = seq
        version = event.version
        if event.message_id is not None:
            sent = self.sent
            if sent and event.message_id in sent:
                sent.discard(event.message_id)  # the snapshot held it already
                return
        elif version is not None:
            if version <= self.floor:
                return
            self.floor = version
            if event.members is not None and version > self.tracked_from:
                place = track_member(event.members, self.user_id, self.index, self.role)
                if place is None:
                    self._hub.end(self, "membership_removed", membership_removed(self.collaboration_id))
                    return
                self.index, self.role = place
        elif event.owners_only and self.role != "owner":
            return
        self.outbox.put(event.frame)


# -- history --------------------------------------------------------------------------------------


class _Log:
    """One collaboration's history: its latest updates (contiguous versions) and messages (stream order)."""

    __slots__ = ("updates", "messages")

    def __init__(self) -> None:
        self.updates: deque[Event] = deque()
        self.messages: deque[Event] = deque()

    def __bool__(self) -> bool:
        return bool(self.updates or self.messages)


class History:
    """The latest collaboration_updated and message_created events of each collaboration, bounded.

    Both are kept in the order the change stream delivered them and lose their
    oldest first, so each is contiguous: holding an event means holding every
    later one (that has been published)."""

    def __init__(self, per_collaboration: int, budget_bytes: int = DEFAULT_HISTORY_BYTES):
        self.per_collaboration = per_collaboration
        self.budget = budget_bytes
        self.bytes = 0
        self._logs: OrderedDict[str, _Log] = OrderedDict()

    def add(self, event: Event) -> None:
        cid = event.collaboration_id
        log = self._logs.get(cid)
        if log is None:
            log = self._logs[cid] = _Log()
        else:
            self._logs.move_to_end(cid)
        if event.version is not None:
            events = log.updates
            if events and events[-1].version != event.version - 1:  # type: ignore[operator]
                self._drop(events, len(events))  # not contiguous any more: start again from here
        else:
            events = log.messages
        events.append(event)
        self.bytes += event.size
        if len(events) > self.per_collaboration:
            self._drop(events, 1)
        while self.bytes > self.budget and self._logs:
            oldest_cid, oldest = next(iter(self._logs.items()))
            self._drop(oldest.updates or oldest.messages, 1)
            if not oldest:
                del self._logs[oldest_cid]

    def since(self, collaboration_id: str, since: int, upto: int) -> list[Event] | None:
        """Events after `since` up to `upto`, or None when some of them are no longer held.

        Events above the last one held are on their way from the change stream
        (the snapshot at `upto` is ahead of it) and come live, so they need not be here.
        """
        if since >= upto:
            return [] if since == upto else None
        log = self._logs.get(collaboration_id)
        updates = log.updates if log is not None else None
        if not updates or since + 1 < updates[0].version:  # type: ignore[operator]
            return None
        return [e for e in updates if since < e.version <= upto]  # type: ignore[operator]

    def by_seq(self, collaboration_id: str, since: int, upto: int) -> list[Event] | None:
        """Every event with seq in (`since`, `upto`], in seq order, or None when one of them is not held
        (left the history, or not yet read from the change stream): a cache in front of the database."""
        if since >= upto:
            return []
        log = self._logs.get(collaboration_id)
        if log is None:
            return None
        found: dict[int, Event] = {}
        for events in (log.updates, log.messages):
            for event in reversed(events):  # newest first: stop below `since`
                seq = event.seq
                if seq is None or seq <= since:
                    break
                if seq <= upto:
                    found[seq] = event
        if len(found) != upto - since:
            return None
        return [found[seq] for seq in range(since + 1, upto + 1)]

    def updates_after(self, collaboration_id: str, version: int) -> list[Event]:
        """The updates held above `version` (published, and perhaps not yet seen by a snapshot)."""
        log = self._logs.get(collaboration_id)
        return [e for e in log.updates if e.version > version] if log else []  # type: ignore[operator]

    def messages_after(self, collaboration_id: str, message_id: str) -> list[Event] | None:
        """The messages published after `message_id`, in stream order; None when it is not held."""
        log = self._logs.get(collaboration_id)
        if log is None:
            return None
        messages = log.messages
        for position in range(len(messages) - 1, -1, -1):
            if messages[position].message_id == message_id:
                return list(itertools.islice(messages, position + 1, None))
        return None

    def message_order(self, collaboration_id: str) -> dict[str, int]:
        """Each held message's position in stream order."""
        log = self._logs.get(collaboration_id)
        return {e.message_id: i for i, e in enumerate(log.messages)} if log else {}  # type: ignore[misc]

    def forget(self, collaboration_id: str) -> None:
        log = self._logs.pop(collaboration_id, None)
        if log:
            self.bytes -= sum(e.size for e in log.updates) + sum(e.size for e in log.messages)

    def clear(self) -> None:
        self._logs.clear()
        self.bytes = 0

    def __len__(self) -> int:
        return sum(len(log.updates) + len(log.messages) for log in self._logs.values())

    def _drop(self, log: deque[Event], count: int) -> None:
        for _ in range(count):
            self.bytes -= log.popleft().size


# -- the hub --------------------------------------------------------------------------------------


class Hub:
    def __init__(self, *, history: int, history_bytes: int = DEFAULT_HISTORY_BYTES, metrics: Any = None):
        self._topics: dict[str, dict[Subscription, None]] = {}
        self._presence: dict[str, Event] = {}  # the latest presence event of each topic
        self.history = History(history, history_bytes)
        self._metrics = metrics
        self._idles = 0  # times the reader found nothing more to read
        self._unsure: dict[Subscription, int] = {}  # subscriptions holding `sent` ids, and _idles then

    # subscriptions

    def register(self, collaboration_id: str, user_id: str, outbox: Outbox,
                 on_end: Callable[[Subscription, str], None]) -> Subscription:
        """A pending subscription: from now on it buffers every event of the collaboration."""
        sub = Subscription(self, collaboration_id, user_id, outbox, on_end)
        self._topics.setdefault(collaboration_id, {})[sub] = None
        if self._metrics is not None:
            self._metrics.ws_subscriptions.inc()
        return sub

    def activate(self, sub: Subscription, *, version: int, position: tuple[int, str | None], head: list[Frame],
                 snapshot: Frame | None = None, missed: list[Event] = (), since: int | None = None,
                 tail: list[Frame] = (), presence: Frame | None = None,
                 sent_messages: Iterable[str] | None = (), seq: int | None = None) -> bool:
        """Go live: send `head` (subscribed), the `snapshot` (`Outbox.put_snapshot`), the `missed`
        events, `tail` (missed messages) and who is here, then what was buffered and not already
        covered. Synchronous, so no event can slip in between. False if the subscription ended
        meanwhile (a resync).

        `sent_messages`: the ids of the messages in `head` / `tail`, read from the store; their
        events are not sent when they come (buffered, or live: the stream may be behind the read).
        None when `tail` came from the history (`missed_messages`): every buffered message is then
        in it, or older than what the client holds.

        `seq`: the stream seq the client holds once `head` / `snapshot` are out (a snapshot's, or
        the `sinceSeq` a replay in `missed` continues from): every event at or below it is
        dropped, buffered or live (None: the older version / message-id rules alone)."""
        if sub.ended:
            return False
        out = sub.outbox
        for frame in head:
            out.put(frame)
        if snapshot is not None:
            out.put_snapshot(snapshot)
        sub.floor = version if since is None else since
        sub.seq = seq
        sub.tracked_from = version
        sub.index, sub.role = position
        for event in missed:
            sub.deliver(event)
        for frame in tail:
            out.put(frame)
        latest = self._presence.get(sub.collaboration_id)
        if latest is not None:
            out.put(latest.frame)
        elif presence is not None:
            out.put(presence)
        sub.sent = set(sent_messages) if sent_messages is not None else None
        buffered, sub.buffer, sub.pending = sub.buffer or [], None, False
        for event in buffered:
            if sub.ended:
                break
            if event.type == PRESENCE or (event.message_id is not None and sent_messages is None):
                continue
            sub.deliver(event)
        if sub.sent:
            sub.sent.difference_update(self.history.message_order(sub.collaboration_id))  # published: not again
        if sub.sent and not sub.ended:
            self._unsure[sub] = self._idles  # the rest may still be on their way, or long published
        else:
            sub.sent = None
        return not sub.ended

    def unregister(self, sub: Subscription) -> None:
        if sub.ended:
            return
        sub.ended = True
        sub.buffer = None
        sub.sent = None
        self._unsure.pop(sub, None)
        subs = self._topics.get(sub.collaboration_id)
        if subs is not None:
            subs.pop(sub, None)
            if not subs:
                del self._topics[sub.collaboration_id]
                self._presence.pop(sub.collaboration_id, None)
        if self._metrics is not None:
            self._metrics.ws_subscriptions.dec()

    def end(self, sub: Subscription, reason: str, frame: Frame) -> None:
        """End a subscription from the server's side: `frame` is the last thing it sends."""
        if sub.ended:
            return
        self.unregister(sub)
        sub.outbox.put(frame)
        sub.on_end(sub, reason)

    # events

    def publish(self, event: Event) -> None:
        cid = event.collaboration_id
        if event.type == RESYNC_REQUIRED:
            self._resync(cid, event)
            return
        if event.version is not None or event.message_id is not None:
            event.seal()
            self.history.add(event)
        subs = self._topics.get(cid)
        if not subs:
            return
        if event.type == PRESENCE:
            event.seal()
            self._presence[cid] = event
        count = 0
        for sub in tuple(subs):
            if sub.pending:
                sub.buffer.append(event)  # type: ignore[union-attr]
            else:
                sub.deliver(event)
                count += 1
        if self._metrics is not None and count:
            self._metrics.deliveries.inc(count)

    def missed(self, collaboration_id: str, since: int, upto: int) -> list[Event] | None:
        return self.history.since(collaboration_id, since, upto)

    def missed_messages(self, collaboration_id: str, since_message_id: str) -> list[Event] | None:
        """The messages published after `since_message_id` (stream order), or None if it is not held."""
        return self.history.messages_after(collaboration_id, since_message_id)

    def message_order(self, collaboration_id: str) -> dict[str, int]:
        return self.history.message_order(collaboration_id)

    def in_stream_order(self, collaboration_id: str, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """A snapshot's messages (stored documents), oldest first, so that the last is the one to
        resume after: those the history holds in the order the change stream gave them (commit
        order; ids are made before the insert, so theirs may differ). Of those it does not hold, one
        with an id above the newest held id is newer (committed, not yet read by the change stream)
        and goes last; one below it most likely left the history and goes first, each in id order.
        The rare message with a lower id that commits late and is not yet read is then listed
        first, so a client that resumes after the last one listed may get it once more: clients
        drop a message id they hold."""
        if messages and all(isinstance(m.get("seq"), int) for m in messages):
            return sorted(messages, key=lambda m: m["seq"])  # numbered in commit order
        order = self.history.message_order(collaboration_id)
        newest = max(order, default=None)

        def place(message: dict[str, Any]) -> tuple[int, int, str]:
            mid = message["_id"]
            if mid in order:
                return 1, order[mid], mid
            return (2 if newest is not None and mid > newest else 0), 0, mid

        return sorted(messages, key=place)

    def removed_later(self, collaboration_id: str, version: int, user_id: str) -> bool:
        """Whether an update published above `version` removes `user_id` (a snapshot read before it)."""
        return any(e.members is not None and e.members.removes(user_id)
                   for e in self.history.updates_after(collaboration_id, version))

    def idle(self) -> None:
        """The reader found nothing more to read (an empty batch). Two of them after a subscription
        went live, every change committed before that has been published: its `sent` ids can go."""
        self._idles += 1
        if self._unsure:
            for sub in [s for s, at in self._unsure.items() if self._idles - at >= 2]:
                sub.sent = None
                del self._unsure[sub]

    def resync_all(self, reason: str) -> int:
        """Every subscription gets resync_required and ends (the reader lost track of changes)."""
        ended = 0
        for cid in list(self._topics):
            ended += self._resync(cid, resync_required(cid, reason))
        self.history.clear()
        self._presence.clear()
        return ended

    def _resync(self, collaboration_id: str, event: Event) -> int:
        self.history.forget(collaboration_id)
        subs = self._topics.get(collaboration_id)
        ended = tuple(subs or ())
        for sub in ended:
            self.end(sub, RESYNC_REQUIRED, event.frame)
        return len(ended)

    # introspection

    def subscribers(self, collaboration_id: str) -> int:
        return len(self._topics.get(collaboration_id, ()))

    @property
    def topics(self) -> int:
        return len(self._topics)
