"""APScheduler, used only to enqueue: it never runs work itself.

Each firing enqueues a job with a deterministic unique key, so however many
workers run their schedulers, one job exists per period:

    checkin:2026-11-23            CHECKIN_CRON in CHECKIN_TZ; the day is CHECKIN_TZ's
    approvals.expire:2026-11-23T14  hourly (UTC hour)
    cleanup:2026-11-23            daily

A worker that starts after a check-in time it missed (every worker was down at
02:00) catches up: on start it enqueues the latest check-in of the last 24 hours
under that day's key, which is a no-op when the check-in ran or is queued. It
does so only on real MongoDB: the embedded store starts empty every time, so
there "missed" would mean "every start". `tandem checkin --now` runs one by hand.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Callable
from zoneinfo import ZoneInfo

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger

from backend.clock import utcnow
from backend.settings import Settings
from worker.handlers import CHECKIN, CLEANUP, EXPIRE

if TYPE_CHECKING:
    from backend.store.store import Store

log = logging.getLogger("tandem.scheduler")


CATCH_UP = timedelta(hours=24)


def checkin_day(now: datetime, tz: str) -> str:
    return now.astimezone(ZoneInfo(tz)).date().isoformat()


def last_fire(trigger: CronTrigger, now: datetime, within: timedelta = CATCH_UP) -> datetime | None:
    """The trigger's latest fire time in (now - within, now], or None. (APScheduler only looks ahead.)"""
    last, at = None, now - within
    for _ in range(int(within.total_seconds() // 60) + 2):  # a cron fires at most once a minute
        at = trigger.get_next_fire_time(last, at if last is None else last + timedelta(seconds=1))
        if at is None or at > now:
            return last
        last = at
    return last


class Scheduler:
    def __init__(self, store: Store, settings: Settings, clock: Callable[[], datetime] = utcnow):
        self.store = store
        self.settings = settings
        self.clock = clock
        self._aps: AsyncIOScheduler | None = None

    async def enqueue_checkin(self) -> tuple[dict[str, Any], bool]:
        day = checkin_day(self.clock(), self.settings.checkin_tz)
        return await self._enqueue(CHECKIN, f"checkin:{day}", {"day": day, "trigger": "schedule"})

    def checkin_trigger(self) -> CronTrigger:
        return CronTrigger.from_crontab(self.settings.checkin_cron, timezone=ZoneInfo(self.settings.checkin_tz))

    async def catch_up(self) -> tuple[dict[str, Any], bool] | None:
        """Enqueue the check-in of the last 24 h if none exists for its day (a no-op when it ran)."""
        fired = last_fire(self.checkin_trigger(), self.clock())
        if fired is None:
            return None
        day = checkin_day(fired, self.settings.checkin_tz)
        job, created = await self._enqueue(CHECKIN, f"checkin:{day}", {"day": day, "trigger": "catch-up"})
        if created:
            log.warning(
                "the check-in of %s was missed (no worker ran at %s): enqueued now",
                day,
                fired.isoformat(),
                extra={"jobId": job["_id"]},
            )
        return job, created

    async def enqueue_expiry(self) -> tuple[dict[str, Any], bool]:
        hour = self.clock().astimezone(timezone.utc).strftime("%Y-%m-%dT%H")
        return await self._enqueue(EXPIRE, f"{EXPIRE}:{hour}", {})

    async def enqueue_cleanup(self) -> tuple[dict[str, Any], bool]:
        day = checkin_day(self.clock(), self.settings.checkin_tz)
        return await self._enqueue(CLEANUP, f"{CLEANUP}:{day}", {})

    async def _enqueue(self, kind: str, key: str, payload: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        job, created = await self.store.jobs.enqueue(
            kind, payload, now=self.clock(), unique_key=key, max_attempts=self.settings.job_max_attempts
        )
        log.info(
            "scheduled job enqueued" if created else "scheduled job already enqueued",
            extra={"kind": kind, "uniqueKey": key, "jobId": job["_id"]},
        )
        return job, created

    def start(self) -> None:
        tz = ZoneInfo(self.settings.checkin_tz)
        aps = AsyncIOScheduler(timezone=tz)
        options = {"coalesce": True, "max_instances": 1, "misfire_grace_time": 3600}
        aps.add_job(
            self.enqueue_checkin, self.checkin_trigger(), id=CHECKIN, name="enqueue the nightly check-in", **options
        )
        aps.add_job(
            self.enqueue_expiry,
            CronTrigger(minute=7, timezone=timezone.utc),
            id=EXPIRE,
            name="enqueue approval expiry",
            **options,
        )
        aps.add_job(
            self.enqueue_cleanup,
            CronTrigger(hour=4, minute=17, timezone=tz),
            id=CLEANUP,
            name="enqueue the daily cleanup",
            **options,
        )
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
