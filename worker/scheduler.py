"""APScheduler, used only to enqueue: it never runs work itself.

Each firing enqueues a job with a deterministic unique key, so however many
workers run their schedulers, one job exists per period:

    checkin:2026-11-23            CHECKIN_CRON in CHECKIN_TZ; the day is CHECKIN_TZ's
    approvals.expire:2026-11-23T14  hourly (UTC hour)
    cleanup:2026-11-23            daily

A worker that is down when a cron time passes does not catch up on start;
`tandem checkin --now` runs a check-in by hand.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any, Callable
from zoneinfo import ZoneInfo

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger

from backend.clock import utcnow
from backend.settings import Settings
from worker.handlers import CHECKIN, CLEANUP, EXPIRE

log = logging.getLogger("tandem.scheduler")


def checkin_day(now: datetime, tz: str) -> str:
    return now.astimezone(ZoneInfo(tz)).date().isoformat()


class Scheduler:
    def __init__(self, store: Any, settings: Settings, clock: Callable[[], datetime] = utcnow):
        self.store = store
        self.settings = settings
        self.clock = clock
        self._aps: AsyncIOScheduler | None = None

    async def enqueue_checkin(self) -> tuple[dict[str, Any], bool]:
        day = checkin_day(self.clock(), self.settings.checkin_tz)
        return await self._enqueue(CHECKIN, f"checkin:{day}", {"day": day, "trigger": "schedule"})

    async def enqueue_expiry(self) -> tuple[dict[str, Any], bool]:
        hour = self.clock().astimezone(timezone.utc).strftime("%Y-%m-%dT%H")
        return await self._enqueue(EXPIRE, f"{EXPIRE}:{hour}", {})

    async def enqueue_cleanup(self) -> tuple[dict[str, Any], bool]:
        day = checkin_day(self.clock(), self.settings.checkin_tz)
        return await self._enqueue(CLEANUP, f"{CLEANUP}:{day}", {})

    async def _enqueue(self, kind: str, key: str, payload: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        job, created = await self.store.jobs.enqueue(kind, payload, now=self.clock(), unique_key=key,
                                                     max_attempts=self.settings.job_max_attempts)
        log.info("scheduled job enqueued" if created else "scheduled job already enqueued",
                 extra={"kind": kind, "uniqueKey": key, "jobId": job["_id"]})
        return job, created

    def start(self) -> None:
        tz = ZoneInfo(self.settings.checkin_tz)
        aps = AsyncIOScheduler(timezone=tz)
        options = {"coalesce": True, "max_instances": 1, "misfire_grace_time": 3600}
        aps.add_job(self.enqueue_checkin, CronTrigger.from_crontab(self.settings.checkin_cron, timezone=tz),
                    id=CHECKIN, name="enqueue the nightly check-in", **options)
        aps.add_job(self.enqueue_expiry, CronTrigger(minute=7, timezone=timezone.utc), id=EXPIRE,
                    name="enqueue approval expiry", **options)
        aps.add_job(self.enqueue_cleanup, CronTrigger(hour=4, minute=17, timezone=tz), id=CLEANUP,
                    name="enqueue the daily cleanup", **options)
        aps.start()
        self._aps = aps
        log.info("scheduler started", extra={"next": {k: str(v) for k, v in self.next_runs().items()}})

    def next_runs(self) -> dict[str, datetime | None]:
        if self._aps is None:
            return {}
        return {job.id: job.next_run_time for job in self._aps.get_jobs()}

    def shutdown(self) -> None:
        if self._aps is not None:
            self._aps.shutdown(wait=False)
            self._aps = None
