"""Threat: a client makes the server hold memory for sockets it never reads.

A member subscribes again and again to a large collaboration (a 1.2 MB
snapshot each time) on a socket whose peer never reads. Every snapshot used to
queue in the API process, bounded only by a count of frames: 150 subscribes on
one socket took the process from 102 to 406 MB, a second socket to 709 MB.
Now what one connection queues is bounded in bytes (WS_QUEUE_BYTES, with at
most one snapshot beside it: the next subscribe waits for it, then 4009), a
closed connection whose peer does not read is dropped instead of holding its
write buffer forever, and a user holds at most WS_MAX_SOCKETS_PER_USER sockets
per process (4429 past it, released however the socket ends).

The memory test runs the real server in its own process (uvicorn on
127.0.0.1, the embedded store) and reads that process's VmRSS from /proc.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

import httpx
import msgspec
import pytest
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from backend.auth.dev_tokens import dev_user_id, issue_dev_token
from backend.realtime import transport, ws
from backend.settings import SettingsError, load_settings
from tests.realtime_support import live_server
from tests.support import EDITOR, OWNER, VIEWER, token, user

ROOT = Path(__file__).resolve().parent.parent
MB = 1024 * 1024
SUBSCRIBES = 150
RSS_GROWTH_LIMIT = 64 * MB


# -- the server process ----------------------------------------------------------------------------


def serve_seeded() -> None:
    """Run in the server process: a ~1.2 MB collaboration, then the API on a free port; prints
    {"port", "cid", "token"} once ready. Settings are the defaults but for the frame rate limit,
    raised so that only the memory bounds can stop the attack."""
    from backend.composition import build_api
    from backend.runtime import Runtime
    from backend.serve import Server, uvicorn_config
    from backend.settings import test_settings

    async def main() -> None:
        settings = test_settings(ws_rate_limit=1000, action_rate_limit=100_000, log_level="WARNING")
        runtime = await Runtime.open(settings)
        created = await runtime.engine.run(
            "createCollaboration", user(OWNER), None, {"title": "Big"}, actor_email=OWNER
        )
        cid = created.collaborationId
        for i in range(240):  # 240 activities with 5000-character descriptions: ~1.2 MB
            await runtime.engine.run(
                "proposeActivity", user(OWNER), cid, {"title": f"activity {i}", "description": f"{i} " + "d" * 4990}
            )
        app = build_api(settings, runtime=runtime)
        server = Server(uvicorn_config(app, settings, "127.0.0.1", 0), app)
        task = asyncio.create_task(server.serve())
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.02)
        port = server.servers[0].sockets[0].getsockname()[1]
        print(json.dumps({"port": port, "cid": cid, "token": token(settings, OWNER)}), flush=True)
        await task

    asyncio.run(main())


def start_server() -> tuple[subprocess.Popen[str], dict]:
    env = {k: v for k, v in os.environ.items() if k != "MONGODB_URI"}
    process = subprocess.Popen(
        [sys.executable, "-c", "from tests.test_security_socket_memory import serve_seeded; serve_seeded()"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    line = process.stdout.readline()  # type: ignore[union-attr]  # Popen with stdout=PIPE
    if not line:
        process.kill()
        raise AssertionError("the server process did not start")
    return process, json.loads(line)


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def metric(port: int, name: str) -> float:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


# -- a raw WebSocket client that never reads --------------------------------------------------------


def open_raw(port: int, rcvbuf: int | None = None) -> socket.socket:
    """A WebSocket handshake by hand: after it, nothing is read from the socket until the test says so."""
    sock = socket.socket()
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(10)
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    response = b""
    while not response.endswith(b"\r\n\r\n"):
        response += sock.recv(1)  # a byte at a time: nothing past the headers
    assert response.startswith(b"HTTP/1.1 101"), response
    return sock


def masked_text(text: str) -> bytes:
    payload, mask = text.encode(), os.urandom(4)
    n = len(payload)
    header = bytes([0x81]) + (bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + struct.pack("!H", n))
    return header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def read_until_closed(sock: socket.socket, timeout: float = 15) -> int | None:
    """Read everything the server sent: the close code it ended with, or None if it dropped the
    connection (EOF or reset) without one reaching us."""
    sock.settimeout(timeout)
    data = bytearray()
    try:
        while chunk := sock.recv(1 << 20):
            data += chunk
    except (ConnectionResetError, TimeoutError):
        pass
    at = 0
    while at + 2 <= len(data):
        opcode, length, at = data[at] & 0x0F, data[at + 1] & 0x7F, at + 2
        if length == 126:
            length, at = struct.unpack_from("!H", data, at)[0], at + 2
        elif length == 127:
            length, at = struct.unpack_from("!Q", data, at)[0], at + 8
        if opcode == 0x8 and at + 2 <= len(data):
            return struct.unpack_from("!H", data, at)[0]
        at += length
    return None


# -- the reproduction ------------------------------------------------------------------------------


def test_resubscribing_on_sockets_that_never_read_keeps_the_server_within_64_mb():
    started = time.monotonic()
    process, info = start_server()
    try:
        port, cid = info["port"], info["cid"]
        baseline = rss(process.pid)
        sockets = []
        for _ in range(2):
            sock = open_raw(port)
            sock.sendall(masked_text(json.dumps({"type": "auth", "token": info["token"]})))
            sock.sendall(
                b"".join(
                    masked_text(json.dumps({"type": "subscribe", "collaborationId": cid})) for _ in range(SUBSCRIBES)
                )
            )
            sockets.append(sock)
        peak, deadline = baseline, time.monotonic() + 20
        while time.monotonic() < deadline and peak - baseline < RSS_GROWTH_LIMIT:
            peak = max(peak, rss(process.pid))
            if metric(port, "tandem_ws_connections") == 0:
                break
            time.sleep(0.05)
        peak = max(peak, rss(process.pid))
        closed_slow = metric(port, "tandem_ws_slow_closes_total")
        print(f"RSS {baseline / MB:.0f} MB -> peak {peak / MB:.0f} MB; {time.monotonic() - started:.1f} s")
        assert peak - baseline < RSS_GROWTH_LIMIT, f"the server grew by {(peak - baseline) / MB:.0f} MB"
        assert closed_slow == 2, "both sockets are closed for being too slow"
        assert [read_until_closed(sock) in (4009, None) for sock in sockets] == [True, True]
        assert time.monotonic() - started < 30
    finally:
        process.terminate()
        process.wait(10)


async def test_a_socket_closed_for_not_reading_is_dropped_with_what_it_holds(monkeypatch):
    monkeypatch.setattr(ws, "SNAPSHOT_WAIT", 0.5)
    monkeypatch.setattr(ws, "CLOSE_TIMEOUT", 0.5)
    monkeypatch.setattr(transport, "DROP_AFTER", 0.5)
    async with live_server() as live:
        cid = await live.create(OWNER)
        for i in range(100):  # ~500 KB
            await live.runtime.engine.run(
                "proposeActivity", user(OWNER), cid, {"title": f"a{i}", "description": "d" * 5000}
            )
        port = int(live.server.url.rsplit(":", 1)[1])
        sock = await asyncio.to_thread(open_raw, port, 4096)
        frames = [{"type": "auth", "token": live.token(OWNER)}] + [{"type": "subscribe", "collaborationId": cid}] * 10
        await asyncio.to_thread(sock.sendall, b"".join(masked_text(json.dumps(f)) for f in frames))

        def websockets() -> list:
            return [c for c in live.server._server.server_state.connections if isinstance(c, WebSocketsSansIOProtocol)]

        deadline = time.monotonic() + 10
        while (websockets() or not live.runtime.metrics.slow_closes._value.get()) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert live.runtime.metrics.slow_closes._value.get() == 1
        assert websockets() == [], "the server still holds the connection and what it could not write"
        assert live.realtime.sockets.held(dev_user_id(OWNER)) == 0
        assert await asyncio.to_thread(read_until_closed, sock, 5) in (4009, None)


# -- sockets per user ------------------------------------------------------------------------------


async def test_a_user_holds_at_most_ws_max_sockets_per_user_sockets_and_the_next_closes_with_4429():
    async with live_server(ws_max_sockets_per_user=3) as live:
        held = [await live.client(EDITOR) for _ in range(3)]
        extra = await live.client()
        await extra.send(type="auth", token=live.token(EDITOR))
        assert await extra.wait_closed() == 4429
        assert extra.close_reason == "too many sockets for this user"
        other = await live.client(VIEWER)  # another user is not affected
        await other.send(type="ping")
        await other.expect("pong")
        await held[0].close()  # a socket given back can be taken again
        deadline = time.monotonic() + 5
        while live.realtime.sockets.held(dev_user_id(EDITOR)) > 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        again = await live.client(EDITOR)
        await again.send(type="ping")
        await again.expect("pong")
        assert live.realtime.sockets.held(dev_user_id(EDITOR)) == 3


async def _given_back(live, email: str, held: int = 0) -> None:
    deadline = time.monotonic() + 8
    while live.realtime.sockets.held(dev_user_id(email)) != held and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    assert live.realtime.sockets.held(dev_user_id(email)) == held


async def test_every_way_a_socket_ends_gives_it_back(monkeypatch):
    async with live_server(ws_max_sockets_per_user=1) as live:
        cid = await live.create(OWNER)
        expiring = await live.client()  # 4401 when the token expires
        short = msgspec.structs.replace(live.settings, dev_token_ttl=1)
        await expiring.auth(issue_dev_token(short, OWNER)["access_token"])
        assert await expiring.wait_closed() == 4401
        await _given_back(live, OWNER)

        dropped = await live.client(OWNER)  # the TCP connection drops without a close
        dropped.abort()
        await _given_back(live, OWNER)

        failing = await live.client(OWNER)  # a bug while handling a frame: 1011

        def broken(*args, **kwargs):
            raise RuntimeError("a bug")

        monkeypatch.setattr(live.realtime.hub, "register", broken)
        await failing.send(type="subscribe", collaborationId=cid)
        assert await failing.wait_closed() == 1011
        monkeypatch.undo()
        await _given_back(live, OWNER)

        leaving = await live.client(OWNER)  # the server going away: 1001
        await live.realtime.close_all(1001, "server going away")
        assert await leaving.wait_closed() == 1001
        await _given_back(live, OWNER)

        last = await live.client(OWNER)  # the one slot is free again
        await last.send(type="ping")
        await last.expect("pong")


def test_a_connections_queued_bytes_and_a_users_sockets_have_positive_limits():
    s = load_settings({"AUTH_MODE": "dev"})
    assert (s.ws_queue_bytes, s.ws_max_sockets_per_user) == (4 * 1024 * 1024, 20)
    assert s.ws_total_queue_bytes == 256 * 1024 * 1024
    assert load_settings({"AUTH_MODE": "dev", "WS_QUEUE_BYTES": "65536"}).ws_queue_bytes == 65536
    assert load_settings({"AUTH_MODE": "dev", "WS_TOTAL_QUEUE_BYTES": "8388608"}).ws_total_queue_bytes == 8388608
    for name in ("WS_QUEUE_BYTES", "WS_MAX_SOCKETS_PER_USER", "WS_TOTAL_QUEUE_BYTES"):
        with pytest.raises(SettingsError) as info:
            load_settings({"AUTH_MODE": "dev", name: "0"})
        assert info.value.problems == [f"{name} must be greater than 0"]


# -- the hub's history: its budget is what it holds ------------------------------------------------


HISTORY_BUDGET = 4 * MB
SLACK = 64 * 1024  # bytes: what the history's own structures may hold beyond its budget

LONG_TEXTS = ["plain ascii text " * 100, "é ü ß ñ " * 200, "日本語のテキスト " * 150, "emoji 🎉🚀 " * 150]
SHORT_TEXTS = ["ok", "👍", "done!"]


def _fill_history(history, texts: list[str], framed: bool) -> None:
    """What the hub does with each message: publish (seal, into the history), then write it pre-framed."""
    from backend.realtime import events as ev
    from backend.realtime.transport import wire

    for i in range(40_000):
        event = ev.message_created(
            {
                "_id": f"msg_{i:06d}",
                "collaborationId": f"col_{i % 7}",
                "author": {"type": "user", "userId": "usr_1"},
                "text": texts[i % len(texts)],
            }
        )
        event.seal()
        history.add(event)
        if framed:
            wire(event.frame)


@pytest.mark.parametrize("texts", [LONG_TEXTS, SHORT_TEXTS], ids=["long", "short"])
@pytest.mark.parametrize("framed", [True, False], ids=["framed", "deflate"])
def test_a_history_filled_to_its_budget_holds_its_budget_and_little_more(framed, texts):
    """Threat: the history's budget (32 MiB) counted each event's payload once while it held the
    payload twice (the frame's text, and its bytes once written pre-framed) and the objects around
    it not at all: twice the budget and more for long messages, several times it for short ones.
    What it holds, measured with tracemalloc, stays within the budget."""
    import gc
    import tracemalloc

    from backend.realtime.history import History

    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        history = History(per_collaboration=10_000, budget_bytes=HISTORY_BUDGET)
        _fill_history(history, texts, framed)
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert HISTORY_BUDGET - 8192 < history.bytes <= HISTORY_BUDGET  # filled to its budget
    allowed = HISTORY_BUDGET + SLACK
    print(f"held {held / MB:.2f} MB for a {HISTORY_BUDGET / MB:.0f} MB budget, {len(history)} events")
    assert held <= allowed, f"the history holds {held / MB:.1f} MB for a {HISTORY_BUDGET / MB:.0f} MB budget"


# -- every connection of a process: one budget ------------------------------------------------------


async def test_sockets_that_never_read_share_one_process_budget_and_the_largest_queue_goes_first(monkeypatch):
    """Threat: accounts are free, and each may hold 20 sockets of WS_QUEUE_BYTES (and a snapshot)
    each, so nothing bounded what a process queued for sockets that never read. Now everything
    queued counts against WS_TOTAL_QUEUE_BYTES; past it the connection queueing the most is closed
    with 4009, while a client that reads keeps receiving."""
    monkeypatch.setattr(ws, "CLOSE_TIMEOUT", 0.5)
    monkeypatch.setattr(transport, "DROP_AFTER", 0.5)
    total = 600 * 1024
    async with live_server(ws_total_queue_bytes=total) as live:  # WS_QUEUE_BYTES (4 MiB) binds no one here
        shared, extra = await live.create(OWNER), await live.create(OWNER, "Extra")
        await live.act(OWNER, "addMember", shared, {"email": EDITOR, "role": "editor"})
        reader = await live.client(EDITOR)
        await reader.subscribe(shared)
        port = int(live.server.url.rsplit(":", 1)[1])
        hostile = []
        for n in range(3):  # one account's sockets that never read; the first also follows `extra`
            sock = await asyncio.to_thread(open_raw, port, 4096)
            frames = [{"type": "auth", "token": live.token(OWNER)}, {"type": "subscribe", "collaborationId": shared}]
            if n == 0:
                frames.append({"type": "subscribe", "collaborationId": extra})
            await asyncio.to_thread(sock.sendall, b"".join(masked_text(json.dumps(f)) for f in frames))
            hostile.append(sock)
        hub, budget = live.realtime.hub, live.realtime.queue_budget
        deadline = time.monotonic() + 5
        while (hub.subscribers(shared), hub.subscribers(extra)) != (4, 1) and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        hog = next(c for c in live.realtime.connections if extra in c.subs)
        peak, first_closed = 0, []

        async def watch() -> None:
            nonlocal peak
            while True:
                peak = max(peak, budget.bytes)
                if not first_closed:
                    first_closed.extend(c for c in live.realtime.connections if c.outbox.overflowed)
                await asyncio.sleep(0.001)

        watcher = asyncio.create_task(watch())
        sent = 0
        try:
            for i in range(400):  # ~24 KB each (a control character is six bytes of JSON): the hog gets both
                for cid in (shared, extra):
                    await live.runtime.engine.run("sendMessage", user(OWNER), cid, {"text": f"{i} " + "\x01" * 3990})
                sent += 1
                await asyncio.sleep(0)
                if live.runtime.metrics.slow_closes._value.get() == 3:
                    break
            got = 0
            while got < sent:  # the reader gets every message of `shared`, in order
                frame = await reader.until("message_created", timeout=10)
                assert frame["message"]["text"].startswith(f"{got} ")
                got += 1
        finally:
            watcher.cancel()
        print(f"peak {peak / 1024:.0f} KiB of {total / 1024:.0f} KiB; {sent} pairs; {budget.sheds} shed")
        assert budget.sheds >= 1 and first_closed[:1] == [hog]  # the largest queue went first
        assert live.runtime.metrics.slow_closes._value.get() == 3 and peak <= total
        assert reader.close_code is None and not reader.closed.is_set()
        assert [await asyncio.to_thread(read_until_closed, sock, 5) in (4009, None) for sock in hostile] == [True] * 3
        await reader.send(type="ping")
        await reader.until("pong")


def test_a_history_of_membership_changes_holds_its_budget_and_little_more():
    """Threat: an update that sets `members` whole kept every member's document (as Python objects,
    several times their JSON) in the history beside its payload, uncounted: a history of them held
    about four times its budget. The history now keeps only ids and roles, and counts them."""
    import gc
    import tracemalloc

    from backend.realtime import events as ev
    from backend.realtime.history import History

    def members(n: int) -> list[dict]:
        return [
            {
                "userId": f"usr_{i:020d}",
                "role": "editor",
                "email": f"user{i}@example.com",
                "name": f"User {i}",
                "joinedAt": "2026-01-01T00:00:00Z",
            }
            for i in range(n)
        ]

    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        history = History(per_collaboration=10_000, budget_bytes=HISTORY_BUDGET)
        for v in range(1, 400):  # five collaborations, each update setting 200 members whole
            event = ev.collaboration_updated(
                f"col_{v % 5}",
                {"version": v // 5 + 1, "members": members(200), "memberIds": [f"usr_{i:020d}" for i in range(200)]},
                [],
                None,
            )
            event.seal()
            history.add(event)
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert HISTORY_BUDGET - 200_000 < history.bytes <= HISTORY_BUDGET
    print(f"held {held / MB:.2f} MB for a {HISTORY_BUDGET / MB:.0f} MB budget, {len(history)} events")
    assert held <= HISTORY_BUDGET + SLACK, (
        f"the history holds {held / MB:.1f} MB for a {HISTORY_BUDGET / MB:.0f} MB budget"
    )
