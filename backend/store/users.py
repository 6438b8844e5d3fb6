"""Who Tandem has seen, so `addMember` asks Supabase as rarely as possible.

Two collections:

- `users`: `{_id: user id, email, seenAt}`, one per user who made an
  authenticated request, from the verified token (`backend.api.auth.principal`).
  Upserted once per process per user and email (a dict look-up afterwards).
  `addMember` finds these people here, without any call to Supabase.
- `directory_lookups`: `{_id: email, at, userId?, invited?}`, Supabase's answer
  for an email Tandem has never seen, and the claim that throttles the calls:
  at most one call (or pair of calls) per email per LOOKUP_SECONDS (10 minutes)
  across every caller and process. Each call to Supabase for a confirmed
  account makes a magic link that cancels that person's unused one, and each
  invitation sends an email: without the throttle anyone could lock a person
  out of email sign-in, or spam them, by adding and removing their email.

Times here are epoch seconds (floats), the same on MongoDB and the embedded store.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from typing import Any, Callable

from pymongo.errors import DuplicateKeyError

from backend.store.driver import Db

log = logging.getLogger(__name__)

LOOKUP_SECONDS = 600.0  # one directory call per email per this many seconds, whoever asks
CACHE_SIZE = 10_000  # users this process remembers having recorded


class KnownUsers:
    def __init__(self, db: Db, *, clock: Callable[[], float] = time.time, cache_size: int = CACHE_SIZE):
        self._users, self._lookups = db["users"], db["directory_lookups"]
        self._clock, self._cache_size = clock, cache_size
        self._recorded: OrderedDict[str, str] = OrderedDict()  # user id -> the email recorded for them
        self.writes = 0  # upserts this process made (tests read it)

    def now(self) -> float:
        return self._clock()

    async def signed_in(self, user_id: str, email: str | None) -> None:
        """A verified token of `user_id` with `email`: recorded once per process (again if the email
        changed). A store failure is logged; the request goes on and a later one records it."""
        if not email:
            return
        email = email.strip().lower()
        if self._recorded.get(user_id) == email:
            self._recorded.move_to_end(user_id)
            return
        try:
            await self._users.update_one(
                {"_id": user_id}, {"$set": {"email": email, "seenAt": self._clock()}}, upsert=True
            )
        except Exception:
            log.warning("could not record the sign-in of %s", user_id, exc_info=True)
            return
        self.writes += 1
        self._recorded[user_id] = email
        while len(self._recorded) > self._cache_size:
            self._recorded.popitem(last=False)

    async def by_email(self, email: str) -> str | None:
        """The id of the user seen most recently with `email`, or None."""
        docs = await self._users.find({"email": email}).sort("seenAt", -1).limit(1).to_list(length=1)
        return docs[0]["_id"] if docs else None

    async def lookup(self, email: str) -> dict[str, Any] | None:
        return await self._lookups.find_one({"_id": email})

    async def claim(self, email: str, previous: dict[str, Any] | None, now: float) -> bool:
        """Take the right to ask the directory about `email` now; False if another caller took it first."""
        if previous is None:
            try:
                await self._lookups.insert_one({"_id": email, "at": now})
            except DuplicateKeyError:
                return False
            return True
        result = await self._lookups.update_one(
            {"_id": email, "at": previous["at"]}, {"$set": {"at": now}, "$unset": {"userId": "", "invited": ""}}
        )
        return result.modified_count == 1

    async def answered(self, email: str, at: float, user_id: str, invited: bool) -> None:
        await self._lookups.update_one({"_id": email, "at": at}, {"$set": {"userId": user_id, "invited": invited}})

    async def release(self, email: str, at: float) -> None:
        """The call failed (no answer): the next add may ask again at once."""
        try:
            await self._lookups.delete_one({"_id": email, "at": at, "userId": {"$exists": False}})
        except Exception:
            log.warning("could not release the directory claim for an email", exc_info=True)
