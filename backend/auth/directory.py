"""Who has this email? The look-up behind `addMember`, which invites people without an account.

`MemberDirectory.find_or_invite(email)` answers `Invitee(id, email, invited)`
for any email, so `addMember` answers the same for an email with or without
an account (no account enumeration), in at most two calls to the directory
(no amplification). `invited` says whether an invitation went out; the member
entry does not depend on it (every added member is marked invited).

First, with no call at all (`KnownUsers`, backend/store/users.py): a person who has made an
authenticated request to Tandem is found in the `users` collection; an email
Supabase was asked about in the last 10 minutes (by anyone, on any process)
gets that answer again, and a confirmed account's answer is kept for good.
Only an email never seen, or an invitation older than 10 minutes (asked again:
the invitation email goes again), reaches Supabase, and only one caller at a
time: another add of that email while it is being asked is 503 `unavailable`
(THROTTLED), whatever the email. So add/remove cycles cannot make Supabase
cancel a person's magic link or mail them more than once per 10 minutes.

- Supabase mode (SUPABASE_URL + SUPABASE_SERVICE_KEY, the `supabase` client):
  1. `auth.admin.invite_user_by_email(email)` (`POST /auth/v1/invite`).
     No account: Supabase creates the user and emails the invitation → the
     user's id, `invited=True`. An account that never confirmed (an earlier
     invitation, say) is sent the invitation again → also `invited=True`.
  2a. Only if Supabase answers 422 `email_exists` (a confirmed account):
     `auth.admin.generate_link({"type": "magiclink", "email"})`
     (`POST /auth/v1/admin/generate_link`), which finds the user by exact
     email and returns it without sending any email → `invited=False`.
     Supabase's Auth admin API has no get-user-by-email; its list filter is a
     substring match over email and name, so a page of it may miss the user.
     The price: the magic link it makes replaces an unused magic or recovery
     link of that user, whose earlier email link then stops working.
  2b. Only if Supabase refuses to send the email (429, its email rate limit,
     which would otherwise answer differently for emails without an account):
     `generate_link({"type": "invite", "email"})` creates the user without
     sending anything → `invited=True`, and a warning is logged; the person
     can still sign up with that email and joins as the invited member.
  Without the service key, adding by email is refused with a message that
  says what to configure; Supabase not answering is 503 `unavailable`.
- Dev mode: the `dev_users` collection (one atomic call). A user who never
  signed in with dev login is created → `invited=True`; ids are the dev user
  ids, so an invited person keeps the id they will sign in with.
"""

from __future__ import annotations

import logging
from typing import Callable, Literal

import httpx
import msgspec
from supabase import AsyncClient, AsyncClientOptions
from supabase_auth.errors import AuthApiError, AuthError
from supabase_auth.types import GenerateInviteOrMagiclinkParams

from backend.auth.dev_tokens import dev_user_id, normalize_email
from backend.clock import utcnow
from backend.errors import ServiceUnavailable, ValidationFailed
from backend.settings import Settings
from backend.store.dev_users import DevUsers
from backend.store.users import LOOKUP_SECONDS, KnownUsers

NEEDS_SERVICE_KEY = "adding a member by email needs SUPABASE_SERVICE_KEY and SUPABASE_URL on the server"
UNAVAILABLE = "The user directory (Supabase Auth) did not answer."
THROTTLED = "The user directory is being asked about this email right now; try again in a moment."
log = logging.getLogger(__name__)

RATE_COST = 2  # addMember takes this many tokens of the action rate limit: up to two directory calls


class Invitee(msgspec.Struct, frozen=True):
    id: str
    email: str
    invited: bool  # no account had signed in with this email: invited now (Supabase) / created (dev)


