"""The job kinds the worker runs, each an idempotent handler.

checkin           the AI check-in of a day (resumes a partly done run); in batch mode it
                  submits the Groq batch and enqueues the first poll
checkin.poll      look at a check-in's batch once: enqueue the next poll, or collect the
                  answers, ask the rest synchronously and act
approvals.expire  mark pending approvals past their expiresAt as expired, finish
                  approvals whose carrying-out was interrupted, and run the rule
                  follow-ups a crash left unrun, and re-poll a waiting check-in batch whose
                  poll job is dead or missing (the hourly recovery)
cleanup           delete finished jobs and silent workers older than JOB_RETENTION
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Callable

from backend.ai.provider import Provider
from backend.clock import utcnow
from backend.deciding import ApprovalService
from worker.checkin import Checkin
from worker.checkin_batch import POLL
from worker.queue import Handler

if TYPE_CHECKING:
    from backend.runtime import Runtime

CHECKIN, CHECKIN_POLL, EXPIRE, CLEANUP = "checkin", POLL, "approvals.expire", "cleanup"


def build(runtime: Runtime, provider: Provider, clock: Callable[[], datetime] = utcnow) -> dict[str, Handler]:
    store, settings = runtime.store, runtime.settings
    checkin = Checkin(store, runtime.engine, settings, provider, clock)
    approvals = ApprovalService(store, runtime.engine, clock)

    async def expire(job: dict[str, Any]) -> dict[str, Any]:
        done: dict[str, Any] = {
            "expired": await approvals.expire_due(),
            "recovered": await approvals.recover_interrupted(),
        }
        if followups := await runtime.engine.recover_followups():  # only when there were any
            done["followups"] = followups
        if repolled := await checkin.repoll_stalled():  # a batch run whose poll was lost
            done["checkinRepolled"] = repolled
        return done

    async def cleanup(job: dict[str, Any]) -> dict[str, Any]:
        before = clock() - timedelta(seconds=settings.job_retention)
        return {"jobs": await store.jobs.cleanup(before), "workers": await store.workers.prune(before)}

    return {CHECKIN: checkin.run_job, CHECKIN_POLL: checkin.poll_job, EXPIRE: expire, CLEANUP: cleanup}
