"""One connection's way out: the `Outbox` (described in backend/realtime/hub.py), and the
`QueueBudget` every outbox of the process shares (WS_TOTAL_QUEUE_BYTES). Its fast way out, the
`Lane`, is backend/realtime/lane.py."""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any, Awaitable, Callable, Coroutine, Generator, cast

from backend.realtime.events import Frame
from backend.realtime.lane import Lane

Send = Callable[[Frame], Awaitable[None]]
WriteNow = Callable[[Frame], bool]  # writes the frame if the transport takes it now, else False
DEFAULT_QUEUE_BYTES = 4 * 1024 * 1024
DEFAULT_TOTAL_QUEUE_BYTES = 256 * 1024 * 1024


class QueueBudget:
    """The bytes every outbox of the process has queued, snapshots included: at most `limit`.

    Outboxes add and take away what they queue and write (an integer add per queued frame); one
    that would take the total past `limit` has the outbox queueing the most overflow (4009: its
    client resumes later), again until the total is within `limit`. So however many accounts
    open sockets that never read, the process queues at most `limit` bytes for them, and the
    connections that read (which queue little or nothing) stay."""

    __slots__ = ("limit", "bytes", "queueing", "sheds")

    def __init__(self, limit: int = DEFAULT_TOTAL_QUEUE_BYTES):
        self.limit = limit
        self.bytes = 0
        self.queueing: dict[Outbox, None] = {}  # outboxes with a writer task (something queued), oldest first
        self.sheds = 0  # outboxes closed to keep within the limit

    def shed(self) -> None:
        """Past the limit: overflow the outbox queueing the most, until within it."""
        while self.bytes > self.limit and self.queueing:
            largest = max(self.queueing, key=Outbox.queued)
            self.sheds += 1
            largest._overflow()  # closes it, which takes what it queued off the total


# -- one connection's way out ---------------------------------------------------------------------


class _Finish:
    """Awaiting it finishes a coroutine that was stepped once by hand and is suspended on `pending`."""

    __slots__ = ("_coro", "_pending")

    def __init__(self, coro: Coroutine[Any, Any, None], pending: object):
        self._coro, self._pending = coro, pending

    def __await__(self) -> Generator[object, Any, Any]:  # returns what the coroutine returns
        coro, value = self._coro, self._pending
        while True:
            try:
                sent = yield value
            except BaseException as exc:  # noqa: BLE001 - cancellation and the like go to the coroutine
                try:
                    value = coro.throw(exc)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    value = coro.send(sent)
                except StopIteration as stop:
                    return stop.value


