"""Pre-framed sends (backend/realtime/transport.py) against a real `websockets` client over a real uvicorn.

A tiny ASGI app drives the extension directly: frames of every length
encoding, a fragmented message from the client, pings interleaved with
pre-framed frames, a close after them, a peer that stops reading, and
permessage-deflate keeping uvicorn's per-connection path.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from typing import Any, AsyncIterator

import pytest
from uvicorn.protocols.utils import ClientDisconnected
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from backend.realtime import events as ev
from backend.realtime.transport import PREFRAMED, text_frame, wire
from backend.settings import test_settings
from tests.realtime_support import live_server
from tests.support import EDITOR, OWNER, LiveServer


class Script:
    """What the app does on each connection: `run(scope, receive, send)`; what it saw is kept here."""

    def __init__(self) -> None:
        self.preframed: list[Any] = []
        self.connections: list[dict[str, Any]] = []

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (message := await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        pre = scope["extensions"].get(PREFRAMED)
        self.preframed.append(pre)
        state: dict[str, Any] = {"pre": pre, "send": send, "done": asyncio.Event()}
        self.connections.append(state)
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                state["done"].set()
                return
            command = json.loads(message["text"])
            if command.get("do") == "close":
                await send({"type": "websocket.close", "code": command["code"], "reason": command["reason"]})
            elif command.get("do") == "echo":
                await pre["send"](ev.encode_frame({"echo": command["text"]}))
            elif command.get("do") == "frames":
                for chars, count in command["texts"]:
                    await pre["send"](text_message(chars * count))
            elif command.get("do") == "uvicorn":  # a frame through uvicorn's own websocket.send, not pre-framed
                pre["write_now"].__self__._raw.set_write_buffer_limits(high=64 * 1024 * 1024)  # no pause
                await send({"type": "websocket.send", "text": command["text"] * command["count"]})
                state["lane_after_uvicorn"] = pre["lane"].write
            elif command.get("do") == "lane":  # as the hub writes: through the lane while open, else write_now
                for i in range(command["count"]):
                    frame = ev.encode_frame({"i": i, "pad": "p" * command["pad"]})
                    write = pre["lane"].write
                    state["lane_writes"] = state.get("lane_writes", 0) + (write is not None)
                    if write is not None:
                        pre["lane"].put(wire(frame))
                    else:
                        await pre["send"](frame)
                    if i % 50 == 0:
                        await asyncio.sleep(0.005)
            elif command.get("do") == "hold":  # as the hub holds frames in one turn; then, in that same turn, `then`
                lane = pre["lane"]
                state["held_open"] = lane.write is not None
                for i in range(command["count"]):
                    lane.hold(wire(ev.encode_frame({"i": i})))
                then = command["then"]
                if then == "close":
                    await send({"type": "websocket.close", "code": 4009, "reason": "too slow"})
                elif then == "uvicorn":
                    await send({"type": "websocket.send", "text": "uvicorn's"})
                elif then == "write_now":
                    pre["write_now"](text_message("outbox's"))
                elif then in ("abort", "lost"):  # the connection aborted (DROP_AFTER) or lost: nothing written
                    writes = count_sends(lane)
                    protocol = pre["write_now"].__self__
                    if then == "abort":
                        protocol.transport.abort()
                    else:
                        protocol.disconnected = True  # what uvicorn's connection_lost sets first
                        protocol._raw.abort()
                    state["writes_after"] = writes
                else:  # "release": what the hub does at the loop's next turn
                    state["release_sends"] = count_sends(lane)
                    lane.release()
            elif command.get("do") == "stream":
                for i in range(command["count"]):
                    await pre["send"](ev.encode_frame({"i": i, "pad": "p" * command["pad"]}))
                    if i % 50 == 0:
                        await asyncio.sleep(0.005)


def count_sends(lane: Any) -> list[int]:
    """The sizes of the lane's sends to its socket from now on."""
    sends: list[int] = []
    to = lane._to

    def counted(data: bytes) -> int:
        sends.append(len(data))
        return to(data)

    lane._to = counted
    return sends


