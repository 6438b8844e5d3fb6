"""Multi-document writes that must land together.

On real MongoDB they run in a transaction (a replica set is required anyway
for change streams). On the embedded store each motor call runs to completion
without yielding to other coroutines, so a sequence of reads and writes with
no other await between them is already atomic with respect to the rest of the
process; no session is used there.

A MongoDB transaction is snapshot-isolated: one that only *reads* a document
does not conflict with another that changes it meanwhile, so "check, then
insert" could still commit after a concurrent change to what it checked.
Tandem's writes close that gap by writing what they check: a message's
transaction checks the collaboration's status and membership with the write
that bumps the collaboration's stream seq (backend/store/stream.py), and every
change to them writes the collaboration too, so two such transactions conflict
and one is retried, re-reading what the other committed. (This replaced a
separate `fences` document written by both.)
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable, TypeVar

from pymongo.errors import DuplicateKeyError

from backend.store.driver import Client, Collection, Session
from backend.store.failures import AlreadyApplied

T = TypeVar("T")


class Writer:
    def __init__(self, client: Client, embedded: bool):
        self._client = client
        self._embedded = embedded

    async def atomically(self, work: Callable[[Session | None], Awaitable[T]]) -> T:
        """`work(session)` as one atomic write: in a transaction on MongoDB (retried as a whole on a
        transient error), with no session (None) on the embedded store."""
        if self._embedded:
            return await work(None)
        async with await self._client.start_session() as session:
            result: list[T] = []

            async def callback(s: Session) -> None:
                result[:] = [await work(s)]

            await session.with_transaction(callback)
            return result[0]


ONCE_KEYS = ("approvalId", "followupKey")
"""Audit fields naming something that may be applied only once (unique, backend/store/indexes.py)."""


async def check_once(audit_coll: Collection, session: Session | None, entry: dict[str, Any]) -> None:
    """Inside an atomic write, before anything is written: raise AlreadyApplied if an audit entry
    with `entry`'s once-key (an approval carried out, a rule's follow-up) is already there.

    On MongoDB two such transactions that overlap cannot both miss each other: both write the
    same document (the collaboration, at its version or, for a message, its stream seq), so one
    conflicts and is retried, and its retry finds the other's entry. The unique
    index on `followupKey` is a second guard for follow-ups."""
    for key in ONCE_KEYS:
        if entry.get(key) is not None:
            found = await audit_coll.find_one({key: entry[key]}, session=session)
            if found is not None:
                raise AlreadyApplied(found)


async def insert_audit(audit_coll: Collection, session: Session | None, entry: dict[str, Any]) -> None:
    """Insert an audit entry; a duplicate once-key (a transaction that overlapped another) is AlreadyApplied."""
    try:
        await audit_coll.insert_one(entry, session=session)
    except DuplicateKeyError as exc:
        key = next((k for k in ONCE_KEYS if entry.get(k) is not None and k in str(exc)), None)
        if key is None:
            raise
        raise AlreadyApplied(await audit_coll.find_one({key: entry[key]}) or {"_id": None}) from exc
