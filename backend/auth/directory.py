"""Who has this email? The member lookup behind the `addMember` action.

Dev mode answers locally with the dev user id (`backend.auth.dev`), so a person
added by email before ever signing in gets the id they will sign in with.
Supabase mode asks the Auth admin API with SUPABASE_SERVICE_KEY, paging
through the users; without that key, adding by email is refused with a
message that says what to configure.
"""

from __future__ import annotations

import httpx
from supabase import AsyncClient, AsyncClientOptions
from supabase_auth.errors import AuthError

from backend.auth.dev import dev_user_id, normalize_email
from backend.errors import NotFound, ServiceUnavailable, ValidationFailed
from backend.settings import Settings

NEEDS_SERVICE_KEY = "adding a member by email needs SUPABASE_SERVICE_KEY and SUPABASE_URL on the server"


class MemberDirectory:
    def __init__(self, settings: Settings, *, per_page: int = 500, max_pages: int = 200, timeout: float = 10.0):
        self._settings = settings
        self._per_page, self._max_pages, self._timeout = per_page, max_pages, timeout
        self._http: httpx.AsyncClient | None = None
        self._client: AsyncClient | None = None

    @classmethod
    def local(cls) -> MemberDirectory:
        """A directory that resolves every email locally, as in dev mode."""
        return cls(Settings(auth_mode="dev"))

    async def resolve_email(self, email: str) -> dict[str, str]:
        """`{"id", "email"}` of the user with this email; `NotFound` if there is none."""
        email = normalize_email(email, "payload.email")  # addMember's field
        if self._settings.dev:
            return {"id": dev_user_id(email), "email": email}
        user_id = await self._find(email)
        if user_id is None:
            raise NotFound("no user with that email")
        return {"id": user_id, "email": email}

    async def _find(self, email: str) -> str | None:
        admin = self._supabase().auth.admin
        for page in range(1, self._max_pages + 1):
            try:
                users = await admin.list_users(page=page, per_page=self._per_page)
            except (AuthError, httpx.HTTPError, ValueError):
                raise ServiceUnavailable("The user directory (Supabase Auth) did not answer.") from None
            for user in users:
                if (user.email or "").lower() == email:
                    return user.id
            if not users:
                break
        return None

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
