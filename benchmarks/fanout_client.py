"""The load side of benchmarks/fanout.py: run as its own process (pinned to its own core).

It sets up collaborations over HTTP, opens the subscribers (picows by default,
or the `websockets` library when permessage-deflate is measured), drives
actions at a set rate and prints one JSON line of measurements. Everything
goes to 127.0.0.1 and stops by itself after the given duration.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from backend.auth.dev_tokens import issue_dev_token
from backend.settings import test_settings


class Event(msgspec.Struct):
    type: str
    collaborationId: str | None = None
    version: int | None = None


DECODE = msgspec.json.Decoder(Event).decode
clock = time.perf_counter


# -- a small keep-alive HTTP/1.1 client (httpx would take the client's core for itself) ------------


class Http:
    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: Any, token: str | None = None) -> tuple[int, Any]:
        data = json.dumps(body).encode()
        head = [
            f"POST {path} HTTP/1.1",
            f"host: {self.host}:{self.port}",
            "content-type: application/json",
            f"content-length: {len(data)}",
        ]
        if token:
            head.append(f"authorization: Bearer {token}")
        request = ("\r\n".join(head) + "\r\n\r\n").encode() + data
        for attempt in (1, 2):
            # uvicorn closes a keep-alive connection idle for 5 s (between steps, while subscribers connect):
            # then the request was not read, and goes again on a new connection
            if self.writer is None or self.writer.is_closing():
                self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
            self.writer.write(request)
            status_line = await self.reader.readline()
            if status_line or attempt == 2:
                break
            self.writer.close()
        if not status_line:
            raise ConnectionError("the server closed the connection")
        length = 0
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.decode().partition(":")
            if name.lower() == "content-length":
                length = int(value)
        payload = await self.reader.readexactly(length)
        return int(status_line.split()[1]), json.loads(payload) if payload else None


# -- subscribers ---------------------------------------------------------------------------------


class Stats:
    def __init__(self, collaborations: int):
        self.sent_at: dict[tuple[str, int], float] = {}
        self.early: dict[tuple[str, int], list[float]] = {}  # deliveries that beat the HTTP response
        self.latencies: list[float] = []
        self.deliveries = 0
        self.frame_bytes = 0  # of the deliveries: the frames' size, to match the bare broadcaster's to
        self.out_of_order = 0
        self.first_delivery = 0.0
        self.last_delivery = 0.0

    def delivered(self, cid: str, version: int, now: float) -> None:
        self.deliveries += 1
        if not self.first_delivery:
            self.first_delivery = now
        self.last_delivery = now
        key = (cid, version)
        sent = self.sent_at.get(key)
        if sent is None:
            self.early.setdefault(key, []).append(now)
        else:
            self.latencies.append(now - sent)

    def sent(self, cid: str, version: int, at: float) -> None:
        self.sent_at[(cid, version)] = at
        for when in self.early.pop((cid, version), ()):
            self.latencies.append(when - at)


class Subscriber:
    """One connection subscribed to one collaboration; checks versions arrive in order, once each."""

    def __init__(self, cid: str, token: str, stats: Stats):
        self.cid, self.token, self.stats = cid, token, stats
        self.version = 0  # the version this subscriber holds
        self.ready = asyncio.get_running_loop().create_future()
        self.closed_with: int | None = None

    def on_text(self, data: Any) -> None:
        event = DECODE(data)
        kind = event.type
        if kind == "collaboration_updated":
            now = clock()
            if event.version != self.version + 1:
                self.stats.out_of_order += 1
            self.version = max(self.version, event.version)
            self.stats.frame_bytes += len(data)
            self.stats.delivered(self.cid, event.version, now)
        elif kind == "ready":
            return
        elif kind == "subscribed":
            self.version = event.version
        elif kind == "presence" and not self.ready.done():
            self.ready.set_result(True)  # presence is the last frame of a subscribe
        elif kind == "error" and not self.ready.done():
            self.ready.set_exception(RuntimeError(bytes(data).decode()))

    def hello(self) -> list[bytes]:
        return [
            json.dumps({"type": "auth", "token": self.token}).encode(),
            json.dumps({"type": "subscribe", "collaborationId": self.cid}).encode(),
        ]


async def open_picows(url: str, sub: Subscriber) -> Any:
    from picows import WSListener, WSMsgType, ws_connect

    class Listener(WSListener):
        def on_ws_connected(self, transport: Any) -> None:
            for data in sub.hello():
                transport.send(WSMsgType.TEXT, data)

        def on_ws_frame(self, transport: Any, frame: Any) -> None:
            if frame.msg_type == WSMsgType.TEXT:
                sub.on_text(frame.get_payload_as_memoryview())
            elif frame.msg_type == WSMsgType.CLOSE:
                sub.closed_with = frame.get_close_code()
                transport.disconnect()

    transport, _ = await ws_connect(Listener, url, max_frame_size=64 * 1024 * 1024)
    return transport


async def open_websockets(url: str, sub: Subscriber, deflate: bool) -> Any:
    from websockets.asyncio.client import connect

    ws = await connect(url, compression="deflate" if deflate else None, max_size=None, ping_interval=None)
    for data in sub.hello():
        await ws.send(data.decode())

    async def pump() -> None:
        try:
            async for message in ws:
                sub.on_text(message)
        except Exception:  # noqa: BLE001 - the run's end
            pass

    ws.pump = asyncio.get_running_loop().create_task(pump())  # type: ignore[attr-defined]  # the pump task rides on the socket object
    return ws


# -- the run -------------------------------------------------------------------------------------


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> float:
    """CPU time every core of the machine spent busy since boot (from /proc/stat)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def dev_settings(secret: str) -> Any:
    """Settings that sign dev tokens with `secret`, under the field name this checkout has:
    SUPABASE_JWT_SECRET, or DEV_JWT_SECRET where dev tokens have their own secret."""
    from backend.settings import Settings

    overrides: dict[str, Any] = {"supabase_jwt_secret": secret, "dev_token_ttl": 3600}
    if "dev_jwt_secret" in Settings.__struct_fields__:
        overrides["dev_jwt_secret"] = secret
    return test_settings(**overrides)


