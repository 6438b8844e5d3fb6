"""`dev_users`: the people dev mode knows (AUTH_MODE=dev only; Supabase keeps its own users).

Dev login records a sign-in; `addMember` for an email that never signed in
creates the user, as Supabase's invitation does. Ids are the dev user ids
(`backend.auth.dev_tokens.dev_user_id`), so a person invited before signing in keeps
the id they will sign in with.
"""

from __future__ import annotations

from datetime import datetime

from pymongo import ReturnDocument

from backend.store.driver import Db


class DevUsers:
    def __init__(self, db: Db):
        self._coll = db["dev_users"]

    async def signed_in(self, user_id: str, email: str, now: datetime) -> None:
        await self._coll.update_one(
            {"_id": user_id},
            {"$set": {"email": email, "lastSignInAt": now}, "$setOnInsert": {"createdAt": now}},
            upsert=True,
        )

    async def invite(self, user_id: str, email: str, now: datetime) -> bool:
        """Create the user unless they exist, in one atomic call; True if they have never signed in."""
        before = await self._coll.find_one_and_update(
            {"_id": user_id},
            {"$setOnInsert": {"email": email, "createdAt": now}},
            upsert=True,
            return_document=ReturnDocument.BEFORE,
        )
        return before is None or "lastSignInAt" not in before
