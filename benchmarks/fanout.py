"""Fan-out benchmark (run by hand): how many deliveries a second one API process makes, how fast.

Starts the real server (`tandem api` on the embedded store, dev auth) pinned
to core 0 and the load client (benchmarks/fanout_client.py: picows on uvloop)
pinned to core 1; the client opens N subscribers over collaborations of S
members each, drives `updateDetails` actions over HTTP at a set rate and
checks every delivery. Prints one JSON object; results in docs/performance.md.

    .venv/bin/pip install -e '.[bench]'
    .venv/bin/python benchmarks/fanout.py --subscribers 1000 --group 100 --rate 200 --duration 20
    .venv/bin/python benchmarks/fanout.py ... --deflate --client websockets   # permessage-deflate on
    .venv/bin/python benchmarks/fanout.py ... --profile /tmp/server.svg       # py-spy the server while it drives
    .venv/bin/python benchmarks/fanout.py ... --server-gc-stats /tmp/gc.json  # the server's GC pauses while it drives

Everything runs on 127.0.0.1 and stops by itself.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pinned(core: int, command: list[str]) -> list[str]:
    return ["taskset", "-c", str(core), *command] if shutil.which("taskset") else command


def start_server(port: int, secret: str, args: argparse.Namespace) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != "MONGODB_URI"}
    env.update({
        "AUTH_MODE": "dev", "DEV_JWT_SECRET": secret, "DEV_TOKEN_TTL": "1h", "LOG_LEVEL": "WARNING",
        "ACTION_RATE_LIMIT": "100000000", "WS_PER_MESSAGE_DEFLATE": "true" if args.deflate else "false",
        "WS_QUEUE_SIZE": str(args.queue_size), "CHANGE_HISTORY": "100000",
    })
    command = [str(BIN / "tandem"), "api", "--host", "127.0.0.1", "--port", str(port)]
    prelude = []
    if args.server_loop == "uvloop":  # what `tandem api` would do on uvloop (it runs asyncio's own loop)
        prelude.append("import asyncio, uvloop; asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())")
    if args.server_gc_untuned:  # comparison only: Python's default GC settings (backend/serve.py tunes them)
        prelude.append("import backend.serve as s; s.tune_gc = lambda: None")
    if args.server_gc_off:  # experiment: is a latency tail the server's garbage collector?
        prelude.append("import gc; gc.disable()")
    if args.server_gc_stats:  # what the server's GC did: read back into the result at the end
        prelude.append(f"import benchmarks.server_gc_stats as g; g.install({args.server_gc_stats!r})")
    if prelude:
        command = [sys.executable, "-c", "; ".join(["import sys", *prelude, "from backend.cli import main",
                                                    "sys.exit(main(sys.argv[1:]))"]), *command[1:]]
    server = subprocess.Popen(pinned(0, command), env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = server.stdout.readline()  # type: ignore[union-attr]
        if "ready at" in line:
            return server
        if not line and server.poll() is not None:
            break
    server.kill()
    raise SystemExit("the server did not start")


def read_when_written(path: str, timeout: float = 10) -> dict | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(path) as f:
                return json.load(f)
        except (FileNotFoundError, json.JSONDecodeError):
            time.sleep(0.1)
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subscribers", "-n", type=int, default=1000)
    parser.add_argument("--group", "-s", type=int, default=100, help="subscribers per collaboration")
    parser.add_argument("--rate", "-r", type=float, default=200, help="actions per second")
    parser.add_argument("--duration", "-d", type=float, default=20, help="seconds of actions")
    parser.add_argument("--members", "-m", type=int, default=1_000_000,
                        help="distinct members per collaboration (default: one per subscriber); fewer means "
                             "several connections per member, like browser tabs, and smaller documents")
    parser.add_argument("--http-connections", type=int, default=16)
    parser.add_argument("--server-loop", choices=["asyncio", "uvloop"], default="asyncio",
                        help="the server's event loop (`tandem api` runs asyncio's)")
    parser.add_argument("--queue-size", type=int, default=1000, help="WS_QUEUE_SIZE of the server")
    parser.add_argument("--client", choices=["picows", "websockets"], default="picows")
    parser.add_argument("--deflate", action="store_true", help="permessage-deflate on (needs --client websockets)")
    parser.add_argument("--server-gc-untuned", action="store_true",
                        help="comparison: the server keeps Python's default GC settings (no gc.freeze(), "
                             "threshold 700/10/10); never a real configuration")
    parser.add_argument("--server-gc-off", action="store_true", help="experiment: the server runs without GC")
    parser.add_argument("--server-gc-stats", metavar="FILE",
                        help="record the server's GC collections (count, pauses) into FILE and the result")
    parser.add_argument("--profile", help="py-spy the server while actions run, into this SVG")
    args = parser.parse_args()
    if args.deflate and args.client == "picows":
        raise SystemExit("picows does not speak permessage-deflate: add --client websockets")

    if args.server_gc_stats and os.path.exists(args.server_gc_stats):
        os.remove(args.server_gc_stats)
    port, secret = free_port(), secrets.token_urlsafe(48)
    server = start_server(port, secret, args)
    profiler = None
    try:
        command = [sys.executable, str(ROOT / "benchmarks" / "fanout_client.py"), "--port", str(port),
                   "--server-pid", str(server.pid), f"--secret={secret}", "--subscribers", str(args.subscribers),
                   "--group", str(args.group), "--rate", str(args.rate), "--duration", str(args.duration),
                   "--http-connections", str(args.http_connections), "--client", args.client,
                   "--members", str(args.members)]
        if args.deflate:
            command.append("--deflate")
        client = subprocess.Popen(pinned(1, command), stdout=subprocess.PIPE, text=True, cwd=ROOT)
        result = None
        deadline = time.monotonic() + args.duration + 600
        for line in client.stdout:  # type: ignore[union-attr]
            if line.startswith("DRIVE") and args.server_gc_stats:
                os.kill(server.pid, signal.SIGUSR1)
            if line.startswith("RESULT ") and args.server_gc_stats:
                os.kill(server.pid, signal.SIGUSR2)
            if line.startswith("DRIVE") and args.profile:
                profiler = subprocess.Popen([str(BIN / "py-spy"), "record", "-p", str(server.pid), "-d",
                                             str(int(args.duration)), "-o", args.profile, "--nonblocking"] + (["-f", "raw"] if not args.profile.endswith(".svg") else []),
                                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            elif line.startswith("RESULT "):
                result = json.loads(line[len("RESULT "):])
            if time.monotonic() > deadline:
                client.kill()
                break
        client.wait(timeout=60)
        if result is None:
            raise SystemExit("the client failed")
        result["server_loop"], result["server_gc_untuned"] = args.server_loop, args.server_gc_untuned
        if args.server_gc_stats:
            result["server_gc"] = read_when_written(args.server_gc_stats)
        result["command"] = " ".join(sys.argv)
        print(json.dumps(result, indent=2))
    finally:
        if profiler is not None:
            profiler.wait(timeout=args.duration + 60)
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()


if __name__ == "__main__":
    main()
