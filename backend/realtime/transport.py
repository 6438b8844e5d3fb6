"""The WebSocket protocol uvicorn runs for Tandem: its websockets-sansio one, dropping what a peer never reads.

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

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

DROP_AFTER = 5.0  # seconds a closing connection may take to write out what it holds


class TandemWebSocketProtocol(WebSocketsSansIOProtocol):
    _drop_timer: asyncio.TimerHandle | None = None

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
