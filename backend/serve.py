"""Running the API under uvicorn, and saying where once it is ready."""

from __future__ import annotations

import asyncio
import gc
import logging
from typing import TYPE_CHECKING

import uvicorn

from backend.realtime.transport import TandemWebSocketProtocol
from backend.settings import Settings

if TYPE_CHECKING:
    import socket

    from starlette.applications import Starlette
    from starlette.types import ASGIApp


PROTOCOL_CAP_FACTOR = 4


def ws_protocol_cap(settings: Settings) -> int:
    """uvicorn's own frame cap (closes with 1009), above the app's WS_MAX_FRAME_BYTES so that a
    frame between the two gets the app's `payload_too_large` error and the connection stays."""
    return PROTOCOL_CAP_FACTOR * settings.ws_max_frame_bytes


def uvicorn_config(
    app: ASGIApp, settings: Settings, host: str, port: int, ws: type[asyncio.Protocol] | str = TandemWebSocketProtocol
) -> uvicorn.Config:
    """`ws`: Tandem's pre-framing protocol; benchmarks/bare_broadcaster.py runs uvicorn's own
    ("websockets-sansio", which Tandem's extends) so that the peer pays nothing of Tandem's.

    HTTP is parsed by httptools, named rather than left to "auto": without it uvicorn would fall
    back to h11, a parser in Python, at several times the CPU per request. No proxy headers:
    uvicorn's ProxyHeadersMiddleware (one more layer per request) only rewrites the scope's
    `client` and `scheme` from X-Forwarded-For/-Proto, which nothing in Tandem reads (rate limits
    are per user, links are relative, the log has no client address). No access log of uvicorn's
    (Tandem's own is `tandem.http`, backend/api/middleware.py), no `server` header."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        lifespan="on",
        log_config=None,
        access_log=False,
        http="httptools",
        proxy_headers=False,
        ws=ws,
        ws_max_size=ws_protocol_cap(settings),
        ws_per_message_deflate=settings.ws_per_message_deflate,
        ws_ping_interval=settings.ws_ping_interval,
        ws_ping_timeout=settings.ws_ping_interval,
        timeout_graceful_shutdown=5,
        server_header=False,
    )


class Server(uvicorn.Server):
    """uvicorn's server, running the app's "going away" hooks when it stops, before it closes
    connections itself: so WebSocket clients get the contract's 1001, not uvicorn's 1012."""

    def __init__(self, config: uvicorn.Config, app: Starlette):
        super().__init__(config)
        self._going_away = getattr(getattr(app, "state", None), "going_away", [])

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for hook in list(self._going_away):
            try:
                await hook()
            except Exception:
                logging.getLogger("tandem").exception("a going-away hook failed")
        await super().shutdown(sockets)


GC_THRESHOLD = (10_000, 10, 100)  # Python's default is (700, 10, 10); see docs/performance.md, "GC"


def tune_gc() -> None:
    """Once the server is up: shorter and much rarer full garbage collections.

    `gc.freeze()` moves everything start-up made (~75,000 objects: modules, the app,
    its routes) out of the collector's sight, so a full collection no longer walks it.
    A young generation of 10,000 objects instead of 700 lets short-lived objects (a
    request, a frame being sent) die before a collection sees them, so few reach the
    old generation, and full collections (which walk every long-lived object: ~150
    per open connection) wait for 100 middle-generation collections instead of 10.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLD)


async def serve(
    app: Starlette,
    settings: Settings,
    host: str,
    port: int,
    banner: str = "",
    ws: type[asyncio.Protocol] | str = TandemWebSocketProtocol,
) -> None:
    """Serve `app` until a signal stops it; print the URL (and `banner`) once ready. `ws`: as
    `uvicorn_config`'s."""
    server = Server(uvicorn_config(app, settings, host, port, ws), app)
    task = asyncio.create_task(server.serve())
    while not server.started and not task.done():
        await asyncio.sleep(0.05)
    if server.started:
        tune_gc()
        shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        bound = server.servers[0].sockets[0].getsockname()[1] if server.servers else port
        url = f"http://{shown}:{bound}"
        print(f"Tandem is ready at {url}", flush=True)
        if banner:
            print(banner.replace("{url}", url), flush=True)
    await task
