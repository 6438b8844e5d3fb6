"""Running the API under uvicorn, and saying where once it is ready."""

from __future__ import annotations

import asyncio
from typing import Any

import uvicorn

from backend.settings import Settings


PROTOCOL_CAP_FACTOR = 4


def ws_protocol_cap(settings: Settings) -> int:
    """uvicorn's own frame cap (closes with 1009), above the app's WS_MAX_FRAME_BYTES so that a
    frame between the two gets the app's `payload_too_large` error and the connection stays."""
    return PROTOCOL_CAP_FACTOR * settings.ws_max_frame_bytes


def uvicorn_config(app: Any, settings: Settings, host: str, port: int) -> uvicorn.Config:
    return uvicorn.Config(
        app, host=host, port=port, lifespan="on", log_config=None, access_log=False,
        ws="websockets-sansio", ws_max_size=ws_protocol_cap(settings),
        ws_per_message_deflate=settings.ws_per_message_deflate,
        ws_ping_interval=settings.ws_ping_interval, ws_ping_timeout=settings.ws_ping_interval,
        timeout_graceful_shutdown=5, server_header=False,
    )


async def serve(app: Any, settings: Settings, host: str, port: int, banner: str = "") -> None:
    """Serve `app` until a signal stops it; print the URL (and `banner`) once ready."""
    server = uvicorn.Server(uvicorn_config(app, settings, host, port))
    task = asyncio.create_task(server.serve())
    while not server.started and not task.done():
        await asyncio.sleep(0.05)
    if server.started:
        shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        bound = server.servers[0].sockets[0].getsockname()[1] if server.servers else port
        url = f"http://{shown}:{bound}"
        print(f"Tandem is ready at {url}", flush=True)
        if banner:
            print(banner.replace("{url}", url), flush=True)
    await task
