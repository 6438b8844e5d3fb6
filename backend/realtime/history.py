"""The hub's `History` of recent events per collaboration (described in backend/realtime/hub.py)."""

from __future__ import annotations

import itertools
from collections import OrderedDict, deque

from backend.realtime.events import Event

DEFAULT_HISTORY_BYTES = 32 * 1024 * 1024
EVENT_OVERHEAD = 512  # bytes each held event takes beside its payload (the Event, its Frame, ids; ~480 measured)


def cost(event: Event) -> int:
    """What holding `event` counts against the budget: its payload (held once, as bytes), its objects,
    and the membership change it carries (ids and roles)."""
    members = event.members
    return event.size + EVENT_OVERHEAD + (members.weight if members is not None else 0)


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
            if events and events[-1].version != event.version - 1:
                self._drop(events, len(events))  # not contiguous any more: start again from here
        else:
            events = log.messages
        events.append(event)
        self.bytes += cost(event)
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
        if not updates or since + 1 < updates[0].version:  # type: ignore[operator]  # the updates log holds only events with a version (see append)
            return None
        return [e for e in updates if since < e.version <= upto]  # type: ignore[operator]  # the updates log holds only events with a version (see append)

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
        return [e for e in log.updates if e.version > version] if log else []  # type: ignore[operator]  # the updates log holds only events with a version (see append)

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
        return {e.message_id: i for i, e in enumerate(log.messages)} if log else {}  # type: ignore[misc]  # the messages log holds only events with a message id (see append)

    def forget(self, collaboration_id: str) -> None:
        log = self._logs.pop(collaboration_id, None)
        if log:
            self.bytes -= sum(map(cost, log.updates)) + sum(map(cost, log.messages))

    def clear(self) -> None:
        self._logs.clear()
        self.bytes = 0

    def __len__(self) -> int:
        return sum(len(log.updates) + len(log.messages) for log in self._logs.values())

    def _drop(self, log: deque[Event], count: int) -> None:
        for _ in range(count):
            self.bytes -= cost(log.popleft())
