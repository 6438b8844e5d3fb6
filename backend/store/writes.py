"""Multi-document writes that must land together.

On real MongoDB they run in a transaction (a replica set is required anyway
for change streams). On the embedded store each motor call runs to completion
without yielding to other coroutines, so a sequence of writes is already
atomic with respect to the rest of the process; no session is used there.
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