def text_message(text: str) -> ev.Frame:
    return ev.Frame(text.encode())


@contextlib.asynccontextmanager
async def serving(script: Script, **settings: Any) -> AsyncIterator[str]:
    async with LiveServer(script, test_settings(**settings)) as server:
        yield server.url.replace("http://", "ws://") + "/"


@contextlib.asynccontextmanager
async def open_connection(script: Script) -> AsyncIterator[Any]:
    """A connection the server has written to once (an echo): its lane is open."""
    async with serving(script) as url:
        async with connect(url, compression=None) as ws:
            await send(ws, do="echo", text="open")
            assert json.loads(await asyncio.wait_for(ws.recv(), 5)) == {"echo": "open"}
            yield ws


async def send(ws: Any, **command: Any) -> None:
    await ws.send(json.dumps(command))


def small_window_socket(url: str) -> socket.socket:
    """A socket to the server with a 4 KiB receive buffer: a peer that stops reading fills up soon."""
    host, port = url.split("//")[1].rstrip("/").split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, int(port)))
    return sock


@contextlib.asynccontextmanager
async def stalled_connection(script: Script) -> AsyncIterator[tuple[Any, dict[str, Any]]]:
    """A connection whose client stops reading (a 4 KiB receive buffer, reading paused), and its
    pre-framed extension: the server's writes fill it up soon."""
    async with serving(script) as url:
        sock = small_window_socket(url)
        async with connect(url, sock=sock, compression=None, max_queue=1) as ws:
            await send(ws, do="nothing")
            while not script.connections:
                await asyncio.sleep(0.01)
            ws.transport.pause_reading()
            yield ws, script.connections[0]["pre"]


# -- framing ---------------------------------------------------------------------------------------


def test_a_frames_bytes_are_built_once_with_the_right_length_encoding():
    assert text_frame(b"") == b"\x81\x00"
    assert text_frame(b"x" * 125)[:2] == b"\x81\x7d"
    assert text_frame(b"x" * 126)[:4] == b"\x81\x7e\x00\x7e"
    assert text_frame(b"x" * 65536)[:10] == b"\x81\x7f" + (65536).to_bytes(8, "big")
    frame = ev.encode_frame({"text": "héllo"})
    assert frame.wire is None
    data = wire(frame)
    assert data == b"\x81" + bytes([frame.size]) + frame["text"].encode() and wire(frame) is data


def test_a_frame_holds_its_json_once_as_bytes_and_decodes_text_only_when_asked():
    frame = ev.encode_frame({"text": "héllo"})
    assert list(frame.keys()) == ["type"] and frame.payload == '{"text":"héllo"}'.encode()  # no str kept
    payload = frame.payload
    data = wire(frame)
    assert frame.payload is None and data.endswith(payload)  # the payload lives on as the tail of `wire`
    assert frame["text"] == frame.get("text") == '{"text":"héllo"}' and frame.size == len(payload)
    assert list(frame.keys()) == ["type"] and frame.get("missing", 1) == 1


async def test_frames_of_every_length_reach_a_real_client_exactly():
    script = Script()
    texts = [
        ("", 0),
        ("a", 1),
        ("b", 125),
        ("c", 126),
        ("d", 127),
        ("e", 65535),
        ("f", 65536),
        ("é", 200_000),
        ("ü☃", 40),
    ]
    async with serving(script) as url:
        async with connect(url, compression=None) as ws:
            await send(ws, do="frames", texts=texts)
            assert [await asyncio.wait_for(ws.recv(), 5) for _ in texts] == [c * n for c, n in texts]
    assert script.preframed[0] is not None


async def test_a_fragmented_message_from_the_client_is_answered_pre_framed():
    script = Script()
    async with serving(script) as url:
        async with connect(url, compression=None) as ws:
            await ws.send(['{"do": "echo", ', '"text": "hello ', 'wörld"}'])  # three frames: text, continuation x2
            assert json.loads(await asyncio.wait_for(ws.recv(), 5)) == {"echo": "hello wörld"}


