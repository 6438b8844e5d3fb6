"""A pre-framed connection's fast way out: the `Lane` the hub writes each delivery through."""

from __future__ import annotations

from typing import Any, Callable


class Lane:
    """A pre-framed connection's fast way out: `write` sends a frame's bytes straight to the socket
    while they may go there, else is None; the hub calls it for each delivery (one call, no outbox,
    no coroutine, no asyncio transport), and goes through the outbox while it is None.

    `write(data)` is the socket's own `send` (backend/realtime/transport.py: asyncio's selector
    transport, whose buffer is then empty) and says how many bytes it took, or raises OSError;
    what it did not take goes to `spill` (the transport's write, which queues it behind a writer
    callback or reports the error as asyncio does) and the lane shuts. `put` is that whole write,
    spelled out; Hub.publish inlines it.

    Two sides keep it: the protocol `open`s it each time it has written a frame itself and left
    nothing in the transport's buffer (so the connection was open, below the high-water mark,
    with nothing waiting to go out before the next frame) and `shut`s it the moment that may stop
    being so (anything left in the transport's buffer, paused writing, a close frame sent or
    received, disconnected, closing, shutting down); the outbox says whether it is `busy` (a
    writer task with frames queued behind it, or closed: later frames must queue behind those).
    Open and not busy: `write` is set. Writing then is what `write_now` would do, minus its checks."""

    __slots__ = ("write", "_to", "_spill", "_ready", "_idle")

    def __init__(self, send: Callable[[bytes], int], spill: Callable[[Any], None]):
        self._to = send
        self._spill = spill
        self._ready = False  # the protocol's side: set by `open`, cleared by `shut`
        self._idle = True  # the outbox's side
        self.write: Callable[[bytes], int] | None = None

    def open(self) -> None:
        self._ready = True
        self.write = self._to if self._idle else None

    def shut(self) -> None:
        self._ready = False
        self.write = None

    def busy(self, busy: bool) -> None:
        self._idle = not busy
        self.write = self._to if self._ready and not busy else None

    def put(self, data: bytes) -> None:
        """Write `data` through the open lane (`write` is set): to the socket, the rest spilled."""
        try:
            n = self.write(data)  # type: ignore[misc]  # the caller checked the lane is open
        except OSError:
            n = 0
        if n != len(data):
            self.spill(data, n)

    def spill(self, data: bytes, n: int) -> None:
        """The socket took `n` bytes of `data` (or failed): the rest goes to the transport, and the
        lane shuts until the protocol sees the transport's buffer empty again."""
        self.shut()
        self._spill(memoryview(data)[n:] if n else data)
