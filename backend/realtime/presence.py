"""This process's share of presence: its connections' documents in the `presence` collection.

A connection becomes present in a collaboration when it sends a `presence`
frame, and stops being present when it unsubscribes, loses its membership or
closes. One heartbeat per process pushes back the expiry of all its documents
(`presence_ttl`), so if the process dies they expire without it. The change
stream carries every change to the readers of all API processes, which send
`presence` events; a heartbeat alone (only `expiresAt` moved) sends nothing.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any, Awaitable

from backend.store.failures import StoreError
from backend.store.store import Store

log = logging.getLogger("tandem.realtime")


class PresenceKeeper:
    def __init__(self, store: Store, ttl: int):
        self._presence = store.presence
        self.ttl = ttl
        self.process_id = uuid.uuid4().hex
        self._task: asyncio.Task[None] | None = None
        self._chores: set[asyncio.Task[None]] = set()

    @property
    def interval(self) -> float:
        return max(0.5, self.ttl / 3)

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._beat(), name="tandem-presence-heartbeat")

    async def stop(self) -> None:
        if self._chores:
            await asyncio.gather(*self._chores, return_exceptions=True)
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        await self._quietly(self._presence.remove_process(self.process_id))

    async def join(self, collaboration_id: str, connection_id: str, user_id: str, state: dict[str, Any]) -> None:
        await self._presence.upsert(collaboration_id, connection_id, user_id, self.process_id, state, self.ttl)

    async def leave(self, collaboration_id: str, connection_id: str) -> None:
        await self._quietly(self._presence.remove(collaboration_id, connection_id))

    async def leave_all(self, connection_id: str) -> None:
        await self._quietly(self._presence.remove_connection(connection_id))

    def leave_soon(self, connection_id: str) -> None:
        """leave_all in the background (for a connection whose task was cancelled)."""
        task = asyncio.get_running_loop().create_task(self.leave_all(connection_id))
        self._chores.add(task)
        task.add_done_callback(self._chores.discard)

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await self._quietly(self._presence.heartbeat(self.process_id, self.ttl))

    @staticmethod
    async def _quietly(work: Awaitable[None]) -> None:
        try:
            await work
        except StoreError as exc:  # presence is best effort; its TTL cleans up after us
            log.warning("presence write failed: %r", exc)
