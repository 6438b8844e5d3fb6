"""The `jobs` collection: every MongoDB access of the worker's queue.

A job is `{_id: "job_…", kind, payload, status, runAt, attempts, maxAttempts,
leaseUntil, workerId, uniqueKey?, lastError, errors [...], createdAt,
updatedAt, startedAt?, finishedAt?, result?}` with `status` one of

    queued   waiting for `runAt`
    running  claimed by `workerId` until `leaseUntil` (renewed while it runs)
    failed   an attempt failed; it runs again at `runAt` (exponential backoff)
    done     finished
    dead     out of attempts (or a permanent error): kept with every error

Claiming is one atomic `find_one_and_update`; a running job whose lease ran out
is claimed again (at-least-once delivery). Every write about a claimed job is
fenced by `(workerId, attempts)`, so a worker that lost its lease can no longer
complete, fail, renew or release the job.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from backend.ids import new_id
from backend.store.driver import Db

STATUSES = ("queued", "running", "failed", "done", "dead")
FINISHED = ("done", "dead")


class Jobs:
    def __init__(self, db: Db):
        self._coll = db["jobs"]

    async def enqueue(
        self,
        kind: str,
        payload: dict[str, Any] | None = None,
        *,
        now: datetime,
        unique_key: str | None = None,
        run_at: datetime | None = None,
        max_attempts: int = 5,
    ) -> tuple[dict[str, Any], bool]:
        """Insert a queued job; with `unique_key`, at most one job ever has that key.

        Returns (the job, True) when it was inserted, (the existing job, False) when the key was taken.
        """
        job: dict[str, Any] = {
            "_id": new_id("job"),
            "kind": kind,
            "payload": payload or {},
            "status": "queued",
            "runAt": run_at or now,
            "attempts": 0,
            "maxAttempts": max_attempts,
            "leaseUntil": None,
            "workerId": None,
            "lastError": None,
            "errors": [],
            "createdAt": now,
            "updatedAt": now,
        }
        if unique_key is not None:  # absent, not null: the unique index is sparse
            job["uniqueKey"] = unique_key
        try:
            await self._coll.insert_one(job)
        except DuplicateKeyError:
            existing = await self._coll.find_one({"uniqueKey": unique_key})
            if existing is None:  # pragma: no cover - deleted between the two calls
                raise
            return existing, False
        return job, True

    async def claim(
        self, worker_id: str, now: datetime, lease: float, kinds: list[str] | None = None
    ) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """Atomically take the next due job: (the job before, the job as claimed), or None.

        Due means queued/failed with `runAt <= now`, or running with a lease that ran out.
        """
        query: dict[str, Any] = {
            "$or": [
                {"status": {"$in": ["queued", "failed"]}, "runAt": {"$lte": now}},
                {"status": "running", "leaseUntil": {"$lt": now}},
            ]
        }
        if kinds:
            query["kind"] = {"$in": kinds}
        changes = {
            "status": "running",
            "workerId": worker_id,
            "leaseUntil": now + timedelta(seconds=lease),
            "startedAt": now,
            "updatedAt": now,
        }
        before = await self._coll.find_one_and_update(
            query,
            {"$set": changes, "$inc": {"attempts": 1}},
            sort=[("runAt", 1), ("_id", 1)],
            return_document=ReturnDocument.BEFORE,
        )
        if before is None:
            return None
        return before, {**before, **changes, "attempts": before["attempts"] + 1}

    async def renew(self, job: dict[str, Any], now: datetime, lease: float) -> bool:
        """Extend the lease; False when this worker no longer holds the job."""
        outcome = await self._coll.update_one(
            _fence(job), {"$set": {"leaseUntil": now + timedelta(seconds=lease), "updatedAt": now}}
        )
        return outcome.matched_count == 1

    async def complete(self, job: dict[str, Any], now: datetime, result: Any = None) -> bool:
        outcome = await self._coll.update_one(
            _fence(job),
            {"$set": {"status": "done", "finishedAt": now, "updatedAt": now, "leaseUntil": None, "result": result}},
        )
        return outcome.matched_count == 1

    async def fail(
        self, job: dict[str, Any], now: datetime, error: dict[str, Any], retry_at: datetime | None
    ) -> str | None:
        """Record a failed attempt: `failed` (runs again at `retry_at`) or `dead` when
        out of attempts or `retry_at` is None. Returns the new status, None if the lease was lost."""
        dead = retry_at is None or job["attempts"] >= job["maxAttempts"]
        status = "dead" if dead else "failed"
        changes: dict[str, Any] = {"status": status, "lastError": error, "updatedAt": now, "leaseUntil": None}
        if dead:
            changes["finishedAt"] = now
        else:
            changes["runAt"] = retry_at
        outcome = await self._coll.update_one(_fence(job), {"$set": changes, "$push": {"errors": error}})
        return status if outcome.matched_count == 1 else None

    async def release(self, job: dict[str, Any], now: datetime) -> bool:
        """Give a running job back unfinished (graceful shutdown): due at once, the attempt not counted."""
        outcome = await self._coll.update_one(
            _fence(job),
            {
                "$set": {"status": "queued", "runAt": now, "workerId": None, "leaseUntil": None, "updatedAt": now},
                "$inc": {"attempts": -1},
            },
        )
        return outcome.matched_count == 1

    async def note_lost_lease(self, job: dict[str, Any], error: dict[str, Any]) -> None:
        """Keep the error of an attempt whose worker stopped renewing its lease."""
        await self._coll.update_one(_fence(job), {"$push": {"errors": error}, "$set": {"lastError": error}})

    async def get(self, job_id: str) -> dict[str, Any] | None:
        return await self._coll.find_one({"_id": job_id}) if isinstance(job_id, str) else None

    async def by_key(self, unique_key: str) -> dict[str, Any] | None:
        return await self._coll.find_one({"uniqueKey": unique_key})

    async def list(self, status: str | None = None, kind: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        query: dict[str, Any] = {}
        if status:
            query["status"] = status
        if kind:
            query["kind"] = kind
        return await self._coll.find(query).sort("_id", -1).limit(limit).to_list(length=limit)

    async def counts(self) -> dict[str, int]:
        return {status: await self._coll.count_documents({"status": status}) for status in STATUSES}

    async def retry(self, job_id: str, now: datetime) -> dict[str, Any] | None:
        """Run a dead or failed job again now; a dead job gets one more attempt. None if not dead/failed."""
        job = await self.get(job_id)
        if job is None or job["status"] not in ("dead", "failed"):
            return None
        changes = {
            "status": "queued",
            "runAt": now,
            "updatedAt": now,
            "finishedAt": None,
            "maxAttempts": max(job["maxAttempts"], job["attempts"] + 1),
        }
        return await self._coll.find_one_and_update(
            {"_id": job_id, "status": job["status"], "attempts": job["attempts"]},
            {"$set": changes},
            return_document=ReturnDocument.AFTER,
        )

    async def cleanup(self, before: datetime) -> int:
        """Delete finished (done or dead) jobs that finished before `before`."""
        outcome = await self._coll.delete_many({"status": {"$in": list(FINISHED)}, "finishedAt": {"$lt": before}})
        return outcome.deleted_count


def _fence(job: dict[str, Any]) -> dict[str, Any]:
    return {"_id": job["_id"], "status": "running", "workerId": job["workerId"], "attempts": job["attempts"]}
