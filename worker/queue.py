"""The job runner: claim, hold a lease, run the handler, then complete or retry.

Delivery is at least once: a job whose worker stops renewing its lease (crash,
kill -9, a stalled event loop) is claimed again by any worker, so handlers must
be idempotent. While a job runs its lease is renewed every third of the lease;
a worker that finds it lost the lease, or whose renewals have failed until the
lease ran out (MongoDB unreachable), cancels its handler at once, so one job
never runs twice at the same time as long as the event loop is not starved. A
failed attempt is retried after an exponential backoff with jitter until
`maxAttempts`, then the job is `dead`; every attempt's error stays on the job.
"""

from __future__ import annotations

import asyncio
import logging
import random
import traceback
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Callable, Coroutine, Protocol

from backend.clock import utcnow
from backend.errors import TandemError

log = logging.getLogger("tandem.worker")

Handler = Callable[[dict[str, Any]], Coroutine[Any, Any, Any]]  # run as a task, so a coroutine function


class Jobs(Protocol):
    """What the runner needs of the job queue: backend/store/jobs.py `Jobs` (a test wraps it to fail renewals)."""

    async def claim(
        self, worker_id: str, now: datetime, lease: float, kinds: list[str] | None = None
    ) -> tuple[dict[str, Any], dict[str, Any]] | None: ...

    async def renew(self, job: dict[str, Any], now: datetime, lease: float) -> bool: ...

    async def complete(self, job: dict[str, Any], now: datetime, result: Any = None) -> bool: ...

    async def fail(
        self, job: dict[str, Any], now: datetime, error: dict[str, Any], retry_at: datetime | None
    ) -> str | None: ...

    async def release(self, job: dict[str, Any], now: datetime) -> bool: ...

    async def note_lost_lease(self, job: dict[str, Any], error: dict[str, Any]) -> None: ...


class Permanent(Exception):
    """A failure that retrying cannot fix: the job goes `dead` at once."""


@dataclass(frozen=True)
class Backoff:
    """Delay before attempt n+1: base·2^(n-1), capped, times 1 + jitter·U[0,1).

    With jitter < 1 every attempt waits longer than the one before, and workers
    that failed together do not retry in step.
    """

    base: float = 5.0
    cap: float = 3600.0
    jitter: float = 0.5
    rng: random.Random = field(default_factory=random.Random, compare=False)

    def delay(self, attempt: int) -> float:
        growth: float = 2 ** max(0, attempt - 1)
        return min(self.cap, self.base * growth) * (1 + self.jitter * self.rng.random())


def error_entry(
    job: dict[str, Any],
    exc: BaseException | None,
    now: datetime,
    *,
    kind: str | None = None,
    message: str | None = None,
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "attempt": job["attempts"],
        "at": now,
        "workerId": job.get("workerId"),
        "type": kind or type(exc).__name__,
        "message": message or str(exc)[:2000],
    }
    if isinstance(exc, TandemError):
        entry["code"] = exc.code
    elif exc is not None and not isinstance(exc, Permanent):
        entry["traceback"] = "".join(traceback.format_exception(exc))[-4000:]
    return entry


