"""The WebSocket protocol uvicorn runs for Tandem: its websockets-sansio one, with frames built once
and dropping what a peer never reads.

**Pre-framed sends.** Server-to-client frames are not masked, so a frame's
bytes (header and payload) are the same for every subscriber. When a
connection has no extension negotiated (no permessage-deflate), the protocol
offers the ASGI extension `tandem.websocket.preframed` in the scope:
`write_now(frame)` writes the frame's bytes (`wire(frame)`: built once per
`events.Frame` and cached on it) straight to the transport while it is below
its high-water mark and says False, writing nothing, once it is above;
`send(frame)` waits until the transport takes it. Either raises
`ClientDisconnected` once the connection is closing or gone. `lane` (a
`lane.Lane`) is the same write with every check done beforehand: its `write`
is the socket's own `send` while a frame may go straight to it (the
connection open, the transport's buffer empty), else None, so the hub holds
each delivery on it and writes each turn's with one call (this protocol opens
it after each write of its own that left the buffer empty, and shuts it the
moment that may stop being so; uvicorn's own code sees the transport through
`_Watched`, which shuts it when a write of uvicorn's leaves bytes behind).
Whatever the lane holds goes out before any write of this protocol's or
uvicorn's (`write_now` and `_Watched` release it first); a lost or aborted
connection drops it. Everything else
(handshake, pings, close frames, permessage-deflate connections, which keep
uvicorn's per-connection `websocket.send`) is uvicorn's.

asyncio's `transport.close()` first writes out what the transport still
buffers, however long that takes: for a peer that stops reading (its TCP
window shut) that is forever, and the buffer (up to the transport's high-water
mark plus the last frame handed to it, a snapshot of up to
`MAX_DOCUMENT_BYTES` and more) stays in memory with the socket. uvicorn closes
that way when the application returns, when it sends its close frame, when a
keepalive ping goes unanswered and when it shuts down. This protocol aborts the
transport instead (dropping the buffer and the TCP connection) once
`DROP_AFTER` seconds have passed since any of those: a peer that reads gets
everything, the close frame included, well within that time.

`backend/serve.py` gives it to uvicorn as its `ws` protocol class; the
handshake, pings, close codes and Starlette's `/ws` endpoint are uvicorn's.
"""

from __future__ import annotations

import asyncio
import asyncio.selector_events
import socket
from typing import Any, Callable, cast

from uvicorn.protocols.utils import ClientDisconnected
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.http11 import Request
from websockets.protocol import State

from backend.realtime.events import Frame, text_frame, text_header, wire
from backend.realtime.lane import Lane

__all__ = ["DROP_AFTER", "PREFRAMED", "TandemWebSocketProtocol", "text_frame", "text_header", "wire"]

DROP_AFTER = 5.0  # seconds a closing connection may take to write out what it holds
PREFRAMED = "tandem.websocket.preframed"  # the ASGI extension: {"write_now": ..., "send": ..., "lane": ...}


_PLAIN: type = getattr(asyncio.selector_events, "_SelectorSocketTransport", type(None))  # asyncio's plain TCP transport


def socket_send(transport: asyncio.BaseTransport) -> Callable[[bytes], int]:
    """What a lane sends with: the socket's own `send` under asyncio's plain socket transport (the
    lane is open only while that transport's buffer is empty, so nothing can be overtaken); for any
    other transport (TLS, uvloop) its `write`, which takes everything."""
    sock = getattr(transport, "_sock", None) if isinstance(transport, _PLAIN) else None
    if isinstance(sock, socket.socket):
        return sock.send
    write = cast(asyncio.WriteTransport, transport).write

    def send(data: bytes) -> int:
        write(data)
        return len(data)

    return send


