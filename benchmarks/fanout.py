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
    .venv/bin/python benchmarks/fanout.py ... --profile /tmp/server.raw       # py-spy, summarized into the JSON

Measured as the peers are measured (`--compare`): in one invocation, on the
same pinned cores, Tandem and then a bare Starlette broadcaster
(benchmarks/bare_broadcaster.py, under the same uvicorn configuration) under
the same load from the same client, and the ratios Tandem / bare. Absolute
numbers on a shared machine vary up to 2x from run to run: only ratios within
one run count.

    .venv/bin/python benchmarks/fanout.py --compare --layout 1000:100 --layout 1000:1000 -r 100 -d 10
    .venv/bin/python benchmarks/fanout.py --compare --layout 1000:100 --find-max -r 50   # highest sustained rate
    .venv/bin/python benchmarks/fanout.py --sweep-n 1000,5000,10000 -s 100 -r 200 -d 10 --max-p99 50

`--find-max` ramps the rate (a warm-up step at -r, then steps of
--step-duration seconds) to the highest one with every delivery in, in order,
the rate held and p99 under --max-p99 (250 ms). `--sweep-n` opens subscribers
up to each N in turn (idle memory per connection), drives -r actions/s at each
and reports the largest N whose steps all held p99 under --max-p99.

Everything runs on 127.0.0.1 and stops by itself.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pinned(core: int, command: list[str]) -> list[str]:
    return ["taskset", "-c", str(core), *command] if shutil.which("taskset") else command


