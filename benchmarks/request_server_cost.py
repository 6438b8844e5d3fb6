"""CPU per `POST /api/actions/updateDetails` request in a real uvicorn (docs/performance.md, "The cost
of one action").

What `request_cost.py` leaves out: uvicorn's HTTP (httptools parsing, its protocol, the
transport's `send()`s) and the event loop. A child process serves `create_app` (the API alone, no
realtime layer) on the embedded store under `backend.serve.uvicorn_config` on 127.0.0.1, port 0,
with `tune_gc()`, to the owner of a collaboration of `--members` members; this process sends
`--requests` actions one after the other on one keep-alive connection (a raw socket: the client
costs little) and reads the child's CPU (user + system, /proc/<pid>/stat) before and after. Prints
µs of the server's CPU per request, and of that the system part, for each of `--repeat` runs and
their median. `PYTHONPATH=<other checkout>` serves the other code. Linux only.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
from typing import Any

SERVER = r"""
import asyncio, json, logging, os, sys
sys.path[0:0] = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p] + [sys.argv[1]]
import action_cost

async def main(members):
    from backend.api.app import create_app
    from backend.api.ratelimit import Limits
    from backend.serve import Server, tune_gc, uvicorn_config
    from backend.settings import test_settings

    runtime = await action_cost.open_runtime(members)
    runtime.limits = Limits(test_settings(action_rate_limit=100_000_000))
    app = create_app(runtime.settings, runtime=runtime)
    cid, users = await action_cost.setup(runtime, members, 10)
    server = Server(uvicorn_config(app, runtime.settings, "127.0.0.1", 0), app)
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    tune_gc()
    port = server.servers[0].sockets[0].getsockname()[1]
    print(json.dumps({"port": port, "cid": cid, "token": users[0][1]}), flush=True)
    await task

logging.disable(logging.WARNING)
asyncio.run(main(int(sys.argv[2])))
"""


def cpu_seconds(pid: int) -> tuple[float, float]:
    """(user + system, system) seconds of CPU the process has used."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / tick, int(fields[12]) / tick


def one_run(args: argparse.Namespace) -> dict[str, float]:
    here = os.path.dirname(os.path.abspath(__file__))
    child = subprocess.Popen([sys.executable, "-c", SERVER, here, str(args.members)], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        info = json.loads(child.stdout.readline())
        with socket.create_connection(("127.0.0.1", info["port"]), timeout=10) as sock:
            head = (
                "POST /api/actions/updateDetails HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Authorization: Bearer {info['token']}\r\nContent-Type: application/json\r\n"
            ).encode()

            def post(i: int) -> None:
                body = json.dumps({"collaborationId": info["cid"], "payload": {"description": f"Plans {i}"}}).encode()
                sock.sendall(head + b"Content-Length: %d\r\n\r\n" % len(body) + body)
                got = b""
                while b"\r\n\r\n" not in got:
                    got += sock.recv(65536)
                status, rest = got.split(b"\r\n\r\n", 1)
                if not status.startswith(b"HTTP/1.1 200"):
                    raise RuntimeError(status.decode("latin-1"))
                length = next(
                    int(line.split(b":")[1])
                    for line in status.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                while len(rest) < length:
                    rest += sock.recv(65536)

            for i in range(args.warmup):
                post(i)
            before = cpu_seconds(child.pid)
            for i in range(args.requests):
                post(args.warmup + i)
            after = cpu_seconds(child.pid)
        return {
            "request": round((after[0] - before[0]) / args.requests * 1e6, 1),
            "of which system": round((after[1] - before[1]) / args.requests * 1e6, 1),
        }
    finally:
        child.terminate()
        child.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=100)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    runs: list[dict[str, Any]] = [one_run(args) for _ in range(args.repeat)]
    print(
        json.dumps(
            {
                "members": args.members,
                "unit": "server CPU µs per request (/proc/<pid>/stat, 10 ms ticks)",
                "median": {key: statistics.median(run[key] for run in runs) for key in runs[0]},
                "runs": runs,
            },
            indent=2,
            ensure_ascii=False,
        )
    )


if __name__ == "__main__":
    main()