class Runner:
    def __init__(
        self,
        jobs: Jobs,
        handlers: dict[str, Handler],
        *,
        worker_id: str,
        lease: float,
        backoff: Backoff | None = None,
        poll: float = 1.0,
        clock: Callable[[], datetime] = utcnow,
    ):
        self.jobs = jobs
        self.handlers = handlers
        self.worker_id = worker_id
        self.lease = lease
        self.backoff = backoff or Backoff()
        self.poll = poll
        self.clock = clock
        self.current: dict[str, Any] | None = None
        self.processed = 0
        self.failed = 0
        self._task: asyncio.Task[Any] | None = None
        self._why_cancelled: str | None = None

    async def run(self, stop: asyncio.Event) -> None:
        """Claim and run jobs one at a time until `stop` is set."""
        while not stop.is_set():
            try:
                worked = await self.run_once()
            except Exception:
                log.exception("worker: claiming a job failed", extra={"workerId": self.worker_id})
                worked = False
            if not worked:
                try:
                    async with asyncio.timeout(self.poll):  # not wait_for: it can swallow a cancel
                        await stop.wait()
                except TimeoutError:
                    pass

    async def run_once(self) -> bool:
        """Claim one due job and run it; False when there was none."""
        now = self.clock()
        claimed = await self.jobs.claim(self.worker_id, now, self.lease, list(self.handlers))
        if claimed is None:
            return False
        before, job = claimed
        if before["status"] == "running" and not await self._rescued(before, job, now):
            return True
        await self._execute(job)
        return True

    async def release(self) -> None:
        """Graceful shutdown: stop the running handler and give its job back unfinished."""
        if self._task is not None and not self._task.done():
            self._why_cancelled = "release"
            self._task.cancel()

    async def _rescued(self, before: dict[str, Any], job: dict[str, Any], now: datetime) -> bool:
        """A job taken over from a worker whose lease ran out: keep that attempt's error; go on if attempts remain."""
        message = f"lease expired: worker {before.get('workerId')} stopped renewing it (crashed or stalled)"
        entry = error_entry(before, None, now, kind="LeaseExpired", message=message)
        log.warning(
            "worker: reclaimed a job whose lease expired",
            extra={"jobId": job["_id"], "kind": job["kind"], "previousWorker": before.get("workerId")},
        )
        if job["attempts"] > job["maxAttempts"]:
            await self.jobs.fail(job, now, entry, None)
            return False
        await self.jobs.note_lost_lease(job, entry)
        return True

    async def _execute(self, job: dict[str, Any]) -> None:
        started = asyncio.get_running_loop().time()
        extra = {"jobId": job["_id"], "kind": job["kind"], "attempt": job["attempts"], "workerId": self.worker_id}
        log.info("job started", extra=extra)
        handler = self.handlers[job["kind"]]
        self.current, self._why_cancelled = job, None
        self._task = asyncio.create_task(handler(job))
        keeper = asyncio.create_task(self._keep_lease(job))
        try:
            result = await self._task
        except asyncio.CancelledError as exc:
            if self._why_cancelled == "release":
                released = await self.jobs.release(job, self.clock())
                log.info("job released unfinished", extra={**extra, "released": released})
            elif self._why_cancelled == "lost":
                log.warning("job abandoned: another worker holds its lease now", extra=extra)
            elif self._why_cancelled == "expired":
                log.warning("job abandoned: its lease ran out while renewing it failed", extra=extra)
            elif (runner := asyncio.current_task()) is not None and runner.cancelling():
                raise  # this runner itself is cancelled: the job stays leased and is reclaimed later
            else:
                await self._fail(job, exc, extra)  # the handler cancelled itself
        except Exception as exc:  # noqa: BLE001 - every failure is recorded on the job
            await self._fail(job, exc, extra)
        else:
            done = await self.jobs.complete(job, self.clock(), _storable(result))
            self.processed += 1
            log.info(
                "job done",
                extra={**extra, "seconds": round(asyncio.get_running_loop().time() - started, 3), "recorded": done},
            )
        finally:
            keeper.cancel()
            self.current, self._task = None, None

    async def _fail(self, job: dict[str, Any], exc: BaseException, extra: dict[str, Any]) -> None:
        self.failed += 1
        now = self.clock()
        permanent = isinstance(exc, Permanent)
        retry_at = None if permanent else now + timedelta(seconds=self.backoff.delay(job["attempts"]))
        status = await self.jobs.fail(job, now, error_entry(job, exc, now), retry_at)
        level = logging.ERROR if status == "dead" else logging.WARNING
        log.log(
            level,
            "job failed",
            extra={
                **extra,
                "error": str(exc)[:500],
                "status": status,
                "retryAt": retry_at if status == "failed" else None,
            },
        )

    async def _keep_lease(self, job: dict[str, Any]) -> None:
        """Renew every third of the lease; cancel the handler once the lease is lost or has run out.

        `held_until` is when the claim or the last renewal that went through stops holding. While
        renewals fail (MongoDB unreachable, a renewal that hangs) they are tried again, but once the
        clock reaches `held_until` the job may be another worker's: the handler is cancelled as when
        a renewal finds the lease lost.
        """
        interval = max(self.lease / 3, 0.01)
        held_until: datetime = job["leaseUntil"]
        while True:
            await asyncio.sleep(min(interval, _seconds_until(held_until, self.clock())))
            now = self.clock()
            renewed = await self._renew(job, now, held_until) if now < held_until else None
            if renewed:
                held_until = now + timedelta(seconds=self.lease)
                continue
            if renewed is None and self.clock() < held_until:
                continue  # the renewal failed, but the lease still holds: try again
            if self._task is not None:
                self._why_cancelled = "lost" if renewed is False else "expired"
                self._task.cancel()
            return

    async def _renew(self, job: dict[str, Any], now: datetime, held_until: datetime) -> bool | None:
        """True: renewed; False: another worker holds the job; None: the renewal failed (tried again)."""
        try:
            async with asyncio.timeout(_seconds_until(held_until, now)):  # one still pending then is too late
                return bool(await self.jobs.renew(job, now, self.lease))
        except Exception:
            log.exception("worker: renewing a lease failed", extra={"jobId": job["_id"], "heldUntil": held_until})
            return None


def _seconds_until(moment: datetime, now: datetime) -> float:
    return max(0.0, (moment - now).total_seconds())


def _storable(result: Any) -> Any:
    return result if result is None or isinstance(result, (dict, list, str, int, float, bool)) else str(result)