def raise_fd_limit() -> tuple[int, int]:
    """One file descriptor per connection in the server and in the client (both inherit this)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def start_server(
    kind: str, port: int, secret: str, args: argparse.Namespace, frame_bytes: int | None = None
) -> subprocess.Popen[str]:
    """`tandem api` (kind "tandem") or benchmarks/bare_broadcaster.py ("bare"), pinned to core 0."""
    env = {k: v for k, v in os.environ.items() if k != "MONGODB_URI"}
    env.update(
        {
            # dev tokens are signed with SUPABASE_JWT_SECRET, or DEV_JWT_SECRET where that exists (an older
            # checkout measured for a before/after): set both
            "AUTH_MODE": "dev",
            "SUPABASE_JWT_SECRET": secret,
            "DEV_JWT_SECRET": secret,
            "DEV_TOKEN_TTL": "1h",
            "LOG_LEVEL": "WARNING",
            "ACTION_RATE_LIMIT": "100000000",
            "WS_PER_MESSAGE_DEFLATE": "true" if args.deflate else "false",
            "WS_QUEUE_SIZE": str(args.queue_size),
            "CHANGE_HISTORY": "100000",
            "WS_MAX_SOCKETS_PER_USER": "1000000",  # --members below --group: many sockets per member
        }
    )
    if frame_bytes:
        env["BARE_FRAME_BYTES"] = str(frame_bytes)
    prelude = ["import sys"]
    if args.server_loop == "uvloop":  # what `tandem api` would do on uvloop (it runs asyncio's own loop)
        prelude.append("import asyncio, uvloop; asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())")
    if args.server_gc_untuned:  # comparison only: Python's default GC settings (backend/serve.py tunes them)
        prelude.append("import backend.serve as s; s.tune_gc = lambda: None")
    if args.server_gc_off:  # experiment: is a latency tail the server's garbage collector?
        prelude.append("import gc; gc.disable()")
    if args.server_gc_stats and kind == "tandem":  # what the server's GC did: read back into the result
        prelude.append(f"import benchmarks.server_gc_stats as g; g.install({args.server_gc_stats!r})")
    if kind == "tandem":
        prelude += ["from backend.cli import main", "sys.exit(main(sys.argv[1:]))"]
        argv = ["api", "--host", "127.0.0.1", "--port", str(port)]
    else:
        prelude += ["from benchmarks.bare_broadcaster import main", "main()"]
        argv = ["--host", "127.0.0.1", "--port", str(port)]
    command = [sys.executable, "-c", "; ".join(prelude), *argv]
    server = subprocess.Popen(
        pinned(args.server_core, command),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=ROOT,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = server.stdout.readline()  # type: ignore[union-attr]  # Popen with stdout=PIPE
        if "ready at" in line:
            return server
        if not line and server.poll() is not None:
            break
    server.kill()
    raise SystemExit(f"the {kind} server did not start")


def read_when_written(path: str, timeout: float = 10) -> dict | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(path) as f:
                return json.load(f)
        except (FileNotFoundError, json.JSONDecodeError):
            time.sleep(0.1)
    return None


def measure(
    kind: str,
    subscribers: int,
    group: int,
    args: argparse.Namespace,
    frame_bytes: int | None = None,
    profile: str | None = None,
    rate: float | None = None,
) -> dict:
    """One server, one load client, one result (the client's JSON, plus what the server side adds)."""
    gc_stats = args.server_gc_stats if kind == "tandem" else None
    if gc_stats and os.path.exists(gc_stats):
        os.remove(gc_stats)
    port, secret = free_port(), "s" + secrets.token_urlsafe(48)  # never a leading "-" (argv)
    server = start_server(kind, port, secret, args, frame_bytes)
    profiler = None
    try:
        command = [
            sys.executable,
            str(ROOT / "benchmarks" / "fanout_client.py"),
            "--port",
            str(port),
            "--server-pid",
            str(server.pid),
            f"--secret={secret}",
            "--subscribers",
            str(subscribers),
            "--group",
            str(group),
            "--rate",
            str(rate or args.rate),
            "--duration",
            str(args.duration),
            "--http-connections",
            str(args.http_connections),
            "--client",
            args.client,
            "--members",
            str(args.members),
            "--action",
            args.action,
            "--drain",
            str(args.drain),
            "--step-duration",
            str(args.step_duration),
            "--ramp-steps",
            str(args.ramp_steps),
            "--max-p99",
            str(args.max_p99),
        ]
        if args.deflate:
            command.append("--deflate")
        if args.find_max:
            command.append("--find-max")
        if args.sweep_n:
            command.append("--sweep-n=" + ",".join(map(str, args.sweep_n)))
        client = subprocess.Popen(pinned(args.client_core, command), stdout=subprocess.PIPE, text=True, cwd=ROOT)
        result = None
        drives = 0
        deadline = time.monotonic() + args.timeout
        for line in client.stdout:  # type: ignore[union-attr]  # Popen with stdout=PIPE
            if line.startswith("DRIVE"):
                drives += 1
                if gc_stats and drives == 1:
                    os.kill(server.pid, signal.SIGUSR1)
                if profile and drives == 1:  # the first step only (a fixed-rate run has one)
                    raw = [] if profile.endswith(".svg") else ["-f", "raw"]
                    profiler = subprocess.Popen(
                        pinned(
                            args.client_core,
                            [
                                str(BIN / "py-spy"),
                                "record",
                                "-p",
                                str(server.pid),
                                "-d",
                                str(max(1, int(args.duration))),
                                "-o",
                                profile,
                                "--nonblocking",
                                "--rate",
                                str(args.profile_rate),
                                *raw,
                            ],
                        ),
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )
            elif line.startswith("STEP_END") and gc_stats and drives == 1:
                os.kill(server.pid, signal.SIGUSR2)
            elif line.startswith("RESULT "):
                result = json.loads(line[len("RESULT ") :])
            if time.monotonic() > deadline:
                client.kill()
                break
        client.wait(timeout=60)
        if result is None:
            raise SystemExit(f"the client failed against {kind}")
        result["server"] = kind
        if kind == "bare":
            result["bare_frame_bytes"] = frame_bytes
        result["server_loop"], result["server_gc_untuned"] = args.server_loop, args.server_gc_untuned
        if gc_stats:
            result["server_gc"] = read_when_written(gc_stats)
        if profiler is not None:
            profiler.wait(timeout=args.duration + 60)
            if not profile.endswith(".svg"):
                from benchmarks.profile_summary import summarize

                result["profile"] = {"file": profile, **summarize(profile)}
        return result
    finally:
        if profiler is not None and profiler.poll() is None:
            profiler.kill()
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a and b else None


def ratios(tandem: dict, bare: dict) -> dict:
    """Tandem / bare. Throughput: 1 or more is Tandem at least as fast; latency, CPU, memory: 1 or less."""
    if "sweep" in tandem:
        return {
            "sweep": [{"subscribers": t["subscribers"], **ratios(t, b)} for t, b in zip(tandem["sweep"], bare["sweep"])]
        }
    out = {"kb_per_connection": _ratio(tandem.get("server_kb_per_connection"), bare.get("server_kb_per_connection"))}
    fixed_t, fixed_b = tandem.get("at_rate", tandem), bare.get("at_rate", bare)  # the same fixed load for both
    out.update(
        {
            "deliveries_per_server_cpu_s": _ratio(
                fixed_t.get("deliveries_per_server_cpu_s"), fixed_b.get("deliveries_per_server_cpu_s")
            ),
            "server_cpu": _ratio(fixed_t.get("server_cpu_percent"), fixed_b.get("server_cpu_percent")),
            "p50": _ratio(fixed_t["latency_ms"]["p50"], fixed_b["latency_ms"]["p50"]),
            "p99": _ratio(fixed_t["latency_ms"]["p99"], fixed_b["latency_ms"]["p99"]),
        }
    )
    if "max_sustained" in tandem:
        t, b = tandem["max_sustained"] or {}, bare["max_sustained"] or {}
        out["max_sustained_deliveries_per_s"] = _ratio(t.get("deliveries_per_s"), b.get("deliveries_per_s"))
        out["deliveries_per_server_cpu_s_at_max"] = _ratio(
            t.get("deliveries_per_server_cpu_s"), b.get("deliveries_per_server_cpu_s")
        )
    return out


def median_ratios(rounds: list[dict]) -> dict:
    """Each ratio's median over the rounds (they alternate which server goes first)."""
    keys = [k for k in rounds[0] if isinstance(rounds[0][k], (int, float))]
    out = {}
    for key in keys:
        values = sorted(r[key] for r in rounds if r.get(key) is not None)
        out[key] = (
            (
                values[len(values) // 2]
                if len(values) % 2
                else round((values[len(values) // 2 - 1] + values[len(values) // 2]) / 2, 3)
            )
            if values
            else None
        )
    return out


def frame_size(result: dict) -> int | None:
    if result.get("frame_bytes"):
        return result["frame_bytes"]
    sizes = [s.get("frame_bytes") for s in result.get("steps", []) if s.get("frame_bytes")]
    return sizes[0] if sizes else None


def _suffixed(path: str, tag: str) -> str:
    stem, dot, ext = path.rpartition(".")
    return f"{stem}.{tag}.{ext}" if dot else f"{path}.{tag}"


def layout(text: str) -> tuple[int, int, float | None]:
    n, s, *r = text.split(":")
    return int(n), int(s), float(r[0]) if r else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subscribers", "-n", type=int, default=1000)
    parser.add_argument("--group", "-s", type=int, default=100, help="subscribers per collaboration")
    parser.add_argument(
        "--rate", "-r", type=float, default=200, help="actions per second (with --find-max: the warm-up step's)"
    )
    parser.add_argument("--duration", "-d", type=float, default=20, help="seconds of actions")
    parser.add_argument(
        "--members",
        "-m",
        type=int,
        default=1_000_000,
        help="distinct members per collaboration (default: one per subscriber); fewer means "
        "several connections per member, like browser tabs, and smaller documents",
    )
    parser.add_argument("--action", default="updateDetails", help="the Tandem action each publish runs")
    parser.add_argument("--http-connections", type=int, default=16)
    parser.add_argument(
        "--server-loop",
        choices=["asyncio", "uvloop"],
        default="asyncio",
        help="the server's event loop (`tandem api` runs asyncio's)",
    )
    parser.add_argument("--queue-size", type=int, default=1000, help="WS_QUEUE_SIZE of the server")
    parser.add_argument("--client", choices=["picows", "websockets"], default="picows")
    parser.add_argument("--deflate", action="store_true", help="permessage-deflate on (needs --client websockets)")
    parser.add_argument(
        "--server-gc-untuned",
        action="store_true",
        help="comparison: the server keeps Python's default GC settings (no gc.freeze(), "
        "threshold 700/10/10); never a real configuration",
    )
    parser.add_argument("--server-gc-off", action="store_true", help="experiment: the server runs without GC")
    parser.add_argument(
        "--server-gc-stats",
        metavar="FILE",
        help="record the server's GC collections (count, pauses) into FILE and the result",
    )
    parser.add_argument(
        "--profile",
        help="py-spy the (Tandem) server while actions run, into this file: "
        "an SVG flame graph, or (any other name) raw stacks summarized in the JSON",
    )
    parser.add_argument("--profile-rate", type=int, default=100, help="py-spy samples per second (--profile)")
    parser.add_argument(
        "--compare",
        action="store_true",
        help="run Tandem, then the bare Starlette broadcaster (benchmarks/bare_broadcaster.py) on "
        "the same cores under the same load, and print both and the ratios Tandem / bare",
    )
    parser.add_argument(
        "--layout",
        type=layout,
        action="append",
        metavar="N:S[:R]",
        help="with --compare: N subscribers in collaborations of S, at R actions/s (default -r); "
        "repeatable; default -n:-s",
    )
    parser.add_argument(
        "--find-max",
        action="store_true",
        help="a short ramp after the fixed-rate step (-r for -d s): the highest rate with every "
        "delivery in, in order, the rate held and p99 under --max-p99, in steps of "
        "--step-duration s (at most --ramp-steps)",
    )
    parser.add_argument("--step-duration", type=float, default=4)
    parser.add_argument("--ramp-steps", type=int, default=7)
    parser.add_argument("--max-p99", type=float, default=250, help="ms (--find-max)")
    parser.add_argument("--drain", type=float, default=15, help="seconds to wait for late deliveries per step")
    parser.add_argument(
        "--sweep-n",
        type=lambda v: sorted(int(x) for x in v.split(",")),
        metavar="N1,N2,...",
        help="open subscribers up to each N in turn (idle memory per connection), driving -r "
        "actions/s at each; -n is ignored",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="with --compare: this many Tandem/bare pairs per layout, alternating which goes "
        "first; the ratios are their medians",
    )
    parser.add_argument("--server-core", type=int, default=0)
    parser.add_argument("--client-core", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=900, help="seconds before a client is stopped")
    args = parser.parse_args()
    if args.deflate and args.client == "picows":
        raise SystemExit("picows does not speak permessage-deflate: add --client websockets")
    if args.find_max and args.sweep_n:
        raise SystemExit("--find-max and --sweep-n do not go together")

    fds = raise_fd_limit()
    if max([args.subscribers, *(args.sweep_n or [])]) + 200 > fds[0]:
        print(f"warning: {fds[0]} file descriptors per process at most (ulimit -n)", file=sys.stderr)
    top = max(args.sweep_n) if args.sweep_n else args.subscribers
    if not args.compare:
        result = measure("tandem", top, args.group, args, profile=args.profile)
        result["command"] = " ".join(sys.argv)
        result["load_average"] = os.getloadavg()
        print(json.dumps(result, indent=2))
        return

    out: dict = {
        "command": " ".join(sys.argv),
        "load_average_before": os.getloadavg(),
        "cores": {"server": args.server_core, "client": args.client_core},
        "layouts": [],
    }
    for n, s, rate in args.layout or [(top, args.group, None)]:
        entry: dict = {"subscribers": n, "group": s, "rate": rate or args.rate}
        runs: list[dict] = []
        frame: int | None = None
        for r in range(args.rounds):  # round 0: Tandem first (its frame size sets the bare one's)
            order = ("tandem", "bare") if r % 2 == 0 else ("bare", "tandem")
            result: dict = {"order": list(order)}
            for kind in order:
                tag = f"{kind}-{n}-{s}" + (f"-{r}" if r else "")
                result[kind] = measure(
                    kind,
                    n,
                    s,
                    args,
                    frame_bytes=frame if kind == "bare" else None,
                    rate=rate,
                    profile=args.profile and _suffixed(args.profile, tag),
                )
                if kind == "tandem" and frame is None:
                    frame = frame_size(result["tandem"])
            result["ratio_tandem_over_bare"] = ratios(result["tandem"], result["bare"])
            runs.append(result)
        if len(runs) == 1:
            entry.update(runs[0])
        else:
            entry["ratio_tandem_over_bare"] = median_ratios([r["ratio_tandem_over_bare"] for r in runs])
            entry["rounds"] = runs
        out["layouts"].append(entry)
    out["load_average_after"] = os.getloadavg()
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
