"""The `approvals` collection: pending proposals and their decisions."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Awaitable, Callable

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from backend.store.driver import Db, Document, Session
from backend.store.idempotency import Claim
from backend.store.writes import Writer


class Approvals:
    def __init__(self, db: Db, writer: Writer | None = None):
        self._coll = db["approvals"]
        self._writer = writer

    async def _with_answer(
        self, idempotency: Claim | None, write: Callable[[Session | None], Awaitable[Document | None]]
    ) -> Document | None:
        """`write(session)`, with `idempotency`'s answer (a Claim, idempotency.py) written in the same
        atomic write when it returns a document (the answer is rendered from it); else nothing."""
        if idempotency is None:
            return await write(None)
        assert self._writer is not None

        async def both(session: Session | None) -> Document | None:
            await idempotency.check(session)
            doc = await write(session)
            if doc is not None:
                await idempotency.commit(session, doc)
            return doc

        return await self._writer.atomically(both)

    async def insert(self, approval: dict[str, Any], *, idempotency: Claim | None = None) -> dict[str, Any] | None:
        """Insert `approval`; None. A rule's follow-up carries `followupKey` (unique): if an
        approval with that key exists already (the follow-up ran before), nothing is inserted and
        that approval is returned. `idempotency`'s prepared answer is written with it."""
        key = approval.get("followupKey")
        try:
            if idempotency is None:
                await self._coll.insert_one(approval)
            else:
                assert self._writer is not None

                async def write(session: Session | None) -> None:
                    await idempotency.check(session)
                    await self._coll.insert_one(approval, session=session)
                    await idempotency.commit(session)

                await self._writer.atomically(write)
        except DuplicateKeyError:
            if key is None:
                raise
            return await self._coll.find_one({"followupKey": key}) or {"_id": None}
        return None

    async def for_followup(self, key: str) -> dict[str, Any] | None:
        """The approval a rule's follow-up (its key) became, if it did."""
        return await self._coll.find_one({"followupKey": key})

    async def get(self, approval_id: str) -> dict[str, Any] | None:
        if not isinstance(approval_id, str):
            return None
        return await self._coll.find_one({"_id": approval_id})

    async def for_collaborations(
        self, collaboration_ids: list[str], status: str | None = None, limit: int = 200
    ) -> list[dict[str, Any]]:
        query: dict[str, Any] = {"collaborationId": {"$in": collaboration_ids}}
        if status:
            query["status"] = status
        return await self._coll.find(query).sort("_id", -1).limit(limit).to_list(length=limit)

    async def transition(
        self,
        approval_id: str,
        from_status: str,
        changes: dict[str, Any],
        *,
        unexpired_at: datetime | None = None,
        idempotency: Claim | None = None,
    ) -> dict[str, Any] | None:
        """Move an approval out of `from_status` atomically; None if it was not in that status
        (or, with `unexpired_at`, if its `expiresAt` is not after that time). With `idempotency`,
        the answer rendered from the moved approval is written with the move."""
        query: dict[str, Any] = {"_id": approval_id, "status": from_status}
        if unexpired_at is not None:
            query["expiresAt"] = {"$gt": unexpired_at}
        return await self._with_answer(
            idempotency,
            lambda session: self._coll.find_one_and_update(
                query, {"$set": changes}, return_document=ReturnDocument.AFTER, session=session
            ),
        )

    async def record_outcome(
        self, approval_id: str, changes: dict[str, Any], *, idempotency: Claim | None = None
    ) -> dict[str, Any] | None:
        """Store the outcome (`result`, or `status: failed` and `error`) of an approved approval that
        has none yet; None if it has one (another carrying-out recorded it first). With
        `idempotency` (the approve's Claim, whose answer the decision already stored), the answer
        rendered from the approval as it now is (with this outcome, or the one recorded first) is
        written in the same atomic write, if the claim still holds: the outcome is written whether
        or not it does, since the action it records has run."""
        query = {"_id": approval_id, "status": "approved", "result": {"$exists": False}, "error": {"$exists": False}}

        async def write(session: Session | None) -> dict[str, Any] | None:
            doc = await self._coll.find_one_and_update(
                query, {"$set": changes}, return_document=ReturnDocument.AFTER, session=session
            )
            if idempotency is not None:
                current = doc or await self._coll.find_one({"_id": approval_id}, session=session)
                if current is not None:
                    await idempotency.commit(session, current, required=False)
            return doc

        if idempotency is None:
            return await write(None)
        assert self._writer is not None
        return await self._writer.atomically(write)

    async def due_to_expire(self, now: datetime, limit: int = 500) -> list[dict[str, Any]]:
        query = {"status": "pending", "expiresAt": {"$lte": now}}
        return await self._coll.find(query).limit(limit).to_list(length=limit)

    async def claim_interrupted(self, before: datetime, now: datetime, until: datetime) -> dict[str, Any] | None:
        """Atomically take one approval left `approved` with neither result nor error since before
        `before` (its API process stopped while carrying it out) and that no recovery holds now:
        it is held until `until` (`recoveringUntil`). None when there is none. The claim is only a
        lease: the approval counts as recovered once its outcome is stored (`recoveredAt` with it),
        so a recovery that stops half-way leaves it to the next one."""
        query = {
            "status": "approved",
            "decidedAt": {"$lt": before},
            "result": {"$exists": False},
            "error": {"$exists": False},
            "$or": [{"recoveringUntil": {"$exists": False}}, {"recoveringUntil": {"$lte": now}}],
        }
        return await self._coll.find_one_and_update(
            query, {"$set": {"recoveringUntil": until}}, return_document=ReturnDocument.AFTER
        )
