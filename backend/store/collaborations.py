"""The `collaborations` collection: reads, and versioned writes with their audit entry."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import bson
from pymongo import ReturnDocument

from backend.errors import DocumentTooLarge
from backend.store.stream import SEQ, created_changes, hide, numbered, stored_changes
from backend.store.writes import Writer, check_once, insert_audit
from backend.wire import public

class Collaborations:
    def __init__(self, db: Any, writer: Writer, max_document_bytes: int):
        self._db = db
        self._coll = db["collaborations"]
        self._audit = db["audit"]
        self._writer = writer
        self._cap = max_document_bytes

    async def get(self, collaboration_id: str) -> dict[str, Any] | None:
        if not isinstance(collaboration_id, str):
            return None
        return hide(await self._coll.find_one({"_id": collaboration_id}))  # its stream seq: backend/store/stream.py

    async def for_member(self, user_id: str, limit: int = 200,
                         after: tuple[datetime, str] | None = None) -> list[dict[str, Any]]:
        """A member's collaborations, newest activity first; `after` (lastActivityAt, _id) of the
        last one of the previous page continues from there."""
        query: dict[str, Any] = {"memberIds": user_id}
        if after is not None:
            at, last_id = after
            query["$or"] = [{"lastActivityAt": {"$lt": at}}, {"lastActivityAt": at, "_id": {"$lt": last_id}}]
        cursor = self._coll.find(query).sort([("lastActivityAt", -1), ("_id", -1)]).limit(limit)
        return [hide(doc) for doc in await cursor.to_list(length=limit)]

    async def active(self, after_id: str | None = None, limit: int = 500) -> list[dict[str, Any]]:
        query: dict[str, Any] = {"status": "active"}
        if after_id:
            query["_id"] = {"$gt": after_id}
        return [hide(doc) for doc in await self._coll.find(query).sort("_id", 1).limit(limit).to_list(length=limit)]

    async def invited(self, user_id: str) -> list[str]:
        """The collaborations where `user_id`'s member entry still carries an invitation (`invitedAt`);
        the memberIds index finds the candidates."""
        query = {"memberIds": user_id, "members": {"$elemMatch": {"userId": user_id, "invitedAt": {"$exists": True}}}}
        return [doc["_id"] async for doc in self._coll.find(query, {"_id": 1})]

    async def owned_by(self, user_id: str) -> list[str]:
        cursor = self._coll.find({"members": {"$elemMatch": {"userId": user_id, "role": "owner"}}}, {"_id": 1})
        return [doc["_id"] async for doc in cursor]

    def check_size(self, doc: dict[str, Any]) -> None:
        size = len(bson.encode(doc))
        if size > self._cap:
            raise DocumentTooLarge(
                f"The collaboration would grow to {size} bytes, past its cap of {self._cap}.",
                {"size": size, "limit": self._cap},
            )

    async def insert(self, doc: dict[str, Any], audit: dict[str, Any]) -> None:
        doc = {**doc, SEQ: 1}  # its creation is the first event of its stream (stream.py)
        audit.update(seq=1, changes=created_changes(public(hide(dict(doc))) or {}))
        self.check_size(doc)

        async def write(session: Any) -> None:
            await self._coll.insert_one(doc, session=session)
            await self._audit.insert_one(audit, session=session)

        await self._writer.atomically(write)

    async def apply(self, collaboration_id: str, from_version: int, new_doc: dict[str, Any],
                    update: dict[str, Any], audit: dict[str, Any]) -> bool:
        """Apply `update` if the stored version is still `from_version`; False if it moved on;
        AlreadyApplied, writing nothing, if the audit entry's once-key (writes.py) is taken."""
        self.check_size(new_doc)
        audit["changes"] = stored_changes(update)  # what its event sends, for replay (stream.py)
        update = numbered(update)  # seq + 1 in the same write

        async def write(session: Any) -> bool:
            await check_once(self._audit, session, audit)
            outcome = await self._coll.find_one_and_update({"_id": collaboration_id, "version": from_version}, update,
                                                           {SEQ: 1}, return_document=ReturnDocument.AFTER,
                                                           session=session)
            if outcome is None:
                return False
            audit[SEQ] = outcome[SEQ]
            await insert_audit(self._audit, session, audit)
            return True

        return await self._writer.atomically(write)
