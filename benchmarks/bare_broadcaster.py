"""The peer `fanout.py --compare` measures Tandem against: a bare Starlette broadcaster.

Just enough of Tandem's protocol for benchmarks/fanout_client.py, and nothing
else: no tokens checked, no store, no change stream, no rules.

- `WS /ws`: `{"type": "auth"}` -> `ready`; `{"type": "subscribe", "collaborationId"}`
  -> `subscribed` (the room's version) then `presence` (the client's "subscribed
  and idle" signal); `{"type": "ping"}` -> `pong`.
- `POST /api/collaborations` -> 201 `{"id", "version"}`: a new room.
- `POST /api/actions/{name}` `{"collaborationId", "payload"}` -> the room's version
  goes up by one, one `collaboration_updated` frame (JSON, padded to
  `BARE_FRAME_BYTES`, which fanout.py sets to the size of Tandem's frames) is
  encoded once and sent with `await ws.send_text(...)` to every socket of the room,
  one after the other, then the answer `{"collaborationId", "version"}`.

It runs under the same uvicorn configuration and the same serve() as `tandem api`
(backend/serve.py: the same loop, limits, ping interval and GC tuning), with uvicorn's
own WebSocket protocol (websockets-sansio): not Tandem's subclass of it
(backend/realtime/transport.py), whose pre-framing and watched transport only Tandem
uses. So the two differ only in the application and in that subclass. Run by fanout.py:

    python benchmarks/bare_broadcaster.py --host 127.0.0.1 --port 8765
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import sys
import time
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

FRAME_BYTES = int(os.environ.get("BARE_FRAME_BYTES", "450"))
rooms: dict[str, set[WebSocket]] = {}
versions: dict[str, int] = {}
ids = itertools.count(1)


async def create(request: Request) -> JSONResponse:
    cid = f"room{next(ids)}"
    rooms[cid], versions[cid] = set(), 1
    return JSONResponse({"id": cid, "version": 1}, status_code=201)


async def publish(request: Request) -> JSONResponse:
    body = await request.json()
    cid = body["collaborationId"]
    version = versions[cid] = versions[cid] + 1
    event = {
        "type": "collaboration_updated",
        "collaborationId": cid,
        "version": version,
        "action": request.path_params["name"],
        "at": time.time(),
        "changes": {"updatedFields": {**body.get("payload", {}), "version": version}, "removedFields": []},
    }
    text = json.dumps(event)
    if len(text) < FRAME_BYTES:  # the same bytes on the wire as Tandem's frame
        event["pad"] = "x" * (FRAME_BYTES - len(text) - 10)
        text = json.dumps(event)
    for ws in list(rooms[cid]):
        try:
            await ws.send_text(text)
        except Exception:  # noqa: BLE001 - a socket that went away
            rooms[cid].discard(ws)
    return JSONResponse({"collaborationId": cid, "version": version})


async def endpoint(ws: WebSocket) -> None:
    await ws.accept()
    joined: set[str] = set()
    try:
        first = json.loads(await ws.receive_text())
        if first.get("type") != "auth":
            await ws.close(4401)
            return
        await ws.send_text(json.dumps({"type": "ready", "userId": "bare", "connectionId": str(id(ws))}))
        while True:
            frame = json.loads(await ws.receive_text())
            kind, cid = frame.get("type"), frame.get("collaborationId")
            if kind == "ping":
                await ws.send_text('{"type": "pong"}')
            elif kind == "subscribe" and cid in rooms:
                rooms[cid].add(ws)
                joined.add(cid)
                await ws.send_text(json.dumps({"type": "subscribed", "collaborationId": cid, "version": versions[cid]}))
                await ws.send_text(json.dumps({"type": "presence", "collaborationId": cid, "members": []}))
            else:
                await ws.send_text(json.dumps({"type": "error", "code": "invalid_request", "collaborationId": cid}))
    except WebSocketDisconnect:
        pass
    finally:
        for cid in joined:
            rooms[cid].discard(ws)


app = Starlette(
    routes=[
        Route("/api/collaborations", create, methods=["POST"]),
        Route("/api/actions/{name}", publish, methods=["POST"]),
        WebSocketRoute("/ws", endpoint),
    ]
)


def main() -> None:
    from backend.serve import serve
    from backend.settings import load_settings

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    # the settings `tandem api` would read from the same environment: its uvicorn options, but
    # uvicorn's own WebSocket protocol (websockets-sansio), not Tandem's pre-framing subclass of it
    asyncio.run(serve(app, load_settings(), args.host, args.port, ws="websockets-sansio"))


if __name__ == "__main__":
    main()
