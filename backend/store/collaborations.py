"""The `collaborations` collection: reads, and versioned writes with their audit entry."""

from __future__ import annotations

from collections import OrderedDict
from datetime import datetime
from typing import Any

from pymongo import ReturnDocument

from backend.errors import DocumentTooLarge
from backend.store.driver import Db, Session
from backend.store.idempotency import Claim
from backend.store.size import bson_size, size_after
from backend.store.stream import SEQ, created_changes, hide, numbered, stored_changes
from backend.store.writes import Writer, check_once, insert_audit
from backend.wire import public

SIZES_KEPT = 10_000
"""How many collaborations' sizes (at one version each) the size check remembers."""


class Collaborations:
    def __init__(self, db: Db, writer: Writer, max_document_bytes: int):
        self._db = db
        self._coll = db["collaborations"]
        self._audit = db["audit"]
        self._writer = writer
        self._cap = max_document_bytes
        # collaboration id -> (version, BSON size): what this process wrote or measured last
        self._sizes: OrderedDict[str, tuple[int, int]] = OrderedDict()

    async def get(self, collaboration_id: str) -> dict[str, Any] | None:
        if not isinstance(collaboration_id, str):
            return None
        return hide(await self._coll.find_one({"_id": collaboration_id}))  # its stream seq: backend/store/stream.py

    async def get_shared(self, collaboration_id: str) -> dict[str, Any] | None:
        """`get`, for a reader that changes nothing in it below the top level (the engine builds
        the new document beside it: diff.build_update, effects). On the embedded store the values
        are the store's own, shared, not copied (`EmbeddedCollection.find_one_shared`); on
        MongoDB it is `get` (every read decodes its own)."""
        if not isinstance(collaboration_id, str):
            return None
        shared = getattr(type(self._coll), "find_one_shared", None)
        if shared is None:
            return await self.get(collaboration_id)
        doc: dict[str, Any] | None = await shared(self._coll, collaboration_id)
        return hide(doc)

    async def for_member(
        self, user_id: str, limit: int = 200, after: tuple[datetime, str] | None = None
    ) -> list[dict[str, Any]]:
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

    def check_size(self, doc: dict[str, Any]) -> int:
        """The size of `doc` (encoded in full); DocumentTooLarge past the cap."""
        return self._refuse_past_cap(bson_size(doc))

    def size_after(self, before: dict[str, Any], update: dict[str, Any]) -> int | None:
        """The size `before` will have once `update` is applied, from `before`'s size (remembered
        for its version, or encoded once) and the values the update sets and removes; None when
        `size.size_after` is unsure (the caller encodes the new document in full)."""
        known = self._sizes.get(before["_id"])
        if known is not None and known[0] == before.get("version"):
            size = known[1]
            self._sizes.move_to_end(before["_id"])
        else:
            size = bson_size(before)
            self._remember(before["_id"], before.get("version"), size)
        return size_after(before, size, update)

    def _refuse_past_cap(self, size: int) -> int:
        if size > self._cap:
            raise DocumentTooLarge(
                f"The collaboration would grow to {size} bytes, past its cap of {self._cap}.",
                {"size": size, "limit": self._cap},
            )
        return size

    def _remember(self, collaboration_id: str, version: Any, size: int) -> None:
        if not isinstance(version, int):
            return
        self._sizes[collaboration_id] = (version, size)
        self._sizes.move_to_end(collaboration_id)
        while len(self._sizes) > SIZES_KEPT:
            self._sizes.popitem(last=False)

    async def insert(self, doc: dict[str, Any], audit: dict[str, Any], *, idempotency: Claim | None = None) -> None:
        """Insert a new collaboration and its audit entry (and `idempotency`'s answer, idempotency.py)."""
        size = self.check_size(doc)  # sizes are the document's as everyone sees it: the seq counter (9 bytes) aside
        audit.update(seq=1, changes=created_changes(public(doc) or {}))
        doc = {**doc, SEQ: 1}  # its creation is the first event of its stream (stream.py)

        async def write(session: Session | None) -> None:
            if idempotency is not None:
                await idempotency.check(session)
            await self._coll.insert_one(doc, session=session)
            await self._audit.insert_one(audit, session=session)
            if idempotency is not None:
                await idempotency.commit(session)

        await self._writer.atomically(write)
        self._remember(doc["_id"], doc.get("version"), size)

    async def apply(
        self,
        collaboration_id: str,
        from_version: int,
        new_doc: dict[str, Any],
        update: dict[str, Any],
        audit: dict[str, Any],
        *,
        before: dict[str, Any] | None = None,
        idempotency: Claim | None = None,
    ) -> bool:
        """Apply `update` if the stored version is still `from_version`; False if it moved on;
        AlreadyApplied, writing nothing, if the audit entry's once-key (writes.py) is taken.
        `idempotency` (a Claim, idempotency.py): its answer is written with the update, or nothing is.

        The size check: with `before` (the document at `from_version` that `update` turns into
        `new_doc`), from its size and what the update changes (`size_after`); else, or when
        that is unsure, by encoding `new_doc`. Either way the same size, refused past the cap."""
        size = self.size_after(before, update) if before is not None else None
        size = self.check_size(new_doc) if size is None else self._refuse_past_cap(size)
        audit["changes"] = stored_changes(update)  # what its event sends, for replay (stream.py)
        numbered_update = numbered(update)  # seq + 1 in the same write

        async def write(session: Session | None) -> bool:
            if idempotency is not None:
                await idempotency.check(session)
            await check_once(self._audit, session, audit)
            outcome = await self._coll.find_one_and_update(
                {"_id": collaboration_id, "version": from_version},
                numbered_update,
                {SEQ: 1},
                return_document=ReturnDocument.AFTER,
                session=session,
            )
            if outcome is None:
                return False
            audit[SEQ] = outcome[SEQ]
            await insert_audit(self._audit, session, audit)
            if idempotency is not None:
                await idempotency.commit(session)
            return True

        written = await self._writer.atomically(write)
        if written:  # the size of the version just written: the next action's check starts from it
            self._remember(collaboration_id, new_doc.get("version"), size)
        return written