async def test_pings_both_ways_interleave_with_pre_framed_frames():
    script = Script()
    async with serving(script, ws_ping_interval=0.2) as url:  # the server pings every 200 ms meanwhile (and
        # closes the socket when a pong is 200 ms late: 20 ms failed on a loaded machine)
        async with connect(url, compression=None, ping_interval=None) as ws:
            await send(ws, do="stream", count=3000, pad=1000)
            got = []
            for n in range(3000):
                got.append(json.loads(await asyncio.wait_for(ws.recv(), 5))["i"])
                if n % 500 == 0:
                    await asyncio.wait_for(await ws.ping(), 5)  # answered in between
            assert got == list(range(3000))


async def test_a_close_after_pre_framed_frames_comes_after_them():
    script = Script()
    async with serving(script) as url:
        async with connect(url, compression=None) as ws:
            await send(ws, do="frames", texts=[("one", 1), ("two", 50_000)])
            await send(ws, do="close", code=4009, reason="too slow")
            assert [await asyncio.wait_for(ws.recv(), 5) for _ in range(2)] == ["one", "two" * 50_000]
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 5)
            assert (ws.close_code, ws.close_reason) == (4009, "too slow")


async def test_a_peer_that_stops_reading_gets_nothing_more_written_until_it_reads_again():
    script = Script()
    async with stalled_connection(script) as (ws, pre):
        written = 0
        while pre["write_now"](text_message(f"{written} " + "x" * 65_536)):  # until the transport is full
            written += 1
            assert written < 1000, "the transport never said it was full"
        late = asyncio.ensure_future(pre["send"](text_message("last")))
        await asyncio.sleep(0.2)
        assert not late.done()  # waits for the transport, holding the one frame
        ws.transport.resume_reading()
        received = [await asyncio.wait_for(ws.recv(), 5) for _ in range(written + 1)]
        await asyncio.wait_for(late, 5)
        assert [r.split(" ")[0] for r in received] == [str(i) for i in range(written)] + ["last"]


async def test_writing_to_a_closed_connection_raises_client_disconnected():
    script = Script()
    async with serving(script) as url:
        async with connect(url, compression=None) as ws:
            await send(ws, do="nothing")
            while not script.connections:
                await asyncio.sleep(0.01)
        await asyncio.wait_for(script.connections[0]["done"].wait(), 5)
        with pytest.raises(ClientDisconnected):
            script.connections[0]["pre"]["write_now"](text_message("too late"))
        with pytest.raises(ClientDisconnected):
            await script.connections[0]["pre"]["send"](text_message("too late"))


@pytest.mark.parametrize(
    ("server", "client", "preframed"),
    [
        (True, "deflate", False),  # negotiated: frames are compressed per connection, through websocket.send
        (True, None, True),  # offered, but not asked for
        (False, "deflate", True),  # asked for, but not offered
    ],
)
async def test_permessage_deflate_keeps_the_per_connection_path(server, client, preframed):
    script = Script()
    async with serving(script, ws_per_message_deflate=server) as url:
        async with connect(url, compression=client) as ws:
            await send(ws, do="nothing")
            while not script.preframed:
                await asyncio.sleep(0.01)
    assert (script.preframed[0] is not None) is preframed


def raw_buffered(pre: dict) -> int:
    """Bytes waiting in the connection's asyncio transport."""
    return pre["write_now"].__self__._raw.get_write_buffer_size()


# -- the lane: the hub's one-call write ------------------------------------------------------------


async def test_the_lane_opens_after_a_write_and_carries_frames_in_order_between_pings():
    script = Script()
    async with serving(script, ws_ping_interval=0.2) as url:
        async with connect(url, compression=None, ping_interval=None) as ws:
            await send(ws, do="nothing")
            while not script.connections:
                await asyncio.sleep(0.01)
            lane = script.connections[0]["pre"]["lane"]
            assert lane.write is None  # nothing written by the protocol yet: not known to be open
            await send(ws, do="lane", count=2000, pad=500)
            got = []
            for n in range(2000):
                got.append(json.loads(await asyncio.wait_for(ws.recv(), 5))["i"])
                if n % 400 == 0:
                    await asyncio.wait_for(await ws.ping(), 5)  # answered in between
            assert got == list(range(2000))
            assert script.connections[0]["lane_writes"] >= 1990  # all but the first few went through it
            assert lane.write is not None


