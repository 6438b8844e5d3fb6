"""The `checkin_runs` collection: one document per AI check-in run.

A scheduled run's `_id` is derived from its job's unique key
(`checkin:2026-11-23` → `run_checkin_2026-11-23`), so however often its job is
delivered there is one run per day; a manual run gets a fresh id. The run keeps
one check per collaboration (its status, the model's screened answer, each
proposal's outcome) and the Groq batch it submitted, if any, so a retry resumes
the collaborations that have not succeeded yet and never submits a second batch.
"""

from __future__ import annotations

from typing import Any

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from backend.store.driver import Db


class CheckinRuns:
    def __init__(self, db: Db):
        self._coll = db["checkin_runs"]

    async def open(self, run: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """Insert `run`, or return the stored run with the same `_id`: (run, created)."""
        try:
            await self._coll.insert_one(run)
        except DuplicateKeyError:
            existing = await self._coll.find_one({"_id": run["_id"]})
            if existing is None:  # pragma: no cover - deleted between the two calls
                raise
            return existing, False
        return run, True

    async def get(self, run_id: str) -> dict[str, Any] | None:
        return await self._coll.find_one({"_id": run_id})

    async def set_check(self, run_id: str, index: int, check: dict[str, Any]) -> None:
        """Store one collaboration's check (each is written by the one task that handles it)."""
        await self._coll.update_one({"_id": run_id}, {"$set": {f"checks.{index}": check}})

    async def update(self, run_id: str, changes: dict[str, Any]) -> dict[str, Any] | None:
        return await self._coll.find_one_and_update(
            {"_id": run_id}, {"$set": changes}, return_document=ReturnDocument.AFTER
        )

    async def for_day(self, day: str) -> list[dict[str, Any]]:
        return await self._coll.find({"day": day}).sort("_id", 1).to_list(length=100)

    async def recent(self, limit: int = 20) -> list[dict[str, Any]]:
        return await self._coll.find({}).sort("startedAt", -1).limit(limit).to_list(length=limit)
