"""In-process fan-out microbenchmark (run by hand): CPU per delivery of the hub's path, against the floor.

One uvicorn server in this process (Tandem's WebSocket protocol, backend/realtime/transport.py)
pinned to core 0, and K real loopback WebSocket subscribers (picows on uvloop) in a child process
pinned to core 1. The server publishes E events of about `--frame-bytes` bytes, `--rate` turns of
the loop a second (`--per-turn` events each, in the hub's mode: as the change reader publishes a
batch; its held frames are released inside the timing), one way (`--mode`), and reports the server process's CPU (user + system, the kernel's send
included) per delivery, over the publishing window and inside the publishing calls alone:

- `hub`: `Hub.publish(event)` to K live subscriptions (backend/realtime/hub.py: subscription
  filter, outbox, pre-framed write), the event built as the change reader builds one;
- `starlette`: `await ws.send_text(text)` per socket, as benchmarks/bare_broadcaster.py does;
- `write_now`: the pre-framed protocol's `write_now(frame)` per socket (its checks, then the write);
- `write`: `transport.write(frame_bytes)` per socket, the frame built once (asyncio's write, then
  the kernel: the floor of any per-socket path through asyncio's transport);
- `send`: the socket's own `send(frame_bytes)` (asyncio's write skipped: the kernel's share).

    .venv/bin/python benchmarks/fanout_micro.py --mode hub --mode starlette --mode write -k 1000 -e 200

Everything runs on 127.0.0.1 and stops by itself. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


# -- the subscribers (child process) ----------------------------------------------------------------


async def subscribers(port: int, k: int, expect: int) -> None:
    """K picows connections; each counts the text frames it gets. Prints READY once all are open,
    DONE once every connection has `expect` frames (or 30 s passed)."""
    from picows import WSListener, WSMsgType, ws_connect

    counts = [0] * k
    done = asyncio.get_running_loop().create_future()
    remaining = [k]

    def listener(i: int) -> Any:
        class Listener(WSListener):
            def on_ws_frame(self, transport: Any, frame: Any) -> None:
                if frame.msg_type == WSMsgType.TEXT:
                    counts[i] += 1
                    if counts[i] == expect:
                        remaining[0] -= 1
                        if not remaining[0] and not done.done():
                            done.set_result(None)

        return Listener

    sockets = []
    for i in range(k):
        transport, _ = await ws_connect(listener(i), f"ws://127.0.0.1:{port}/ws")
        sockets.append(transport)
    print("READY", flush=True)
    try:
        await asyncio.wait_for(done, 30 + expect)
    except TimeoutError:
        pass
    print("DONE", json.dumps({"frames": sum(counts), "short": sum(1 for c in counts if c < expect)}), flush=True)
    for transport in sockets:
        transport.disconnect()


# -- the server (this process) ----------------------------------------------------------------------


def body(i: int, frame_bytes: int) -> dict[str, Any]:
    changes = {
        "updatedFields": {"details.title": "t" * max(0, frame_bytes - 260), "version": i + 2},
        "removedFields": [],
    }
    return {
        "type": "collaboration_updated",
        "collaborationId": "c" * 24,
        "version": i + 2,
        "seq": i + 2,
        "action": "updateDetails",
        "actor": "u" * 24,
        "at": "2026-12-02T12:00:00.000Z",
        "changes": changes,
    }


async def serve_and_publish(args: argparse.Namespace, mode: str) -> dict[str, Any]:
    import uvicorn
    from starlette.applications import Starlette
    from starlette.routing import WebSocketRoute
    from starlette.websockets import WebSocket, WebSocketDisconnect

    from backend.realtime import events as ev
    from backend.realtime.hub import GoLive, Hub, Outbox
    from backend.realtime.transport import PREFRAMED, TandemWebSocketProtocol, text_frame

    hub = Hub(history=100)
    sockets: list[WebSocket] = []
    transports: list[Any] = []
    writers: list[Any] = []
    cid = "c" * 24

    async def endpoint(ws: WebSocket) -> None:
        await ws.accept()
        pre = ws.scope["extensions"][PREFRAMED]
        outbox = Outbox(
            pre["send"], 1000, lambda: None, 4 * 1024 * 1024, write_now=pre["write_now"], lane=pre.get("lane")
        )
        sub = hub.register(cid, "u" * 24, outbox, lambda s, r: None)
        hub.activate(sub, GoLive(version=1, position=(0, "editor"), head=[], seq=1))
        sockets.append(ws)
        transports.append(pre["write_now"].__self__.transport)
        writers.append(pre["write_now"])
        try:
            while True:
                await ws.receive_text()
        except WebSocketDisconnect:
            pass
        finally:
            hub.unregister(sub)

    app = Starlette(routes=[WebSocketRoute("/ws", endpoint)])
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, ws=TandemWebSocketProtocol, log_level="warning", lifespan="off"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)

    client = await asyncio.create_subprocess_exec(
        *pinned(args.client_core, [sys.executable, __file__, "--child", str(port), str(args.k), str(args.events)]),
        stdout=asyncio.subprocess.PIPE,
    )
    assert client.stdout is not None
    line = await client.stdout.readline()
    assert line.startswith(b"READY"), line
    while len(sockets) < args.k:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.5)

    frames = [ev.encode_frame(body(i, args.frame_bytes)) for i in range(args.events)]
    size = frames[0].size
    inside = 0.0
    start_cpu, start = os.times(), time.monotonic()
    for i in range(args.events):
        at = time.thread_time()
        if mode == "hub":
            hub.publish(ev.Event(ev.COLLABORATION_UPDATED, cid, body(i, args.frame_bytes), version=i + 2, seq=i + 2))
            if (i + 1) % args.per_turn:
                inside += time.thread_time() - at
                continue  # the next event in the same turn of the loop (as the change reader reads a batch)
            if hasattr(hub, "release"):
                hub.release()  # what the hub holds, written now, inside the timing (else at the next turn)
        elif mode == "starlette":
            text = frames[i].text
            for ws in list(sockets):
                await ws.send_text(text)
        elif mode == "write_now":
            frame = frames[i]
            for w in writers:
                w(frame)
        elif mode == "write":
            data = text_frame(frames[i].payload)
            for transport in transports:
                transport.write(data)
        else:  # "send": the socket's send() alone, asyncio's write skipped (the kernel's share)
            data = text_frame(frames[i].payload)
            for sock in [t._sock for t in transports]:
                sock.send(data)
        inside += time.thread_time() - at
        await asyncio.sleep(1 / args.rate)
    wall = time.monotonic() - start
    end_cpu = os.times()
    line = await client.stdout.readline()
    got = json.loads(line.split(b" ", 1)[1])
    await client.wait()
    server.should_exit = True
    await task
    deliveries = args.k * args.events
    cpu = (end_cpu.user - start_cpu.user) + (end_cpu.system - start_cpu.system)
    return {
        "mode": mode,
        "frame_bytes": size,
        "deliveries": deliveries,
        "received": got["frames"],
        "wall_s": round(wall, 2),
        "cpu_us_per_delivery_window": round(1e6 * cpu / deliveries, 2),
        "cpu_us_per_delivery_publishing": round(1e6 * inside / deliveries, 2),
    }


def pinned(core: int | None, command: list[str]) -> list[str]:
    return ["taskset", "-c", str(core), *command] if core is not None and shutil.which("taskset") else command


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        import uvloop

        port, k, expect = map(int, sys.argv[2:5])
        uvloop.run(subscribers(port, k, expect))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", action="append", choices=["hub", "starlette", "write_now", "write", "send"])
    parser.add_argument("-k", type=int, default=1000, help="subscribers")
    parser.add_argument("-e", "--events", type=int, default=200)
    parser.add_argument("--rate", type=float, default=20, help="turns a second (each --per-turn events)")
    parser.add_argument("--frame-bytes", type=int, default=450)
    parser.add_argument(
        "--per-turn", type=int, default=1, help="hub mode: events published in one turn of the loop (a reader's batch)"
    )
    parser.add_argument("--server-core", type=int, default=0)
    parser.add_argument("--client-core", type=int, default=1)
    args = parser.parse_args()
    if args.server_core is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.server_core})
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    results = [asyncio.run(serve_and_publish(args, mode)) for mode in args.mode or ["hub", "starlette", "write"]]
    print(json.dumps({"command": " ".join(sys.argv), "load_average": os.getloadavg(), "results": results}, indent=2))


if __name__ == "__main__":
    main()
