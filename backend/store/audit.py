"""The `audit` collection: one entry per applied action, newest first."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from backend.store.driver import Db


class Audit:
    def __init__(self, db: Db):
        self._coll = db["audit"]

    async def note_followups(self, entry_id: str, followups: list[dict[str, Any]]) -> None:
        """How the follow-ups an action's rules started went (backend/engine.py): they run after
        the entry is written, so they are added to it afterwards, and the entry stops being open."""
        await self._coll.update_one(
            {"_id": entry_id}, {"$set": {"followups": followups}, "$unset": {"followupsOpen": ""}}
        )

    async def open_followups(self, before: datetime, limit: int = 100) -> list[dict[str, Any]]:
        """Entries written at or before `before` whose follow-ups were never noted as run (the process
        stopped after the action's commit): oldest first."""
        query = {"followupsOpen": True, "at": {"$lte": before}}
        return await self._coll.find(query).sort("at", 1).limit(limit).to_list(length=limit)

    async def page(self, collaboration_id: str, *, before: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        query: dict[str, Any] = {"collaborationId": collaboration_id}
        if before is not None:
            query["_id"] = {"$lt": before}
        return await self._coll.find(query).sort("_id", -1).limit(limit).to_list(length=limit)

    async def for_version(self, collaboration_id: str, version: int) -> dict[str, Any] | None:
        return await self._coll.find_one({"collaborationId": collaboration_id, "version": version, "versioned": True})

    async def for_followup(self, key: str) -> dict[str, Any] | None:
        """The entry of the rule follow-up with this key (`<trigger audit id>:<index>`), if it ran."""
        return await self._coll.find_one({"followupKey": key})

    async def for_approval(self, approval_id: str) -> dict[str, Any] | None:
        """The entry of the action an approval carried out, if it ran."""
        return await self._coll.find_one({"approvalId": approval_id})