async def test_the_lane_shuts_while_a_peer_does_not_read_and_opens_again_after():
    script = Script()
    async with stalled_connection(script) as (ws, pre):
        lane = pre["lane"]
        assert pre["write_now"](text_message("0 first"))
        written = 1
        while lane.write is not None:  # the hub's way: straight to the socket while the lane is open
            lane.put(wire(text_message(f"{written} " + "x" * 65_536)))
            written += 1
            assert written < 1000, "the lane never shut"
        assert raw_buffered(pre) > 0  # the socket took part of the last one: the rest waits in the transport
        while pre["write_now"](text_message(f"{written} " + "x" * 65_536)):  # the outbox's way, behind it
            written += 1
            assert lane.write is None and written < 1000
        ws.transport.resume_reading()
        received = [await asyncio.wait_for(ws.recv(), 5) for _ in range(written)]
        assert [r.split(" ")[0] for r in received] == [str(i) for i in range(written)]
        await asyncio.wait_for(pre["send"](text_message("again")), 5)
        assert await asyncio.wait_for(ws.recv(), 5) == "again"
        assert lane.write is not None  # written at once again: open


async def test_bytes_uvicorn_leaves_in_the_transport_shut_the_lane_so_no_frame_overtakes_them():
    script = Script()
    async with serving(script) as url:
        sock = small_window_socket(url)
        async with connect(url, sock=sock, compression=None, max_queue=1, max_size=None) as ws:
            await send(ws, do="echo", text="open")
            assert json.loads(await asyncio.wait_for(ws.recv(), 5)) == {"echo": "open"}
            pre = script.connections[0]["pre"]
            assert pre["lane"].write is not None
            ws.transport.pause_reading()
            await send(ws, do="uvicorn", text="u", count=8_000_000)  # more than the socket takes at once
            while "lane_after_uvicorn" not in script.connections[0]:
                await asyncio.sleep(0.01)
            assert script.connections[0]["lane_after_uvicorn"] is None and raw_buffered(pre) > 0  # not paused
            after = asyncio.ensure_future(pre["send"](text_message("after")))  # the outbox's way: behind them
            ws.transport.resume_reading()
            assert await asyncio.wait_for(ws.recv(), 5) == "u" * 8_000_000
            assert await asyncio.wait_for(ws.recv(), 5) == "after"
            await asyncio.wait_for(after, 5)


@pytest.mark.parametrize("who", ["server", "client"])
async def test_the_lane_shuts_for_good_once_a_close_frame_is_sent_or_received(who):
    script = Script()
    async with open_connection(script) as ws:
        lane = script.connections[0]["pre"]["lane"]
        assert lane.write is not None
        if who == "server":
            await send(ws, do="close", code=4009, reason="too slow")
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 5)
        else:
            await ws.close()
        await asyncio.wait_for(script.connections[0]["done"].wait(), 5)
        assert lane.write is None
        with pytest.raises(ClientDisconnected):
            script.connections[0]["pre"]["write_now"](text_message("too late"))


@pytest.mark.parametrize("then", ["abort", "lost"])
async def test_frames_held_on_the_lane_of_an_aborted_or_lost_connection_are_dropped_not_written(then):
    script = Script()
    async with open_connection(script) as ws:
        await send(ws, do="hold", count=5, then=then)
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 5)  # the connection ends, none of the five frames came
        state = script.connections[0]
        assert state["held_open"] and state["writes_after"] == []
        assert state["pre"]["lane"].held is None and state["pre"]["lane"].write is None


