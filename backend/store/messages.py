"""The `messages` collection, ordered by `_id` (time-sortable)."""

from __future__ import annotations

from typing import Any

from pymongo import ReturnDocument

from backend.store.driver import Db, Session
from backend.store.idempotency import Claim
from backend.store.stream import SEQ
from backend.store.writes import Writer, check_once, insert_audit


class Messages:
    def __init__(self, db: Db, writer: Writer):
        self._db = db
        self._coll = db["messages"]
        self._audit = db["audit"]
        self._collaborations = db["collaborations"]
        self._writer = writer

    async def insert(
        self,
        message: dict[str, Any],
        audit: dict[str, Any],
        *,
        poster: str | None = None,
        idempotency: Claim | None = None,
    ) -> bool:
        """Insert `message` and its audit entry in one atomic write, if its collaboration is still
        active and (when `poster` is a user id) `poster` still one of its members; False, and
        nothing written, if not. The check is inside the write, so a message can never land after
        its author's removal or the archiving has committed: on MongoDB the check is a write of the
        collaboration (the bump of its stream seq, backend/store/stream.py), which the removal
        writes too, so the two conflict and one retries; on the embedded store nothing between
        the check and the inserts yields to another coroutine. The message stores the seq the
        bump gave it. AlreadyApplied if the audit entry's once-key (writes.py) is taken.
        `idempotency` (a Claim, idempotency.py): its answer is written in the same step, after the
        same check, or nothing is."""
        collaboration_id = message["collaborationId"]
        query: dict[str, Any] = {"_id": collaboration_id, "status": "active"}
        if poster is not None:
            query["memberIds"] = poster

        async def write(session: Session | None) -> bool:
            # the reads that may refuse first: the embedded store cannot undo the bump
            if idempotency is not None:
                await idempotency.check(session)
            await check_once(self._audit, session, audit)
            head = await self._collaborations.find_one_and_update(
                query, {"$inc": {SEQ: 1}}, {SEQ: 1}, return_document=ReturnDocument.AFTER, session=session
            )
            if head is None:
                return False
            message[SEQ] = head[SEQ]
            await self._coll.insert_one(message, session=session)
            await insert_audit(self._audit, session, audit)
            if idempotency is not None:
                await idempotency.commit(session)
            return True

        return await self._writer.atomically(write)

    async def get(self, collaboration_id: str, message_id: str) -> dict[str, Any] | None:
        """One message of one collaboration (None if it is not there, or belongs to another)."""
        return await self._coll.find_one({"_id": message_id, "collaborationId": collaboration_id})

    async def page(
        self, collaboration_id: str, *, after: str | None = None, before: str | None = None, limit: int = 50
    ) -> list[dict[str, Any]]:
        """Messages in `_id` order: after `after`, or the latest before `before` (or the latest)."""
        query: dict[str, Any] = {"collaborationId": collaboration_id}
        if after is not None:
            query["_id"] = {"$gt": after}
            if before is not None:
                query["_id"]["$lt"] = before
            return await self._coll.find(query).sort("_id", 1).limit(limit).to_list(length=limit)
        if before is not None:
            query["_id"] = {"$lt": before}
        docs = await self._coll.find(query).sort("_id", -1).limit(limit).to_list(length=limit)
        docs.reverse()
        return docs
