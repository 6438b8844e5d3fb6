"""An invited member signs in: their invitation marks go, as a normal versioned change.

A person added by email before they had an account carries `invitedAt` and
`invitedBy` in their member entry (backend/auth/directory.py). The first
authenticated request a process sees from that user (`backend.api.auth.principal`,
every REST route) removes both from every collaboration they are a member of:
each is one versioned write with its audit entry (action `acceptInvitation`,
actor the user), so every subscriber gets a `collaboration_updated` that
removes `members.N.invitedAt` and `members.N.invitedBy`.

Cheap: the look-up is one query on the memberIds index, and a per-process
cache remembers the users checked in the last `recheck_after` seconds
(10 minutes; at most `cache_size` users), so a signed-in user costs a dict
look-up per request. A failure to clear is logged and retried on a later
request; it never fails the request.
"""

from __future__ import annotations

import copy
import logging
import time
from collections import OrderedDict
from typing import Any, Callable

from backend.clock import utcnow
from backend.domain.diff import update_for
from backend.ids import new_id

log = logging.getLogger(__name__)

ACTION = "acceptInvitation"  # the name in lastAction, the audit and collaboration_updated events
MAX_RETRIES = 8


class Invitations:
    def __init__(self, store: Any, *, clock: Callable[[], Any] = utcnow, cache_size: int = 10_000,
                 recheck_after: float = 600.0, monotonic: Callable[[], float] = time.monotonic):
        self._store, self._clock, self._monotonic = store, clock, monotonic
        self._cache_size, self._recheck_after = cache_size, recheck_after
        self._checked: OrderedDict[str, float] = OrderedDict()

    async def seen(self, user_id: str) -> None:
        """`user_id` is signed in: clear their invitations, unless this process did so lately."""
        now = self._monotonic()
        checked_at = self._checked.get(user_id)
        if checked_at is not None and now - checked_at < self._recheck_after:
            return
        try:
            for collaboration_id in await self._store.collaborations.invited(user_id):
                await self.accept(collaboration_id, user_id)
        except Exception:  # noqa: BLE001 - the request goes on; a later one tries again
            log.warning("could not clear the invitations of %s", user_id, exc_info=True)
            return
        self._checked[user_id] = now
        self._checked.move_to_end(user_id)
        while len(self._checked) > self._cache_size:
            self._checked.popitem(last=False)

    async def accept(self, collaboration_id: str, user_id: str) -> bool:
        """Remove `invitedAt`/`invitedBy` from `user_id`'s entry; False if there was nothing to remove."""
        for _ in range(MAX_RETRIES):
            doc = await self._store.collaborations.get(collaboration_id)
            index = _invited_entry(doc, user_id)
            if doc is None or index is None:
                return False
            now = self._clock()
            new_doc = copy.deepcopy(doc)
            entry = new_doc["members"][index]
            entry.pop("invitedAt", None)
            entry.pop("invitedBy", None)
            actor = {"type": "user", "id": user_id}
            new_doc.update(version=doc["version"] + 1, updatedAt=now,
                           lastAction={"name": ACTION, "actor": actor, "at": now})
            audit = {"_id": new_id("aud"), "collaborationId": collaboration_id, "version": doc["version"] + 1,
                     "versioned": True, "actor": actor, "action": ACTION, "payload": {}, "at": now}
            if await self._store.collaborations.apply(collaboration_id, doc["version"], new_doc,
                                                      update_for(doc, new_doc), audit):
                return True
        return False


def _invited_entry(doc: dict[str, Any] | None, user_id: str) -> int | None:
    for index, member in enumerate((doc or {}).get("members", [])):
        if member.get("userId") == user_id:
            return index if "invitedAt" in member else None
    return None
