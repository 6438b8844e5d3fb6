"""A member added by email makes their first request: their invitation marks go, as a versioned change.

Every person added by email carries `invitedAt` and `invitedBy` in their member
entry, whether or not they had an account (backend/domain/effects.py), so the
entry tells no member who has one. The first authenticated request a process
sees from that user after the add (`backend.api.auth.principal`, every REST
route) removes both from every collaboration they are a member of: each is one
versioned write with its audit entry (action `acceptInvitation`, actor the
user), so every subscriber gets a `collaboration_updated` that removes
`members.N.invitedAt` and `members.N.invitedBy`.

Cheap: the look-up is one query on the memberIds index, and a per-process
cache remembers the users checked in the last `recheck_after` seconds
(RECHECK_SECONDS, 30; at most `cache_size` users), so a signed-in user costs a
dict look-up per request and one query per 30 seconds. An add on this process
drops the added user from the cache (`forget`, called by the engine after the
write), so their next request here clears the mark; on another process it is
cleared by their first request there after at most RECHECK_SECONDS. A user is
cached only when every clear succeeded or found nothing to clear: a clear that
failed (the collaboration kept changing, the store failed) is logged and tried
again on the next request; it never fails the request.
"""

from __future__ import annotations

import copy
import logging
import time
from collections import OrderedDict
from datetime import datetime
from typing import TYPE_CHECKING, Any, Callable

from backend.clock import utcnow
from backend.domain.diff import set_whole, update_for
from backend.ids import new_id

if TYPE_CHECKING:
    from backend.store.store import Store

log = logging.getLogger(__name__)

ACTION = "acceptInvitation"  # the name in lastAction, the audit and collaboration_updated events
MAX_RETRIES = 8
RECHECK_SECONDS = 30.0  # how long another process may take to clear a mark for a user it has checked lately


class Invitations:
    def __init__(
        self,
        store: Store,
        *,
        clock: Callable[[], datetime] = utcnow,
        cache_size: int = 10_000,
        recheck_after: float = RECHECK_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ):
        self._store, self._clock, self._monotonic = store, clock, monotonic
        self._cache_size, self._recheck_after = cache_size, recheck_after
        self._checked: OrderedDict[str, float] = OrderedDict()
        self._forgotten = 0  # bumped by every forget(): a check that started before one is not cached

    def forget(self, user_id: str) -> None:
        """`user_id` was just added somewhere (a new mark): check them again on their next request."""
        self._checked.pop(user_id, None)
        self._forgotten += 1

    async def seen(self, user_id: str) -> None:
        """`user_id` is signed in: clear their invitation marks, unless this process checked them lately."""
        now = self._monotonic()
        checked_at = self._checked.get(user_id)
        if checked_at is not None and now - checked_at < self._recheck_after:
            return
        forgotten, cleared_all = self._forgotten, True
        try:
            pending = await self._store.collaborations.invited(user_id)
        except Exception:
            log.warning("could not look up the invitations of %s", user_id, exc_info=True)
            return
        for collaboration_id in pending:
            try:
                if await self.accept(collaboration_id, user_id) is None:
                    log.warning(
                        "gave up clearing the invitation of %s in %s (it kept changing); the next request tries again",
                        user_id,
                        collaboration_id,
                    )
                    cleared_all = False
            except Exception:
                log.warning("could not clear the invitation of %s in %s", user_id, collaboration_id, exc_info=True)
                cleared_all = False
        if not cleared_all or forgotten != self._forgotten:  # not done, or a new mark may have come meanwhile
            return
        self._checked[user_id] = now
        self._checked.move_to_end(user_id)
        while len(self._checked) > self._cache_size:
            self._checked.popitem(last=False)

    async def accept(self, collaboration_id: str, user_id: str) -> bool | None:
        """Remove `invitedAt`/`invitedBy` from `user_id`'s entry: True when removed, False if there was
        nothing to remove, None when it gave up after MAX_RETRIES lost races (not cleared)."""
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
            new_doc.update(
                version=doc["version"] + 1, updatedAt=now, lastAction={"name": ACTION, "actor": actor, "at": now}
            )
            audit = {
                "_id": new_id("aud"),
                "collaborationId": collaboration_id,
                "version": doc["version"] + 1,
                "versioned": True,
                "actor": actor,
                "action": ACTION,
                "payload": {},
                "at": now,
            }
            update = set_whole(update_for(doc, new_doc), "lastAction", new_doc["lastAction"])  # one value
            if await self._store.collaborations.apply(collaboration_id, doc["version"], new_doc, update, audit):
                return True
        return None


def _invited_entry(doc: dict[str, Any] | None, user_id: str) -> int | None:
    for index, member in enumerate((doc or {}).get("members", [])):
        if member.get("userId") == user_id:
            return index if "invitedAt" in member else None
    return None
