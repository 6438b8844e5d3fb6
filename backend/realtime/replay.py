"""Replays of a collaboration's stream from the database, for `subscribe` with `sinceSeq`.

`Replays.read(cid, since, upto)` gives the events with seq in (`since`, `upto`], built from their
stored form (backend/store/stream.py) by `events.replayed`, the bytes the live stream sent. The
resumes that ask for the same range at the same time share one read (a reconnect storm: every
client of a collaboration was current and asks from the same seq), and so share its events
(each frame is encoded once). What one read holds is bounded: it stops, answering None, once
the events pass `budget` bytes (the most any connection may queue, WS_QUEUE_BYTES), as it does
at a seq with nothing stored. It reads the stored events one at a time (`Stream.read`: projected
audit entries, small cursor batches) and closes the read when it stops, so it holds the budget,
one event past it and a cursor batch, never a whole window of entries.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from backend.realtime import events as ev
from backend.store.store import Store


class Replays:
    def __init__(self, store: Store, budget: int):
        self._store = store
        self._budget = budget
        self._running: dict[tuple[str, int, int], asyncio.Future[list[ev.Event] | None]] = {}
        self.shared = 0  # reads a resume did not have to make (another one's was running)

    async def read(self, collaboration_id: str, since: int, upto: int) -> list[ev.Event] | None:
        key = (collaboration_id, since, upto)
        running = self._running.get(key)
        if running is None:
            running = asyncio.ensure_future(self._read(collaboration_id, since, upto))
            self._running[key] = running
            running.add_done_callback(lambda done: self._done(key, done))
        else:
            self.shared += 1
        return await asyncio.shield(running)  # a waiter cancelled does not cancel the others' read

    def _done(self, key: tuple[str, int, int], done: asyncio.Future[Any]) -> None:
        if self._running.get(key) is done:
            del self._running[key]
        if not done.cancelled():
            done.exception()  # retrieved: every waiter got it already (or there was none left)

    async def _read(self, collaboration_id: str, since: int, upto: int) -> list[ev.Event] | None:
        size, expected = 0, since + 1
        events: list[ev.Event] = []
        reading = self._store.stream.read(collaboration_id, since, upto)
        async with contextlib.aclosing(reading) as stored_events:
            async for seq, kind, stored in stored_events:
                event = ev.replayed(kind, stored) if seq == expected else None
                if event is None:
                    return None  # a seq with nothing stored (or changes too large to store)
                size += event.size
                if size > self._budget:
                    return None  # more than any connection may queue
                events.append(event)
                expected += 1
        return events if expected == upto + 1 else None
