"""The `idempotency` collection: one record per (user, Idempotency-Key), TTL'd on `expiresAt`.

A request with a key first *claims* it: a `running` record (unique on
`userId` + `key`) with a short lease. A second request with the key meanwhile
finds it running (409 request_in_progress), a repeat after it finished finds
its stored answer (replayed), one with another body finds another fingerprint
(422 idempotency_key_reused).

The answer is stored **with the effect, atomically**: the store's writes that
apply something (collaborations.insert / apply, messages.insert,
approvals.insert / transition) take the `Claim` and, inside
their atomic write (writes.py), check it first (`check`) and write the answer
last (`commit`): on MongoDB in the same transaction, whose conditional update
of the record aborts the whole write if the claim was lost; on the embedded
store in the same step with no await that yields between the check, the effect
and the answer. So a `running` record never sits next to an applied effect,
and a `done` record never lacks one. A request that applied nothing (refused,
or crashed before its write) leaves a running claim: it is released at once
(`release`), or else its lease runs out and the key may run again.

An approve applies twice: its decision (pending → approved, with the answer
"approved, being carried out") and then the action and its outcome
(approvals.record_outcome), which update that answer if the claim still holds
but are written whether or not it does (backend/deciding.py).

MongoDB's TTL monitor removes records after `expiresAt`; the embedded store has
none, so `claim` treats an expired record as absent too.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime, timedelta
from typing import Any, Callable

import msgspec
from pymongo.errors import DuplicateKeyError

from backend.ids import new_id
from backend.store.driver import Collection, Db, Session

KEY = re.compile(r"[A-Za-z0-9_-]{1,128}")
LEASE = timedelta(seconds=60)
"""How long a running claim holds its key: a request that crashed before applying anything frees it then."""
RETRY_AFTER = 1  # seconds a client waits before asking again about a key still running

Render = Callable[[Any], "tuple[int, bytes]"]


class ClaimLost(Exception):
    """The claim was taken over (its lease ran out) before its answer was written: nothing is applied."""


def fingerprint(method: str, path: str, body: bytes) -> str:
    """What a key's first request was: its method, path and JSON body (canonical: key order and
    spacing do not matter; a body that is not JSON counts as its bytes)."""
    try:
        canonical = msgspec.json.encode(msgspec.json.decode(body), order="sorted") if body else b""
    except (msgspec.DecodeError, RecursionError):
        canonical = b"raw:" + body
    digest = hashlib.sha256()
    for part in (method.upper().encode(), path.encode(), canonical):
        digest.update(len(part).to_bytes(8, "big") + part)
    return digest.hexdigest()


class Claim:
    """A key this request holds; `render(outcome)` turns what is about to be applied into its
    answer (status, body bytes), which the store writes with the effect."""

    def __init__(
        self,
        coll: Collection,
        record_id: str,
        claim_id: str,
        ttl: int,
        clock: Callable[[], datetime],
        lease: timedelta = LEASE,
    ):
        self._coll = coll
        self.record_id = record_id
        self.claim_id = claim_id
        self._ttl = ttl
        self._clock = clock
        self.lease = lease
        self.render: Render | None = None
        self.answer: tuple[int, bytes] | None = None  # prepared, then written with the effect
        self.committed = False

    def prepare(self, outcome: Any) -> "Claim":
        """The answer for `outcome`, built before the write that applies it."""
        assert self.render is not None
        self.answer = self.render(outcome)
        return self

    async def check(self, session: Session | None) -> None:
        """First thing inside the atomic write: ClaimLost (and nothing applied) if the claim was taken over."""
        if (
            await self._coll.find_one({"_id": self.record_id, "claimId": self.claim_id}, {"_id": 1}, session=session)
            is None
        ):
            raise ClaimLost(self.record_id)

    async def commit(self, session: Session | None, outcome: Any = None, *, required: bool = True) -> bool:
        """Last thing inside the atomic write: store the answer (prepared, or rendered from `outcome`).
        It is `partial` until the request finishes (`Idempotency.finish`): while its lease lasts a
        repeat is told the request still runs; after (the process stopped), it gets this answer.
        A claim lost meanwhile raises ClaimLost (aborting the write), or with `required=False`
        stores nothing and returns False: for a write that must land anyway (an approval's
        outcome, after its decision already stored an answer) and whose answer only updates that one."""
        if outcome is not None:
            self.prepare(outcome)
        assert self.answer is not None
        status, body = self.answer
        done = await self._coll.update_one(
            {"_id": self.record_id, "claimId": self.claim_id},
            {
                "$set": {
                    "state": "done",
                    "partial": True,
                    "status": status,
                    "body": body,
                    "expiresAt": self._clock() + timedelta(seconds=self._ttl),
                }
            },
            session=session,
        )
        if done.matched_count != 1:
            if not required:
                return False
            raise ClaimLost(self.record_id)
        self.committed = True
        return True


class Stored(msgspec.Struct):
    status: int
    body: bytes


class Reused(msgspec.Struct):
    pass


class Running(msgspec.Struct):
    retry_after: int


class Idempotency:
    def __init__(self, db: Db, ttl: int, clock: Callable[[], datetime]):
        self._coll = db["idempotency"]
        self._ttl = ttl
        self._clock = clock

    async def claim(
        self, user_id: str, key: str, print_: str, lease: timedelta = LEASE
    ) -> Claim | Stored | Reused | Running:
        """Take `key` for `user_id`'s request with fingerprint `print_`, or say why not. The claim
        holds the key for `lease` (a request that takes longer may lose it, and then applies nothing)."""
        for _ in range(8):
            now = self._clock()
            found = await self._coll.find_one({"userId": user_id, "key": key})
            if found is not None and found["expiresAt"] <= now:  # past its TTL: as if it were gone
                await self._coll.delete_one({"_id": found["_id"], "expiresAt": found["expiresAt"]})
                continue
            claim_id = new_id("idc")
            if found is None:
                record: dict[str, Any] = {
                    "_id": new_id("idm"),
                    "userId": user_id,
                    "key": key,
                    "fingerprint": print_,
                    "state": "running",
                    "claimId": claim_id,
                    "leaseUntil": now + lease,
                    "createdAt": now,
                    "expiresAt": now + timedelta(seconds=self._ttl),
                }
                try:
                    await self._coll.insert_one(record)
                except DuplicateKeyError:  # another request took it first: look again
                    continue
                return Claim(self._coll, record["_id"], claim_id, self._ttl, self._clock, lease)
            if found["fingerprint"] != print_:
                return Reused()
            if found.get("leaseUntil") is not None and found["leaseUntil"] > now:
                return Running(RETRY_AFTER)  # running, or applied and still finishing its answer
            if found["state"] == "done":
                return Stored(found["status"], bytes(found["body"]))
            # A running claim whose lease ran out applied nothing (its answer would be there): take it over.
            taken = await self._coll.update_one(
                {"_id": found["_id"], "state": "running", "claimId": found["claimId"]},
                {"$set": {"claimId": claim_id, "leaseUntil": now + lease}},
            )
            if taken.matched_count == 1:
                return Claim(self._coll, found["_id"], claim_id, self._ttl, self._clock, lease)
        return Running(RETRY_AFTER)

    async def release(self, claim: Claim) -> None:
        """Give the key back if this request's claim applied nothing (a no-op once its answer is stored)."""
        await self._coll.delete_one({"_id": claim.record_id, "claimId": claim.claim_id, "state": "running"})

    async def finish(self, claim: Claim, status: int, body: bytes) -> None:
        """The request that applied something is done: its stored answer becomes the one it gave,
        which may hold what it did after its atomic write (a rule's follow-ups, the AI's reply),
        and no longer partial. If the process stops before this, the answer written with the
        effect is the one replayed once the lease has run out."""
        await self._coll.update_one(
            {"_id": claim.record_id, "claimId": claim.claim_id, "state": "done"},
            {"$set": {"status": status, "body": body, "partial": False}, "$unset": {"leaseUntil": ""}},
        )
        claim.answer = (status, body)
