"""The `checkin_reminders` collection: which activities the check-in reminded people of, per day.

One document per (day, collaboration, activity), its `_id` built from the three, so
claiming a reminder is one insert that at most one run wins, on any number of
workers. The check-in claims before it posts: a reminder whose activity was
already claimed that day by another run is not posted (at most one reminder per
activity per day). A run that claimed and then crashed finds its own claim when
its job is delivered again and goes on. Documents expire a week after.
"""

from __future__ import annotations

from datetime import datetime

from pymongo.errors import DuplicateKeyError

from backend.store.driver import Db

KEEP = 7 * 86400  # seconds a claim is kept (TTL index on `at`)


def _key(day: str, collaboration_id: str, activity_id: str) -> str:
    return f"{day}|{collaboration_id}|{activity_id}"


class Reminders:
    def __init__(self, db: Db):
        self._coll = db["checkin_reminders"]

    async def claim(
        self, day: str, collaboration_id: str, activity_ids: list[str], run_id: str, now: datetime
    ) -> list[str]:
        """Claim a reminder about each of `activity_ids` for `run_id`; returns the ids another run
        claimed that day first (then nothing is claimed: what this call inserted is taken back)."""
        inserted: list[str] = []
        taken: list[str] = []
        for activity_id in dict.fromkeys(activity_ids):
            key = _key(day, collaboration_id, activity_id)
            try:
                await self._coll.insert_one(
                    {
                        "_id": key,
                        "day": day,
                        "collaborationId": collaboration_id,
                        "activityId": activity_id,
                        "runId": run_id,
                        "at": now,
                    }
                )
                inserted.append(key)
            except DuplicateKeyError:
                existing = await self._coll.find_one({"_id": key})
                if existing is None or existing.get("runId") != run_id:
                    taken.append(activity_id)
        if taken and inserted:
            await self._coll.delete_many({"_id": {"$in": inserted}})
        return taken

    async def release(self, day: str, collaboration_id: str, activity_ids: list[str], run_id: str) -> None:
        """Give back `run_id`'s claims (its reminder was not posted after all)."""
        keys = [_key(day, collaboration_id, a) for a in activity_ids]
        await self._coll.delete_many({"_id": {"$in": keys}, "runId": run_id})

    async def reminded(self, day: str, collaboration_id: str) -> set[str]:
        """The activities of `collaboration_id` a reminder was claimed for on `day`."""
        docs = await self._coll.find({"day": day, "collaborationId": collaboration_id}).to_list(length=1000)
        return {d["activityId"] for d in docs}