class Outbox:
    """Frames to one connection: written at once while possible, else queued (bounded) behind a writer task.

    What is queued (the frame the writer is waiting to write, and those behind it) is bounded in
    frames (`limit`) and in bytes (`limit_bytes`): a frame past either overflows the outbox, once.
    A snapshot is queued beside that budget, one at a time (`put_snapshot`): a snapshot larger
    than the budget still reaches a client that reads, and the next subscribe waits until the
    previous snapshot is written (`snapshot_written`). Everything queued, the snapshot too, also
    counts against the process's `QueueBudget` (`budget`), which may overflow the outbox as well.
    """

    __slots__ = (
        "_send",
        "_write_now",
        "_limit",
        "_limit_bytes",
        "_backlog",
        "_writer",
        "_on_overflow",
        "closed",
        "overflowed",
        "bytes",
        "_snapshot",
        "_written",
        "_budget",
        "lane",
    )

    def __init__(
        self,
        send: Send,
        limit: int,
        on_overflow: Callable[[], None],
        limit_bytes: int = DEFAULT_QUEUE_BYTES,
        write_now: WriteNow | None = None,
        budget: QueueBudget | None = None,
        lane: Lane | None = None,
    ):
        self._send = send
        self._write_now = write_now
        self._limit = limit
        self._limit_bytes = limit_bytes
        self._backlog: deque[Frame] = deque()
        self._writer: asyncio.Task[None] | None = None
        self._on_overflow = on_overflow
        self.closed = False
        self.overflowed = False
        self.bytes = 0  # queued, the snapshot aside
        self._snapshot: Frame | None = None  # the snapshot queued, if any
        self._written: asyncio.Future[bool] | None = None  # resolved once that snapshot is written
        self._budget = budget
        self.lane = lane  # the hub writes through it while the transport takes frames at once

    @property
    def backlog(self) -> int:
        return len(self._backlog)

    def queued(self) -> int:
        """Bytes queued, the snapshot included: what counts against the process's budget."""
        snapshot = self._snapshot
        return self.bytes + snapshot.size if snapshot is not None else self.bytes

    @property
    def room(self) -> int:
        """Bytes that can still be queued."""
        return self._limit_bytes - self.bytes

    def put(self, frame: Frame) -> None:
        if self.closed:
            return
        if self._writer is None:
            self._write_or_queue(frame, False)
            return
        size = frame.size
        if len(self._backlog) >= self._limit or self.bytes + size > self._limit_bytes:
            self._overflow()
            return
        self.bytes += size
        self._backlog.append(frame)
        budget = self._budget
        if budget is not None:
            budget.bytes += size
            if budget.bytes > budget.limit:
                budget.shed()

    def put_snapshot(self, frame: Frame) -> None:
        """Queue a snapshot beside the byte budget. One at a time: the caller waits for
        `snapshot_written()` first (a second one overflows the outbox)."""
        if self.closed:
            return
        if self._snapshot is not None:
            self._overflow()
        elif self._writer is None:
            self._write_or_queue(frame, True)
        else:
            self._snapshot = frame
            self._backlog.append(frame)
            self._count(frame.size)

    async def snapshot_written(self, timeout: float) -> bool:
        """Wait until no snapshot is queued (True), or `timeout` seconds or the outbox closing (False)."""
        if self._snapshot is None:
            return not self.closed
        if self._written is None:
            self._written = asyncio.get_running_loop().create_future()
        try:
            async with asyncio.timeout(timeout):
                return await asyncio.shield(self._written)
        except TimeoutError:
            return False

    async def flush(self, timeout: float) -> bool:
        """Wait until everything queued is written (True), or `timeout` seconds (False)."""
        writer = self._writer
        if writer is None:
            return True
        done, _ = await asyncio.wait({writer}, timeout=timeout)
        return bool(done)

    def close(self) -> None:
        """Write nothing more: drop what is queued and stop the writer."""
        if self._budget is not None and not self.closed:
            self._budget.bytes -= self.queued()
            self._budget.queueing.pop(self, None)
        self.closed = True
        if self.lane is not None:
            self.lane.busy(True)  # for good
        self._backlog.clear()
        self.bytes = 0
        self._snapshot = None
        self._resolve(False)
        if self._writer is not None:
            self._writer.cancel()

    def fail(self) -> None:
        """What this connection was owed could not be written: write nothing more, and have its
        owner close it as it closes an overflowed one (4009), so its client resumes with sinceSeq."""
        if not self.closed:
            self._overflow()

    def _write_or_queue(self, frame: Frame, snapshot: bool) -> None:
        """Write `frame` at once if the transport takes it; else hand the write to a writer task."""
        first: _Finish | None = None  # None: the writer sends `frame` itself
        try:
            lane = self.lane
            if lane is not None and lane.held is not None:
                lane.release()  # what the hub handed the lane goes first
            if self._write_now is not None:  # pre-framed: no coroutine unless the transport is full
                if self._write_now(frame):
                    return  # written
            else:
                coro = cast(Coroutine[Any, Any, None], self._send(frame))  # the sends given are coroutine functions
                try:
                    pending = coro.send(None)
                except StopIteration:
                    return  # written
                first = _Finish(coro, pending)
        except Exception:  # noqa: BLE001 - the connection is gone; its endpoint sees the disconnect
            self.close()
            return
        if snapshot:
            self._snapshot = frame
        else:
            self.bytes += frame.size
        self._writer = asyncio.get_running_loop().create_task(self._drain(first, frame))
        if self.lane is not None:
            self.lane.busy(True)  # later frames queue behind this one
        if self._budget is not None:
            self._budget.queueing[self] = None
            self._count(frame.size)

    def _count(self, size: int) -> None:
        """`size` more bytes queued: against the process's budget, which may overflow this outbox or another."""
        budget = self._budget
        if budget is not None:
            budget.bytes += size
            if budget.bytes > budget.limit:
                budget.shed()

    def _overflow(self) -> None:
        self.overflowed = True
        self.close()
        self._on_overflow()

    def _written_out(self, frame: Frame) -> None:
        if self.closed:
            return  # what it held is already off the counts
        if frame is self._snapshot:
            self._snapshot = None
            self._resolve(True)
        else:
            self.bytes -= frame.size
        if self._budget is not None:
            self._budget.bytes -= frame.size

    def _resolve(self, written: bool) -> None:
        waiter, self._written = self._written, None
        if waiter is not None and not waiter.done():
            waiter.set_result(written)

    async def _drain(self, first: _Finish | None, frame: Frame) -> None:
        try:
            await (first if first is not None else self._send(frame))
            self._written_out(frame)
            backlog = self._backlog
            while backlog and not self.closed:
                frame = backlog.popleft()
                await self._send(frame)
                self._written_out(frame)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - the connection is gone
            self.close()
        finally:
            self._writer = None
            if self._budget is not None:
                self._budget.queueing.pop(self, None)
            if self.lane is not None and not self.closed:
                self.lane.busy(False)
