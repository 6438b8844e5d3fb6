"""The hub: events in, subscribers out. It never reads MongoDB and never parses a frame.

(Over 300 lines: subscribe, activate, publish, resync and the stream-order helpers share the
hub's topic tables; the outbox and the history are already their own modules.)

- `Hub.publish(event)` hands one event to every subscription of its
  collaboration, synchronously: the event's frame is encoded once and the same
  object goes to every subscriber's `Outbox`; nobody waits for anybody.
- An ordinary event (no membership change, not owner-only) goes to each live
  subscription whose connection's `Lane` (backend/realtime/lane.py) is open as the event's
  pre-framed bytes, held on the lane: `release` (at the event loop's next turn, or as soon as
  the lanes hold `HOLD_BYTES`) writes each lane's held frames with one `send()` of the socket
  (what it does not take goes to the transport), so a connection that several events reach in
  one turn gets them in one system call. Per delivery this loop is most of what a server does.
  Otherwise (and for every other event) through the subscription's filter and outbox:
- An `Outbox` (backend/realtime/outbox.py) is one connection's way out. While the connection's transport
  takes writes at once, a frame is written at once (with `write_now`, the
  pre-framed sends of backend.realtime.transport, the frame's bytes go
  straight to the transport; else the ASGI send coroutine is stepped by hand
  and finishes without suspending); once a write has to wait,
  a writer task finishes it and later frames queue behind it, at most
  `queue_size` frames and `queue_bytes` bytes (each frame knows its size, so
  that is an integer add). One more and the outbox overflows: its owner
  closes the connection with 4009. A snapshot is queued beside the byte
  budget, one at a time, so that one larger than it still reaches a client.
- A `Subscription` (here) starts pending (events are buffered while the endpoint
  reads the snapshot), is activated with what the client already has (a `GoLive`: a snapshot or a
  catch-up, read by backend/realtime/ws.py), then
  filters live events: seqs (backend/store/stream.py) at or below what it
  sent, or, for the older `sinceVersion` subscriptions, versions at or below
  it, owner-only events
  for non-owners, and membership: a change that removes the subscriber's user
  sends `membership_removed` instead and ends the subscription. A message it
  was sent from the store (a snapshot) is not sent again when its event comes.
- `History` (backend/realtime/history.py) keeps the last `hub_history` collaboration_updated events and the
  last `hub_history` message_created events of each collaboration, the latter
  in the order the change stream gave them (commit order), at most
  `history_bytes` in all, for `sinceVersion` / `sinceMessageId` catch-up, and
  as a cache in front of the database for `sinceSeq` (`History.by_seq`).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence

from backend.metrics import Metrics
from backend.realtime.events import (
    PRESENCE,
    RESYNC_REQUIRED,
    Event,
    Frame,
    membership_removed,
    resync_required,
    track_member,
    wire,
)
from backend.realtime.history import DEFAULT_HISTORY_BYTES, History
from backend.realtime.lane import Lane
from backend.realtime.outbox import DEFAULT_QUEUE_BYTES, Outbox, Send, WriteNow

# What the lanes may hold between releases: frames published since the last release, in bytes. Past
# it, what is held is written before the next frame is held, so no lane holds more than this, or one
# frame. Small on purpose: joining frames saves a send() per frame, which is most of a small frame's
# cost and little of a large one's; and a send() larger than what the peer's receive window takes
# (over loopback, where a segment may be 64 KB) waits for TCP's persist timer (~200 ms) to go out.
HOLD_BYTES = 4 * 1024

log = logging.getLogger("tandem.realtime")

__all__ = [
    "DEFAULT_HISTORY_BYTES",
    "DEFAULT_QUEUE_BYTES",
    "GoLive",
    "History",
    "Hub",
    "Outbox",
    "Send",
    "Subscription",
    "WriteNow",
]


# -- subscriptions --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GoLive:
    """What a subscription goes live with (`Hub.activate`), read by the endpoint (backend/realtime/ws.py).

    `version`, `position` (index in `members`, role): the document the endpoint read. `head`: the
    frames first (subscribed); `snapshot`: queued as `Outbox.put_snapshot`; `missed`: events the
    client lacks (a catch-up), after `since` (a version; None: `version`); `tail`: missed messages;
    `presence`: who is here, unless the hub holds a newer list.

    `sent_messages`: the ids of the messages in the snapshot / `tail`, read from the store; their
    events are not sent when they come (buffered, or live: the stream may be behind the read).
    None when `tail` came from the history (`missed_messages`): every buffered message is then
    in it, or older than what the client holds.

    `seq`: the stream seq the client holds once head / snapshot are out (a snapshot's, or the
    `sinceSeq` a replay in `missed` continues from): every event at or below it is dropped,
    buffered or live (None: the older version / message-id rules alone)."""

    version: int
    position: tuple[int, str | None]
    head: list[Frame]
    snapshot: Frame | None = None
    missed: Sequence[Event] = ()
    since: int | None = None
    tail: Sequence[Frame] = ()
    presence: Frame | None = None
    sent_messages: Iterable[str] | None = ()
    seq: int | None = None


class Subscription:
    """One connection's subscription to one collaboration."""

    __slots__ = (
        "collaboration_id",
        "user_id",
        "outbox",
        "on_end",
        "pending",
        "buffer",
        "floor",
        "tracked_from",
        "index",
        "role",
        "ended",
        "sent",
        "seq",
        "lane",
        "_hub",
    )

    def __init__(
        self,
        hub: "Hub",
        collaboration_id: str,
        user_id: str,
        outbox: Outbox,
        on_end: Callable[["Subscription", str], None],
    ):
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
        self.lane = outbox.lane  # the connection's fast way out (Hub.publish), None unless pre-framed

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


