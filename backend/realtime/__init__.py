"""Realtime: MongoDB change streams to WebSocket subscribers, in three separate pieces.

- `changes.ChangeReader`: one change stream per API process → events (never a socket);
- `hub.Hub`: events → subscriptions, each event encoded once, bounded per-connection buffers;
- `ws.RealtimeEndpoint`: the `/ws` protocol (auth, subscribe, presence, limits).

`Realtime` wires them for one process; `start` / `stop` are the app's hooks and
`routes` its route (backend/composition.py adds them). See docs/realtime.md.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.routing import WebSocketRoute

from backend.realtime.changes import ChangeReader
from backend.realtime.hub import Hub
from backend.realtime.outbox import QueueBudget
from backend.realtime.presence import PresenceKeeper
from backend.realtime.replay import Replays
from backend.realtime.ws import GOING_AWAY, Connection, RealtimeEndpoint, UserSockets

if TYPE_CHECKING:
    from backend.runtime import Runtime  # (the runtime names this layer's type under TYPE_CHECKING too)

SHUTDOWN_TIMEOUT = 3.0


class Realtime:
    def __init__(self, runtime: Runtime):
        self.settings = runtime.settings
        self.store = runtime.store
        self.verifier = runtime.verifier
        self.metrics = runtime.metrics
        self.hub = Hub(history=self.settings.hub_history, metrics=runtime.metrics)
        self.queue_budget = QueueBudget(self.settings.ws_total_queue_bytes)  # every connection's outbox
        self.presence = PresenceKeeper(runtime.store, self.settings.presence_ttl)
        self.reader = ChangeReader(
            runtime.store,
            self.hub.publish,
            self.hub.resync_all,
            runtime.metrics,
            idle=self.hub.idle,
            wanted=lambda cid: self.hub.subscribers(cid) > 0,
        )
        self.connections: set[Connection] = set()
        self.sockets = UserSockets(self.settings.ws_max_sockets_per_user)
        self.replays = Replays(runtime.store, self.settings.ws_queue_bytes)  # sinceSeq resumes from MongoDB

    async def start(self) -> None:
        await self.presence.start()
        await self.reader.start()

    async def stop(self) -> None:
        await self.close_all(GOING_AWAY, "server going away")
        await self.reader.stop()
        await self.presence.stop()

    async def close_all(self, code: int, reason: str) -> None:
        """Close every connection with `code` and wait (a little) for them to finish."""
        closing = list(self.connections)
        for connection in closing:
            connection.close_soon(code, reason)
        if closing:
            waiters = [asyncio.ensure_future(c.done.wait()) for c in closing]
            _, late = await asyncio.wait(waiters, timeout=SHUTDOWN_TIMEOUT)
            for waiter in late:
                waiter.cancel()


async def start(runtime: Runtime, app: Starlette) -> None:
    realtime = Realtime(runtime)
    runtime.realtime = realtime
    await realtime.start()
    # Before uvicorn closes the sockets itself (with 1012), say 1001 "going away" (backend/serve.py).
    app.state.going_away.append(lambda: realtime.close_all(GOING_AWAY, "server going away"))


async def stop(runtime: Runtime, app: Starlette) -> None:
    realtime = runtime.realtime
    if realtime is not None:
        await realtime.stop()


routes = [WebSocketRoute("/ws", RealtimeEndpoint())]