STEP_FIELDS = (
    "rate_target",
    "action_rate",
    "actions_failed",
    "deliveries_per_s",
    "latency_ms",
    "lost",
    "server_cpu_percent",
    "client_cpu_percent",
    "other_cpu_percent",
    "deliveries_per_server_cpu_s",
    "frame_bytes",
    "sustained",
)


class Run:
    """The subscribers and collaborations of one run, driven step after step."""

    def __init__(self, args: argparse.Namespace, made: list[tuple[str, str, list[str]]]):
        self.args, self.made = args, made
        self.stats = Stats(len(made))
        self.subs: list[Subscriber] = []
        self.sockets: list[Any] = []
        self.drivers = [Http(args.host, args.port) for _ in range(args.http_connections)]
        self.idle: asyncio.Queue[Http] = asyncio.Queue()
        for d in self.drivers:
            self.idle.put_nowait(d)
        self.final: dict[str, int] = {}

    async def connect(self, subs: list[Subscriber]) -> float:
        url = f"ws://{self.args.host}:{self.args.port}/ws"
        limit = asyncio.Semaphore(200)

        async def connect_one(sub: Subscriber) -> None:
            async with limit:
                if self.args.client == "picows":
                    self.sockets.append(await open_picows(url, sub))
                else:
                    self.sockets.append(await open_websockets(url, sub, self.args.deflate))
                await asyncio.wait_for(sub.ready, 30)

        started = clock()
        await asyncio.gather(*(connect_one(s) for s in subs))
        self.subs += subs
        return clock() - started

    async def step(self, rate: float, duration: float, groups: int, drain_s: float) -> dict[str, Any]:
        """Drive `rate` actions/s for `duration` s, round robin over the first `groups` collaborations."""
        args, made = self.args, self.made[:groups]
        subs = [s for s in self.subs if s.cid in {cid for cid, _, _ in made}]
        stats = Stats(len(made))
        for s in self.subs:
            s.stats = stats
        actions = {"done": 0, "failed": 0, "late": 0}
        inflight: set[asyncio.Task[None]] = set()
        final = self.final

        async def act(seq: int) -> None:
            cid, owner_token, _ = made[seq % len(made)]
            http = await self.idle.get()
            sent = clock()
            try:
                status, body = await http.post(
                    f"/api/actions/{args.action}",
                    {"collaborationId": cid, "payload": {"description": f"step {seq}"}},
                    owner_token,
                )
            except (ConnectionError, OSError, RuntimeError, asyncio.IncompleteReadError):
                http.writer, status = None, 0  # counted as failed; the next request opens a new connection
            finally:
                self.idle.put_nowait(http)
            if status != 200:
                actions["failed"] += 1
                return
            actions["done"] += 1
            stats.sent(cid, body["version"], sent)
            final[cid] = max(final.get(cid, 0), body["version"])

        gc.collect()
        gc.freeze()  # the load generator's own GC pauses would show up as server latency
        gc.disable()
        print("DRIVE", flush=True)  # the orchestrator may start a profiler now
        cpu_start, drive_start, own_cpu = cpu_seconds(args.server_pid), clock(), time.process_time()
        machine_start = machine_busy_seconds()
        total = int(rate * duration)
        for seq in range(total):
            due = drive_start + seq / rate
            delay = due - clock()
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -0.05:
                actions["late"] += 1
            task = asyncio.get_running_loop().create_task(act(seq))
            inflight.add(task)
            task.add_done_callback(inflight.discard)
        await asyncio.gather(*inflight)
        drive_s = clock() - drive_start
        deadline = clock() + drain_s
        while clock() < deadline and any(s.version < final.get(s.cid, 0) for s in subs):
            await asyncio.sleep(0.05)
        cpu_used = cpu_seconds(args.server_pid) - cpu_start
        own_cpu = time.process_time() - own_cpu
        # anything else on the machine meanwhile (another test run...): a disturbed run shows here
        other_cpu = machine_busy_seconds() - machine_start - cpu_used - own_cpu
        measured_s = clock() - drive_start
        wall = max(stats.last_delivery, drive_start + drive_s) - drive_start
        gc.enable()
        print("STEP_END", flush=True)

        behind = sum(max(0, final.get(s.cid, 0) - s.version) for s in subs)
        closed = sum(1 for s in subs if s.closed_with is not None)
        ms = [v * 1000 for v in stats.latencies]
        p99 = percentile(ms, 0.99)
        result = {
            "subscribers": len(subs),
            "collaborations": len(made),
            "rate_target": rate,
            "duration_s": duration,
            "actions_ok": actions["done"],
            "actions_failed": actions["failed"],
            "actions_late": actions["late"],
            "action_rate": round(actions["done"] / drive_s, 1),
            "deliveries": stats.deliveries,
            "deliveries_per_s": round(stats.deliveries / wall, 1),
            "latency_ms": {
                "p50": round(percentile(ms, 0.50), 2),
                "p90": round(percentile(ms, 0.90), 2),
                "p99": round(p99, 2),
                "max": round(max(ms, default=float("nan")), 2),
            },
            "lost": behind,
            "out_of_order": stats.out_of_order,
            "closed_by_server": closed,
            "frame_bytes": round(stats.frame_bytes / stats.deliveries) if stats.deliveries else None,
            "server_cpu_percent": round(100 * cpu_used / wall, 1),
            "deliveries_per_server_cpu_s": round(stats.deliveries / cpu_used) if cpu_used > 0 else None,
            "client_cpu_percent": round(100 * own_cpu / wall, 1),
            "other_cpu_percent": round(100 * max(0.0, other_cpu) / measured_s, 1),
        }
        # sustained: every delivery in, in order, nobody closed, the rate held, the tail under the bound
        result["sustained"] = bool(
            behind == 0
            and stats.out_of_order == 0
            and closed == 0
            and actions["failed"] == 0
            and actions["done"] == total
            and result["action_rate"] >= 0.95 * rate
            and p99 <= args.max_p99
        )
        if result["client_cpu_percent"] >= 90:
            result["client_bound"] = True  # the load generator's core is full: not the server's limit
        return result

    async def find_max(self, groups: int) -> dict[str, Any]:
        """A short ramp to the highest sustained rate. First a step of --duration s at --rate (its
        result is kept whole, as `at_rate`: the fixed load both servers are compared at); then steps of
        --step-duration s: up from there (x1.25, the first at least 0.6x what the core could take by
        that step's server CPU) until one is not sustained, or down (/2) until one is; then between
        the two (geometric middle) until they are within 10 %. At most --ramp-steps more steps; it
        stops early if a step leaves deliveries behind (the next would start with a backlog)."""
        args = self.args
        warm = await self.step(args.rate, args.duration, groups, args.drain)
        steps = [warm]
        best: dict[str, Any] | None = warm if warm["sustained"] else None
        failed: float | None = None if warm["sustained"] else args.rate
        guess = 0.6 * warm["action_rate"] / max(warm["server_cpu_percent"] / 100, 0.02)
        for _ in range(args.ramp_steps):
            if steps[-1]["lost"]:
                break
            if failed is None:
                rate = max(best["rate_target"] * 1.25, guess)  # type: ignore[index]  # failed is None only after a sustained run, which set best
                guess = 0.0
            elif best is None:
                rate = failed / 2
            elif failed / best["rate_target"] > 1.1:
                rate = (best["rate_target"] * failed) ** 0.5
            else:
                break
            step = await self.step(round(rate, 1), args.step_duration, groups, args.drain)
            steps.append(step)
            if step["sustained"]:
                best = step
            else:
                failed = rate
        return {
            "max_p99_ms": args.max_p99,
            "max_sustained": None
            if best is None
            else {
                "action_rate": best["action_rate"],
                "deliveries_per_s": best["deliveries_per_s"],
                "latency_ms": best["latency_ms"],
                "server_cpu_percent": best["server_cpu_percent"],
                "client_cpu_percent": best["client_cpu_percent"],
                "other_cpu_percent": best["other_cpu_percent"],
                "deliveries_per_server_cpu_s": best["deliveries_per_server_cpu_s"],
            },
            "ceiling": "found" if failed is not None else "not reached (more --ramp-steps)",
            "at_rate": warm,
            "steps": [{k: s[k] for k in STEP_FIELDS} for s in steps],
        }

    async def close(self) -> None:
        for sock in self.sockets:
            try:
                sock.disconnect() if self.args.client == "picows" else await sock.close()
            except Exception:  # noqa: BLE001 - closing at the end of a run: a socket already gone is fine
                pass