@pytest.mark.parametrize("then", ["release", "close", "uvicorn", "write_now"])
async def test_frames_held_on_the_lane_reach_a_real_client_in_order_before_anything_written_after_them(then):
    script = Script()
    async with open_connection(script) as ws:
        await send(ws, do="hold", count=50, then=then)
        got = [json.loads(await asyncio.wait_for(ws.recv(), 5))["i"] for _ in range(50)]
        assert script.connections[0]["held_open"] and got == list(range(50))
        if then == "release":
            assert len(script.connections[0]["release_sends"]) == 1  # fifty frames, one send()
        elif then == "close":
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 5)
            assert (ws.close_code, ws.close_reason) == (4009, "too slow")  # the close frame came after them
        else:
            assert await asyncio.wait_for(ws.recv(), 5) == ("uvicorn's" if then == "uvicorn" else "outbox's")


# -- the /ws endpoint -------------------------------------------------------------------------------


@pytest.mark.parametrize("deflate", [False, True])
async def test_the_endpoint_writes_each_events_frame_built_once_unless_deflated(deflate):
    async with live_server(ws_per_message_deflate=deflate) as live:
        cid = await live.create(OWNER)
        await live.act(OWNER, "addMember", cid, {"email": EDITOR, "role": "editor"})
        clients = [await live.client(email, compression="deflate") for email in (OWNER, EDITOR)]
        for client in clients:
            await client.subscribe(cid)
            await client.until("presence")
        await live.act(OWNER, "updateDetails", cid, {"title": "Renamed"})
        for client in clients:
            update = await client.until("collaboration_updated")
            assert update["changes"]["updatedFields"]["title"] == "Renamed"
        event = live.realtime.hub.history._logs[cid].updates[-1]
        assert (event.frame.wire is None) is deflate
        if not deflate:
            assert event.frame.wire == text_frame(event.frame["text"].encode())


async def test_a_peer_that_half_closes_gets_no_frame_once_asyncio_closes_the_transport():
    """A client that sends FIN but still reads: uvicorn's eof_received answers None, so asyncio
    closes the transport itself, before connection_lost. In that window a write is dropped
    silently; neither write_now nor the lane may then write (else frame 1 is lost and frame 2
    arrives: a gap that no resume by seq would notice)."""
    from uvicorn.config import Config
    from uvicorn.server import ServerState

    from backend.realtime.transport import TandemWebSocketProtocol

    seen: dict[str, Any] = {}

    async def app(scope: dict, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await asyncio.sleep(1)

    class Probe(TandemWebSocketProtocol):
        def eof_received(self) -> None:
            super().eof_received()
            self.loop.call_soon(self.publish)  # after asyncio's close(), before connection_lost

        def publish(self) -> None:
            pre = self.scope["extensions"][PREFRAMED]
            seen["closing"] = self._raw.is_closing()  # type: ignore[union-attr]
            seen["lane"] = pre["lane"].write
            try:
                pre["write_now"](ev.encode_frame({"seq": 1}))
                seen["write_now"] = "wrote"
            except ClientDisconnected:
                seen["write_now"] = "ClientDisconnected"
            seen["lane_after"] = pre["lane"].write

    loop = asyncio.get_running_loop()
    config = Config(app=app, ws="websockets-sansio", lifespan="off", log_level="critical")
    config.load()
    server_end, client_end = socket.socketpair()
    with server_end, client_end:
        await loop.create_connection(lambda: Probe(config, ServerState(), {}), sock=server_end)
        client_end.sendall(
            b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        client_end.setblocking(False)
        answer = b""
        while b"\r\n\r\n" not in answer:
            with contextlib.suppress(BlockingIOError):
                answer += client_end.recv(4096)
            await asyncio.sleep(0.01)
        assert answer.startswith(b"HTTP/1.1 101")
        await asyncio.sleep(0.05)
        client_end.shutdown(socket.SHUT_WR)  # half-close: the client still reads
        for _ in range(100):
            if "lane_after" in seen:
                break
            await asyncio.sleep(0.01)
        rest = b""
        with contextlib.suppress(BlockingIOError):
            while chunk := client_end.recv(4096):
                rest += chunk
    assert seen["closing"] is True
    assert seen["lane"] is None and seen["lane_after"] is None
    assert seen["write_now"] == "ClientDisconnected"
    assert answer.split(b"\r\n\r\n", 1)[1] + rest == b""  # nothing after the handshake