class MemberDirectory:
    def __init__(
        self,
        settings: Settings,
        dev_users: DevUsers | None = None,
        *,
        users: KnownUsers | None = None,
        timeout: float = 10.0,
    ):
        """`dev_users`: the store's `DevUsers` (dev mode needs it). `users`: the people Tandem has
        seen and the directory's answers (backend/store/users.py); without it every add asks Supabase (tests only)."""
        self._settings, self._dev_users, self._users, self._timeout = settings, dev_users, users, timeout
        self._http: httpx.AsyncClient | None = None
        self._client: AsyncClient | None = None
        self.on_added: list[Callable[[str], None]] = []  # called with the user id after each addMember
        self.calls = 0  # directory calls made (each addMember makes at most two)

    def member_added(self, user_id: str) -> None:
        """The engine wrote an addMember for `user_id` (a new invitation mark)."""
        for callback in self.on_added:
            callback(user_id)

    async def find_or_invite(self, email: str) -> Invitee:
        email = normalize_email(email, "payload.email")  # addMember's field
        if self._settings.dev:
            return await self._dev(email)
        if self._users is None:
            return await self._ask_supabase(email)
        known = await self._users.by_email(email)  # signed in to Tandem before: no call at all
        if known is not None:
            return Invitee(known, email, invited=False)
        now = self._users.now()
        answer = await self._users.lookup(email)
        if answer is not None and now - answer["at"] < LOOKUP_SECONDS:
            if answer.get("userId"):  # asked lately, by anyone: the same answer, no call
                return Invitee(answer["userId"], email, invited=bool(answer.get("invited")))
            raise ServiceUnavailable(THROTTLED)  # being asked right now by another add
        if answer is not None and answer.get("userId") and not answer.get("invited"):
            return Invitee(answer["userId"], email, invited=False)  # an account: its id does not change
        if not await self._users.claim(email, answer, now):
            raise ServiceUnavailable(THROTTLED)
        try:
            invitee = await self._ask_supabase(email)
        except BaseException:
            await self._users.release(email, now)
            raise
        await self._users.answered(email, now, invitee.id, invitee.invited)
        return invitee

    async def _ask_supabase(self, email: str) -> Invitee:
        admin = self._supabase().auth.admin
        kind: Literal["invite", "magiclink"]
        try:
            self.calls += 1
            invited = await admin.invite_user_by_email(email)
            return Invitee(_user_id(invited.user), email, invited=True)
        except AuthApiError as exc:
            if _email_limited(exc):
                log.warning(
                    "Supabase did not send the invitation to a new member (its email rate limit): "
                    "the user is created without an email"
                )
                kind = "invite"
            elif _exists(exc):
                kind = "magiclink"
            else:
                raise _refusal(exc) from None
        except (AuthError, httpx.HTTPError, ValueError):
            raise ServiceUnavailable(UNAVAILABLE) from None
        try:
            self.calls += 1
            link = await admin.generate_link(GenerateInviteOrMagiclinkParams(type=kind, email=email))
        except AuthApiError as exc:
            raise _refusal(exc) from None
        except (AuthError, httpx.HTTPError, ValueError):
            raise ServiceUnavailable(UNAVAILABLE) from None
        return Invitee(_user_id(link.user), email, invited=kind == "invite")

    async def signed_in(self, user_id: str, email: str) -> None:
        """Dev login: this user has signed in (an addMember after this finds them, invites no one)."""
        if self._settings.dev and self._dev_users is not None:
            await self._dev_users.signed_in(user_id, email, utcnow())

    async def _dev(self, email: str) -> Invitee:
        user_id = dev_user_id(email)
        if self._dev_users is None:
            raise RuntimeError("MemberDirectory in dev mode needs the store's dev_users")
        return Invitee(user_id, email, invited=await self._dev_users.invite(user_id, email, utcnow()))

    def _supabase(self) -> AsyncClient:
        url, key = self._settings.supabase_url, self._settings.supabase_service_key
        if not (url and key):
            raise ValidationFailed.at("payload.email", NEEDS_SERVICE_KEY)
        if self._client is None:
            self._http = httpx.AsyncClient(timeout=self._timeout)
            options = AsyncClientOptions(httpx_client=self._http, auto_refresh_token=False, persist_session=False)
            self._client = AsyncClient(url, key, options)
        return self._client

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http, self._client = None, None


def _email_limited(exc: AuthApiError) -> bool:
    return exc.status == 429 or exc.code == "over_email_send_rate_limit"


def _exists(exc: AuthApiError) -> bool:
    """Supabase's answer to inviting a confirmed account: 422 `email_exists` (older servers: no code)."""
    return exc.status == 422 and (exc.code == "email_exists" or "already been registered" in (exc.message or ""))


def _refusal(exc: AuthApiError) -> Exception:
    if exc.status in (400, 422) and exc.code in ("email_address_invalid", "validation_failed", None):
        return ValidationFailed.at("payload.email", "The user directory does not accept that email address")
    return ServiceUnavailable(UNAVAILABLE)


def _user_id(user: object) -> str:
    user_id = getattr(user, "id", None)
    if not isinstance(user_id, str) or not user_id:
        raise ServiceUnavailable(UNAVAILABLE)
    return user_id