class _Watched:
    """The transport as uvicorn's protocol code sees it: each write that leaves bytes in the
    transport's buffer (a pong, a ping, a close frame the socket did not take at once) shuts the
    lane, so a frame sent straight to the socket never overtakes them; so does closing."""

    __slots__ = ("_transport", "_protocol")

    def __init__(self, transport: asyncio.Transport, protocol: "TandemWebSocketProtocol"):
        self._transport, self._protocol = transport, protocol

    def write(self, data: Any) -> None:
        self._protocol._release_lane()  # what the hub handed the lane goes first
        transport = self._transport
        transport.write(data)
        if transport.get_write_buffer_size():
            self._protocol._shut_lane()

    def close(self) -> None:
        self._protocol._shut_lane()
        self._transport.close()

    def abort(self) -> None:
        self._protocol._drop_lane()
        self._transport.abort()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class TandemWebSocketProtocol(WebSocketsSansIOProtocol):
    _drop_timer: asyncio.TimerHandle | None = None
    _lane: Lane | None = None  # the pre-framed connection's fast way out (backend/realtime/lane.py)
    _raw: asyncio.Transport | None = None  # the transport itself (self.transport watches it)
    _close_sent = False
    _disconnected = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._raw = self.transport
        self.transport = cast(asyncio.Transport, _Watched(self.transport, self))

    def handle_connect(self, event: Request) -> None:
        super().handle_connect(event)
        if not self.close_sent and not self.conn.extensions:  # accepted so far, and nothing transforms frames
            raw = cast(asyncio.Transport, self._raw)
            self._lane = Lane(socket_send(raw), raw.write)
            self.scope["extensions"][PREFRAMED] = {
                "write_now": self.write_now,
                "send": self.send_frame,
                "lane": self._lane,
            }

    def write_now(self, frame: Frame) -> bool:
        """Write `frame` if the transport is below its high-water mark (True); else write nothing (False)."""
        raw = cast(asyncio.Transport, self._raw)
        if self.disconnected or self.close_sent or self.conn.state is not State.OPEN or raw.is_closing():
            # closing: asyncio closed the transport itself (a peer's half-close, uvicorn's
            # eof_received answers None) before connection_lost; a write would be dropped silently
            self._shut_lane()
            raise ClientDisconnected()
        if not self.writable.is_set():
            return False
        lane = self._lane
        if lane is not None and lane.held is not None:
            lane.release()  # what the hub handed the lane goes first
            if not self.writable.is_set():
                return False
        raw.write(wire(frame))
        if self._lane is not None:
            if raw.get_write_buffer_size():
                self._lane.shut()  # bytes wait in the transport: the next frames go behind them
            else:
                self._lane.open()  # all written, open: the next frames may go straight to the socket
        return True

    # The lane is shut the moment a frame could no longer go straight to the socket: bytes left in
    # the transport's buffer (_Watched), a close frame sent (uvicorn sets close_sent) or received
    # (conn.state), the connection lost or closing, writing paused, the server shutting down. Only
    # write_now opens it again, having checked all of that itself.

    def _shut_lane(self) -> None:
        if self._lane is not None:
            self._lane.shut()

    def _drop_lane(self) -> None:
        if self._lane is not None:
            self._lane.drop()

    def _release_lane(self) -> None:
        lane = self._lane
        if lane is not None and lane.held is not None:
            lane.release()

    @property  # uvicorn's plain attribute, watched: a close frame shuts the lane
    def close_sent(self) -> bool:
        return self._close_sent

    @close_sent.setter
    def close_sent(self, value: bool) -> None:
        self._close_sent = value
        if value and self._lane is not None:
            self._lane.shut()

    @property  # likewise: the connection lost drops what the lane holds and shuts it
    def disconnected(self) -> bool:
        return self._disconnected

    @disconnected.setter
    def disconnected(self, value: bool) -> None:
        self._disconnected = value
        if value and self._lane is not None:
            self._lane.drop()  # what it holds goes nowhere now

    def data_received(self, data: bytes) -> None:
        try:
            super().data_received(data)
        finally:
            if self._lane is not None and self.conn.state is not State.OPEN:  # a close frame came (or failed)
                self._lane.shut()

    def eof_received(self) -> None:
        """The peer half-closed: asyncio closes the transport next (uvicorn answers None), so no
        frame may go straight to the socket any more."""
        self._shut_lane()
        super().eof_received()

    def pause_writing(self) -> None:
        if self._lane is not None:
            self._lane.shut()
        super().pause_writing()

    async def send_frame(self, frame: Frame) -> None:
        """Write `frame` once the transport is below its high-water mark."""
        while not self.write_now(frame):
            await self.writable.wait()

    async def run_asgi(self) -> None:
        await super().run_asgi()
        self._drop_soon()  # the application is done: uvicorn closes, or waits for the close handshake

    def keepalive_timeout(self) -> None:
        super().keepalive_timeout()
        self._drop_soon()

    def shutdown(self) -> None:
        if self._lane is not None:
            self._lane.shut()
        super().shutdown()
        self._drop_soon()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._drop_timer is not None:
            self._drop_timer.cancel()
            self._drop_timer = None
        super().connection_lost(exc)

    def _drop_soon(self) -> None:
        if self._drop_timer is None and not self.disconnected:
            self._drop_timer = self.loop.call_later(DROP_AFTER, self._drop)

    def _drop(self) -> None:
        self._drop_timer = None
        if not self.disconnected:
            self.transport.abort()
