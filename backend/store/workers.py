"""The `workers` collection: one heartbeat document per worker process."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from backend.store.driver import Db


class Workers:
    def __init__(self, db: Db):
        self._coll = db["workers"]

    async def beat(self, worker_id: str, now: datetime, info: dict[str, Any]) -> None:
        """Record that `worker_id` is alive now, with what it is doing (`info`)."""
        await self._coll.update_one(
            {"_id": worker_id}, {"$set": {**info, "lastSeen": now}, "$setOnInsert": {"startedAt": now}}, upsert=True
        )

    async def list(self, limit: int = 100) -> list[dict[str, Any]]:
        return await self._coll.find({}).sort("lastSeen", -1).limit(limit).to_list(length=limit)

    async def prune(self, before: datetime) -> int:
        """Forget workers not seen since `before`."""
        outcome = await self._coll.delete_many({"lastSeen": {"$lt": before}})
        return outcome.deleted_count
