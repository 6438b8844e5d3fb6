"""The `approvals` collection: pending proposals and their decisions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo import ReturnDocument


class Approvals:
    def __init__(self, db: Any):
        self._coll = db["approvals"]

    async def insert(self, approval: dict[str, Any]) -> None:
        await self._coll.insert_one(approval)

    async def get(self, approval_id: str) -> dict[str, Any] | None:
        if not isinstance(approval_id, str):
            return None
        return await self._coll.find_one({"_id": approval_id})

    async def for_collaborations(self, collaboration_ids: list[str], status: str | None = None,
                                 limit: int = 200) -> list[dict[str, Any]]:
        query: dict[str, Any] = {"collaborationId": {"$in": collaboration_ids}}
        if status:
            query["status"] = status
        return await self._coll.find(query).sort("_id", -1).limit(limit).to_list(length=limit)

    async def transition(self, approval_id: str, from_status: str, changes: dict[str, Any], *,
                         unexpired_at: datetime | None = None) -> dict[str, Any] | None:
        """Move an approval out of `from_status` atomically; None if it was not in that status
        (or, with `unexpired_at`, if its `expiresAt` is not after that time)."""
        query: dict[str, Any] = {"_id": approval_id, "status": from_status}
        if unexpired_at is not None:
            query["expiresAt"] = {"$gt": unexpired_at}
        return await self._coll.find_one_and_update(query, {"$set": changes}, return_document=ReturnDocument.AFTER)

    async def due_to_expire(self, now: datetime, limit: int = 500) -> list[dict[str, Any]]:
        query = {"status": "pending", "expiresAt": {"$lte": now}}
        return await self._coll.find(query).limit(limit).to_list(length=limit)

    async def claim_interrupted(self, before: datetime, now: datetime) -> dict[str, Any] | None:
        """Atomically take one approval left `approved` with neither result nor error since before
        `before` (its API process stopped while carrying it out); None when there is none."""
        query = {"status": "approved", "decidedAt": {"$lt": before}, "result": {"$exists": False},
                 "error": {"$exists": False}, "recoveredAt": {"$exists": False}}
        return await self._coll.find_one_and_update(query, {"$set": {"recoveredAt": now}},
                                                    return_document=ReturnDocument.AFTER)