# -- the hub --------------------------------------------------------------------------------------


class Hub:
    def __init__(self, *, history: int, history_bytes: int = DEFAULT_HISTORY_BYTES, metrics: Metrics | None = None):
        self._topics: dict[str, dict[Subscription, None]] = {}
        self._presence: dict[str, Event] = {}  # the latest presence event of each topic
        self.history = History(history, history_bytes)
        self._metrics = metrics
        self._idles = 0  # times the reader found nothing more to read
        self._unsure: dict[Subscription, int] = {}  # subscriptions holding `sent` ids, and _idles then
        self._holding: list[Subscription] = []  # subscriptions whose lane holds bytes (Lane.hold), one per lane
        self._holding_bytes = 0  # the frames held since the last release (each lane holds at most these)
        self._release_handle: asyncio.Handle | None = None

    # subscriptions

    def register(
        self, collaboration_id: str, user_id: str, outbox: Outbox, on_end: Callable[[Subscription, str], None]
    ) -> Subscription:
        """A pending subscription: from now on it buffers every event of the collaboration."""
        sub = Subscription(self, collaboration_id, user_id, outbox, on_end)
        self._topics.setdefault(collaboration_id, {})[sub] = None
        if self._metrics is not None:
            self._metrics.ws_subscriptions.inc()
        return sub

    def activate(self, sub: Subscription, live: GoLive) -> bool:
        """Go live with what `live` holds (GoLive): send its head (subscribed), snapshot, missed
        events, tail (missed messages) and who is here, then what was buffered and not already
        covered. Synchronous, so no event can slip in between. False if the subscription ended
        meanwhile (a resync)."""
        if sub.ended:
            return False
        out = sub.outbox
        for frame in live.head:
            out.put(frame)
        if live.snapshot is not None:
            out.put_snapshot(live.snapshot)
        sub.floor = live.version if live.since is None else live.since
        sub.seq = live.seq
        sub.tracked_from = live.version
        sub.index, sub.role = live.position
        for event in live.missed:
            sub.deliver(event)
        for frame in live.tail:
            out.put(frame)
        latest = self._presence.get(sub.collaboration_id)
        if latest is not None:
            out.put(latest.frame)
        elif live.presence is not None:
            out.put(live.presence)
        sent_messages = live.sent_messages
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
        frame = event.frame
        count = 0
        if event.members is not None or event.owners_only:
            for sub in tuple(subs):  # membership, roles: each subscription's own rules
                if sub.pending:
                    sub.buffer.append(event)  # type: ignore[union-attr]  # a pending subscription always has its buffer
                else:
                    sub.deliver(event)
                    count += 1
        else:
            # The common case (an update that leaves the members alone, a message, presence), one
            # subscription at a time as `Subscription.deliver` would do it, written with one call
            # where the connection's lane is open: per delivery, this loop is most of what the server does.
            data = frame.wire  # built at the first write (a deflate-only process never builds it)
            seq, version, mid = event.seq, event.version, event.message_id
            if self._holding and self._holding_bytes + frame.size > HOLD_BYTES:
                self.release()  # no lane holds more than HOLD_BYTES, or one frame
            holding = self._holding
            held_here = False
            for sub in tuple(subs):
                if sub.pending:
                    sub.buffer.append(event)  # type: ignore[union-attr]  # a pending subscription always has its buffer
                    continue
                count += 1
                if seq is not None and sub.seq is not None:
                    if seq <= sub.seq:
                        continue  # sent already (a snapshot or a replay at or past it)
                    sub.seq = seq
                if mid is not None:
                    sent = sub.sent
                    if sent and mid in sent:
                        sent.discard(mid)  # the snapshot held it already
                        continue
                elif version is not None:
                    if version <= sub.floor:
                        continue
                    sub.floor = version
                lane = sub.lane
                if lane is None or lane.write is None:
                    sub.outbox.put(frame)
                    continue
                if data is None:
                    data = wire(frame)
                held = lane.held  # Lane.hold, inlined
                if held is None:
                    lane.held = data
                    holding.append(sub)
                elif isinstance(held, list):
                    held.append(data)
                else:
                    lane.held = [held, data]
                held_here = True
            if held_here:
                self._holding_bytes += frame.size
                if self._release_handle is None:
                    self._schedule_release()
        if self._metrics is not None and count:
            self._metrics.deliveries.inc(count)

    def _schedule_release(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # published outside a loop (a test): written at once
            self.release()
            return
        self._release_handle = loop.call_soon(self.release)

    def release(self) -> None:
        """Write what the lanes hold: each connection's held frames in one `send()`, in order."""
        handle, self._release_handle = self._release_handle, None
        if handle is not None:
            handle.cancel()
        holding, self._holding = self._holding, []
        self._holding_bytes = 0
        for sub in holding:  # Lane.release, inlined
            lane: Lane = sub.lane  # type: ignore[assignment]  # only subscriptions with a lane hold
            held = lane.held
            if held is None:
                continue  # written meanwhile: the lane shut, or the outbox wrote
            lane.held = None
            data = b"".join(held) if isinstance(held, list) else held
            try:
                try:
                    n = lane.write(data)  # type: ignore[misc]  # set while the lane holds bytes
                except OSError:
                    n = 0
                if n != len(data):
                    lane.spill(data, n)
            except Exception:  # one connection's failure: it ends, the others are written
                log.exception("a connection's held frames could not be written; closing it")
                lane.drop()
                sub.outbox.fail()  # closed (4009): its client resumes with sinceSeq, no gap unseen

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
        return any(
            e.members is not None and e.members.removes(user_id)
            for e in self.history.updates_after(collaboration_id, version)
        )

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
