"""Dev login: tokens shaped like Supabase's, signed HS256 with DEV_JWT_SECRET, issuer `tandem-dev`.

Never with SUPABASE_JWT_SECRET: a dev token must be worthless to a server in
supabase mode, whatever secrets the two share (and that mode refuses the
issuer anyway).

A dev user's id is a UUID derived from the lower-cased email (uuid5 in a fixed
namespace), so one email always maps to one id: across restarts, and whether
the user was added to a collaboration by email before ever signing in.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import jwt

from backend.auth.tokens import token_issuer
from backend.errors import NotFound, ValidationFailed
from backend.settings import Settings

# Fixed forever: changing it would give every dev user a new id.
USER_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_DNS, "users.tandem.dev")
_EMAIL = re.compile(r"^[^@\s<>\"]+@[^@\s<>\".]+(\.[^@\s<>\".]+)+$")
MAX_EMAIL_CHARS = 254


def normalize_email(email: object, path: str = "email") -> str:
    """The email, trimmed and lower-cased; `ValidationFailed` at `path` if it is not one."""
    if not isinstance(email, str):
        raise ValidationFailed.at(path, "must be an email address")
    email = email.strip().lower()
    if len(email) > MAX_EMAIL_CHARS or not _EMAIL.match(email):
        raise ValidationFailed.at(path, "must be an email address, like ada@example.com")
    return email


def dev_user_id(email: str) -> str:
    return str(uuid.uuid5(USER_NAMESPACE, normalize_email(email)))


def issue_dev_token(settings: Settings, email: object) -> dict[str, Any]:
    """`{"access_token", "token_type", "expires_in", "user": {"id", "email"}}`; dev mode only."""
    if not settings.dev:
        raise NotFound()
    if not settings.dev_jwt_secret:
        raise RuntimeError("dev tokens need DEV_JWT_SECRET; load_settings() makes one in dev mode")
    email = normalize_email(email)
    user = {"id": dev_user_id(email), "email": email}
    now = int(time.time())
    claims = {
        "sub": user["id"],
        "email": email,
        "aud": settings.jwt_audience,
        "role": "authenticated",
        "iss": token_issuer(settings),
        "iat": now,
        "exp": now + settings.dev_token_ttl,
        "session_id": str(uuid.uuid4()),
        "aal": "aal1",
        "is_anonymous": False,
        "app_metadata": {"provider": "email", "providers": ["email"]},
        "user_metadata": {},
    }
    token = jwt.encode(claims, settings.dev_jwt_secret, algorithm="HS256")
    return {"access_token": token, "token_type": "bearer", "expires_in": settings.dev_token_ttl, "user": user}
