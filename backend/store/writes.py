"""Multi-document writes that must land together.

On real MongoDB they run in a transaction (a replica set is required anyway
for change streams). On the embedded store each motor call runs to completion
without yielding to other coroutines, so a sequence of reads and writes with
no other await between them is already atomic with respect to the rest of the
process; no session is used there.

A MongoDB transaction is snapshot-isolated: one that only *reads* a document
does not conflict with another that changes it meanwhile, so "check, then
insert" could still commit after a concurrent change to what it checked.
`fence(db, session, collaboration_id)` closes that gap: every transaction that
checks a collaboration's membership or status, and every one that changes
them, writes the collaboration's fence document (collection `fences`, never
watched), so two such transactions conflict and one is retried, re-reading
what the other committed.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable, TypeVar

T = TypeVar("T")


class Writer:
    def __init__(self, client: Any, embedded: bool):
        self._client = client
        self._embedded = embedded

    async def atomically(self, work: Callable[[Any], Awaitable[T]]) -> T:
        if self._embedded:
            return await work(None)
        async with await self._client.start_session() as session:
            result: list[T] = []

            async def callback(s: Any) -> None:
                result[:] = [await work(s)]

            await session.with_transaction(callback)
            return result[0]


async def fence(db: Any, session: Any, collaboration_id: str) -> None:
    """Write `collaboration_id`'s fence inside the transaction `session` (see the module's docstring).
    On the embedded store (`session` None) the atomic write needs no fence."""
    if session is None:
        return
    await db["fences"].update_one({"_id": collaboration_id}, {"$inc": {"writes": 1}}, upsert=True, session=session)

