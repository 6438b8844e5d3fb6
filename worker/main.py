"""The worker process: the job runner, the scheduler and a heartbeat.

`tandem worker` runs one on MONGODB_URI until SIGTERM/SIGINT; then it stops
claiming, lets the running job finish for up to `grace` seconds, and otherwise
cancels it and releases it (queued again, the attempt not counted) so another
worker takes it at once. `tandem dev` runs the same `Worker` inside the API
process on the embedded store (`start_in_process` / `stop_in_process`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import signal
import socket
from datetime import datetime
from typing import TYPE_CHECKING, Any, Callable

from backend.ai import make_provider, shared_provider
from backend.ai.provider import Provider
from backend.clock import utcnow
from backend.runtime import Runtime
from backend.settings import Settings
from worker import handlers
from worker.queue import Backoff, Runner
from worker.scheduler import Scheduler

if TYPE_CHECKING:
    from starlette.applications import Starlette  # the in-process worker's hooks: types only

log = logging.getLogger("tandem.worker")

EMBEDDED_REFUSAL = (
    "tandem {command} needs MONGODB_URI. The embedded store lives inside one process, so a separate "
    "worker (or jobs command) would see an empty store of its own. `tandem dev` runs the worker inside "
    "its API process; there, use POST /api/dev/checkin. Set MONGODB_URI to run workers of their own."
)


def new_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(2)}"


class Worker:
    def __init__(
        self,
        runtime: Runtime,
        provider: Provider,
        *,
        worker_id: str | None = None,
        lease: float | None = None,
        backoff: Backoff | None = None,
        poll: float = 1.0,
        heartbeat: float | None = None,
        schedule: bool = True,
        clock: Callable[[], datetime] = utcnow,
    ):
        settings = runtime.settings
        self.runtime = runtime
        self.worker_id = worker_id or new_worker_id()
        self.clock = clock
        self.runner = Runner(
            runtime.store.jobs,
            handlers.build(runtime, provider, clock),
            worker_id=self.worker_id,
            lease=lease or settings.job_lease,
            poll=poll,
            clock=clock,
            backoff=backoff or Backoff(base=settings.job_backoff, cap=settings.job_backoff_max),
        )
        self.scheduler = Scheduler(runtime.store, settings, clock) if schedule else None
        self.heartbeat = heartbeat or max(1.0, min(10.0, self.runner.lease / 2))
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []

    async def start(self) -> None:
        self._tasks = [asyncio.create_task(self.runner.run(self._stop)), asyncio.create_task(self._beat_forever())]
        if self.scheduler is not None:
            if not self.runtime.store.embedded:
                try:
                    await self.scheduler.catch_up()
                except Exception:
                    log.exception("worker: catching up on a missed check-in failed", extra={"workerId": self.worker_id})
            self.scheduler.start()
        log.info(
            "worker started",
            extra={"workerId": self.worker_id, "kinds": sorted(self.runner.handlers), "lease": self.runner.lease},
        )

    async def stop(self, grace: float | None = None) -> None:
        """Stop claiming; give the running job `grace` seconds (WORKER_GRACE), then release it unfinished."""
        if grace is None:
            grace = self.runtime.settings.worker_grace
        if self.scheduler is not None:
            self.scheduler.shutdown()
        self._stop.set()
        loop_task, beat_task = self._tasks or (None, None)
        if loop_task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(loop_task), grace)
            except asyncio.TimeoutError:
                await self.runner.release()
                await loop_task
        if beat_task is not None:
            beat_task.cancel()
        await self._beat("stopped")
        log.info("worker stopped", extra={"workerId": self.worker_id, "processed": self.runner.processed})

    async def _beat_forever(self) -> None:
        while True:
            try:
                await self._beat("running")
            except Exception:
                log.exception("worker: heartbeat failed", extra={"workerId": self.worker_id})
            await asyncio.sleep(self.heartbeat)

    async def _beat(self, status: str) -> None:
        job = self.runner.current
        await self.runtime.store.workers.beat(
            self.worker_id,
            self.clock(),
            {
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "status": status,
                "currentJob": {"id": job["_id"], "kind": job["kind"]} if job else None,
                "processed": self.runner.processed,
                "failed": self.runner.failed,
            },
        )


async def run_worker(settings: Settings, grace: float | None = None) -> int:
    """`tandem worker`: run until SIGTERM or SIGINT."""
    runtime = await Runtime.open(settings)
    provider = make_provider(settings)
    try:
        return await run_until_signalled(Worker(runtime, provider), grace)
    finally:
        await provider.aclose()
        await runtime.close()


async def run_until_signalled(worker: Worker, grace: float | None = None) -> int:
    """Start `worker`, wait for SIGTERM or SIGINT, then stop it with `grace` seconds (default WORKER_GRACE)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = (signal.SIGTERM, signal.SIGINT)
    for sig in signals:
        loop.add_signal_handler(sig, stop.set)
    try:
        await worker.start()
        await stop.wait()
        if grace is None:
            grace = worker.runtime.settings.worker_grace
        log.info("worker: signal received, stopping", extra={"workerId": worker.worker_id, "grace": grace})
        await worker.stop(grace)
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)
    return 0


# -- inside `tandem dev` ----------------------------------------------------------------------------


async def start_in_process(runtime: Runtime, app: Starlette | None = None) -> None:
    worker = Worker(runtime, shared_provider(runtime))
    runtime.worker = worker
    await worker.start()


async def stop_in_process(runtime: Runtime, app: Starlette | None = None) -> None:
    worker, runtime.worker = runtime.worker, None
    if worker is not None:
        await worker.stop(grace=3.0)
