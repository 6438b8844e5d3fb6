"""A pre-framed connection's fast way out: the `Lane` the hub holds each delivery on and writes
each turn's through."""

from __future__ import annotations

from typing import Any, Callable


class Lane:
    """A pre-framed connection's fast way out: `write` sends bytes straight to the socket while they
    may go there, else is None; the hub holds each delivery on the lane while `write` is set (no
    outbox, no coroutine, no asyncio transport) and writes what it holds with one `write` per
    turn (`Hub.release`), and goes through the outbox while `write` is None.

    `write(data)` is the socket's own `send` (backend/realtime/transport.py: asyncio's selector
    transport, whose buffer is then empty) and says how many bytes it took, or raises OSError;
    what it did not take goes to `spill` (the transport's write, which queues it behind a writer
    callback or reports the error as asyncio does) and the lane shuts. `release` is that write of
    what the lane holds, spelled out (Hub.release inlines it); `put` writes bytes at once, after
    what the lane holds (tests use it).

    Two sides keep it: the protocol `open`s it each time it has written a frame itself and left
    nothing in the transport's buffer (so the connection was open, below the high-water mark,
    with nothing waiting to go out before the next frame) and `shut`s it the moment that may stop
    being so (anything left in the transport's buffer, paused writing, a close frame sent or
    received, disconnected, closing, shutting down); the outbox says whether it is `busy` (a
    writer task with frames queued behind it, or closed: later frames must queue behind those).
    Open and not busy: `write` is set. Writing then is what `write_now` would do, minus its checks.

    **Held bytes.** The hub does not write each delivery at once: it `hold`s the bytes on the lane
    (`held`, in order) and `release`s every lane it held bytes on at the event loop's next turn
    (after the callbacks already ready then; sooner past a byte bound, `hub.HOLD_BYTES`), so a
    connection that several events reach before then gets them in one `send()`. Held bytes are written
    before anything else goes to that connection: `shut` and `busy(True)` release them first
    (so does the protocol before any write of its own, and the outbox before it writes), so
    while bytes are held the lane is still open, and nothing overtakes them; `drop` (the
    connection lost) lets them go unwritten, as the transport would."""

    __slots__ = ("write", "_to", "_spill", "_ready", "_idle", "held")

    def __init__(self, send: Callable[[bytes], int], spill: Callable[[Any], None]):
        self._to = send
        self._spill = spill
        self._ready = False  # the protocol's side: set by `open`, cleared by `shut`
        self._idle = True  # the outbox's side
        self.write: Callable[[bytes], int] | None = None
        self.held: bytes | list[bytes] | None = None  # what the hub handed over, not yet written (in order)

    def open(self) -> None:
        self._ready = True
        self.write = self._to if self._idle else None

    def shut(self) -> None:
        if self.held is not None:
            self.release()  # what the lane holds goes out first
        self._ready = False
        self.write = None

    def drop(self) -> None:
        """The connection is gone: shut, and what the lane holds is not written."""
        self.held = None
        self.shut()

    def busy(self, busy: bool) -> None:
        if busy and self.held is not None:
            self.release()
        self._idle = not busy
        self.write = self._to if self._ready and not busy else None

    def hold(self, data: bytes) -> bool:
        """Hold `data` to write at the next `release` (the lane is open: `write` is set); True if
        the lane held nothing before, so the caller knows to release it. Hub.publish inlines it."""
        held = self.held
        if held is None:
            self.held = data
            return True
        if isinstance(held, list):
            held.append(data)
        else:
            self.held = [held, data]
        return False

    def release(self) -> None:
        """Write what the lane holds, in one `send()`: to the socket, the rest spilled. Hub.release
        inlines it."""
        held = self.held
        if held is None:
            return
        self.held = None
        self._send(b"".join(held) if isinstance(held, list) else held)

    def put(self, data: bytes) -> None:
        """Write `data` through the open lane (`write` is set) at once, after what it holds."""
        if self.held is not None:
            self.release()
        self._send(data)

    def _send(self, data: bytes) -> None:
        """To the socket; what it does not take, spilled. Only while the lane is open (bytes are held
        only then, and every way of shutting it releases them first)."""
        try:
            n = self._to(data)
        except OSError:
            n = 0
        if n != len(data):
            self.spill(data, n)

    def spill(self, data: bytes, n: int) -> None:
        """The socket took `n` bytes of `data` (or failed): the rest goes to the transport, and the
        lane shuts until the protocol sees the transport's buffer empty again."""
        self.shut()
        self._spill(memoryview(data)[n:] if n else data)