async def run(args: argparse.Namespace) -> dict[str, Any]:
    settings = dev_settings(args.secret)
    tok = lambda email: issue_dev_token(settings, email)["access_token"]  # noqa: E731 - a one-line helper local to this run
    counts = sorted(args.sweep_n or [args.subscribers])
    groups = max(1, counts[-1] // args.group)
    setup = [Http(args.host, args.port) for _ in range(16)]

    async def make_group(g: int) -> tuple[str, str, list[str]]:
        http = setup[g % len(setup)]
        owner = f"owner{g}@bench.example"
        status, body = await http.post("/api/collaborations", {"title": f"bench {g}"}, tok(owner))
        assert status == 201, body
        cid, members = body["id"], [owner]
        for i in range(min(args.members, args.group) - 1):
            email = f"m{g}-{i}@bench.example"
            status, body = await http.post(
                "/api/actions/addMember",
                {"collaborationId": cid, "payload": {"email": email, "role": "editor"}},
                tok(owner),
            )
            assert status == 200, body
            members.append(email)
        # S subscribers: one per member, or several connections per member (tabs) when members < S
        return cid, tok(owner), [members[i % len(members)] for i in range(args.group)]

    started = clock()
    made: list[tuple[str, str, list[str]]] = []
    for first in range(0, groups, 16):
        made += await asyncio.gather(*(make_group(g) for g in range(first, min(groups, first + 16))))
    for http in setup:
        if http.writer:
            http.writer.close()
    setup_s = clock() - started

    bench = Run(args, made)
    await asyncio.sleep(1.0)
    rss_before = rss_kb(args.server_pid)
    steps: list[dict[str, Any]] = []
    for n in counts:
        n_groups = max(1, n // args.group)
        more = made[len(bench.subs) // args.group : n_groups]  # the collaborations not subscribed to yet
        new = [Subscriber(cid, tok(email), bench.stats) for cid, _, emails in more for email in emails]
        connect_s = await bench.connect(new)
        await asyncio.sleep(2.0)
        rss_after = rss_kb(args.server_pid)
        step: dict[str, Any] = {
            "subscribers": len(bench.subs),
            "group": args.group,
            "members": min(args.members, args.group),
            "collaborations": n_groups,
            "client": args.client,
            "deflate": args.deflate,
            "action": args.action,
            "server_rss_mb": {
                "before_connections": round(rss_before / 1024, 1),
                "after_connections": round(rss_after / 1024, 1),
            },
            "server_kb_per_connection": round((rss_after - rss_before) / len(bench.subs), 1),
            "setup_s": round(setup_s, 1),
            "connect_s": round(connect_s, 1),
        }
        if args.find_max:
            step.update(await bench.find_max(n_groups))
        else:
            step.update(await bench.step(args.rate, args.duration, n_groups, args.drain))
            step["subscribers"] = len(bench.subs)
        steps.append(step)
    await bench.close()
    if len(steps) == 1:
        return steps[0]
    largest = None  # the largest N up to which every step was sustained (p99 under --max-p99 included)
    for step in steps:
        if not step.get("sustained"):
            break
        largest = step["subscribers"]
    return {"sweep": steps, "max_p99_ms": args.max_p99, "largest_n_sustained": largest}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--server-pid", type=int, required=True)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--group", type=int, default=100)
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--duration", type=float, default=10)
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--http-connections", type=int, default=16)
    parser.add_argument("--client", choices=["picows", "websockets"], default="picows")
    parser.add_argument("--deflate", action="store_true")
    parser.add_argument("--action", default="updateDetails", help="the action each publish runs")
    parser.add_argument("--drain", type=float, default=15, help="seconds to wait for late deliveries")
    parser.add_argument("--find-max", action="store_true", help="ramp the rate to the highest sustained one")
    parser.add_argument("--step-duration", type=float, default=4, help="seconds per ramp step")
    parser.add_argument("--ramp-steps", type=int, default=7)
    parser.add_argument("--max-p99", type=float, default=250, help="ms: a step with a higher p99 is not sustained")
    parser.add_argument(
        "--sweep-n",
        type=lambda v: [int(x) for x in v.split(",")],
        help="subscriber counts, e.g. 1000,5000,10000: connect up to each, then drive",
    )
    args = parser.parse_args()
    raise_fd_limit()
    try:
        import uvloop

        result = uvloop.run(run(args))
    except ImportError:  # pragma: no cover - the bench extra brings it
        result = asyncio.run(run(args))
    print("RESULT " + json.dumps(result), flush=True)


def raise_fd_limit() -> None:
    """One file descriptor per subscriber: the soft limit up to the hard one."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


if __name__ == "__main__":
    main()
