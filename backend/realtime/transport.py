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
`ClientDisconnected` once the connection is closing or gone. Everything else
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
import struct

from uvicorn.protocols.utils import ClientDisconnected
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.http11 import Request
from websockets.protocol import State

from backend.realtime.events import Frame

DROP_AFTER = 5.0  # seconds a closing connection may take to write out what it holds
PREFRAMED = "tandem.websocket.preframed"  # the ASGI extension: {"write_now": ..., "send": ...}


def text_header(n: int) -> bytes:
    """The header of one unmasked, unfragmented text frame of `n` bytes (RFC 6455, 5.2): FIN and opcode 1,
    the length."""
    if n < 126:
        return bytes((0x81, n))
    if n < 65536:
        return struct.pack("!BBH", 0x81, 126, n)
    return struct.pack("!BBQ", 0x81, 127, n)


def text_frame(payload: bytes) -> bytes:
    """One unmasked, unfragmented text frame: the header, the payload."""
    return text_header(len(payload)) + payload


def wire(frame: Frame) -> bytes:
    """`frame` as bytes on the wire, built the first time from the payload msgspec encoded (which the
    frame then holds only as the tail of these bytes) and kept on the frame for every later write."""
    data = frame.wire
    if data is None:
        data = frame.framed(text_header(frame.size))
    return data


class TandemWebSocketProtocol(WebSocketsSansIOProtocol):
    _drop_timer: asyncio.TimerHandle | None = None

    def handle_connect(self, event: Request) -> None:
        super().handle_connect(event)
        if not self.close_sent and not self.conn.extensions:  # accepted so far, and nothing transforms frames
            self.scope["extensions"][PREFRAMED] = {"write_now": self.write_now, "send": self.send_frame}

    def write_now(self, frame: Frame) -> bool:
        """Write `frame` if the transport is below its high-water mark (True); else write nothing (False)."""
        if self.disconnected or self.close_sent or self.conn.state is not State.OPEN:
            raise ClientDisconnected()
        if not self.writable.is_set():
            return False
        self.transport.write(wire(frame))
        return True

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
