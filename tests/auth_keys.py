"""Test helpers for backend.auth: keys, token makers and a real local auth server.

`AuthServer` is a tiny Starlette app on uvicorn, on 127.0.0.1 in a thread. It
plays the Supabase Auth endpoints Tandem calls: the JWKS
(`/auth/v1/.well-known/jwks.json`), the invitation (`POST /auth/v1/invite`)
and the admin link generation (`POST /auth/v1/admin/generate_link`), which
behave as GoTrue's do (internal/api/invite.go, mail.go). Its user directory
is a dict by email, so a test can hold 100,000 users. Tests change what it
serves and read what it saw.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import socket
import threading
import time
import uuid
from typing import Any

import jwt
import pytest
import uvicorn
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from backend.auth import tokens as t
from backend.auth.jwks import UNKNOWN_KEY
from backend.auth.tokens import TokenVerifier
from backend.errors import Unauthenticated
from backend.settings import Settings, load_settings

SECRET = secrets.token_urlsafe(32)  # random per run: a fixed test secret would be one more to copy
SERVICE_KEY = secrets.token_urlsafe(24)  # the fake Supabase's service key, random per run too
DROP = object()  # claims(..., name=DROP) leaves the claim out


def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def public_jwk(private_key: Any, kid: str) -> dict[str, Any]:
    """The public half as a JWK, the way Supabase publishes it."""
    if isinstance(private_key, rsa.RSAPrivateKey):
        data, alg = jwt.algorithms.RSAAlgorithm.to_jwk(private_key.public_key(), as_dict=True), "RS256"
    else:
        data, alg = jwt.algorithms.ECAlgorithm.to_jwk(private_key.public_key(), as_dict=True), "ES256"
    return {**data, "kid": kid, "alg": alg, "use": "sig", "key_ops": ["verify"]}


def public_pem(private_key: Any) -> bytes:
    return private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def claims(issuer: str, **changes: Any) -> dict[str, Any]:
    """Valid Supabase-shaped access-token claims; `changes` override or (DROP) remove claims."""
    now = int(time.time())
    base = {
        "sub": "3f1c0f0e-8a4b-4c1e-9d57-2b1d5e7a9c10",
        "email": "ada@example.com",
        "aud": "authenticated",
        "role": "authenticated",
        "iss": issuer,
        "iat": now,
        "exp": now + 3600,
        "session_id": "s-1",
        "app_metadata": {"provider": "email"},
        "user_metadata": {},
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not DROP}


def sign(payload: dict[str, Any], key: Any, alg: str, kid: str | None = None) -> str:
    return jwt.encode(payload, key, algorithm=alg, headers={"kid": kid} if kid else None)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def forge(header: dict[str, Any], payload: dict[str, Any], hmac_key: bytes | None) -> str:
    """A token with any header, HMAC-SHA256-signed with `hmac_key` (no signature when None)."""
    signing_input = _b64(json.dumps(header).encode()) + "." + _b64(json.dumps(payload).encode())
    signature = b"" if hmac_key is None else hmac.new(hmac_key, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + _b64(signature)


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def gotrue_user(user_id: str, email: str, confirmed: bool = True) -> dict[str, Any]:
    user = {
        "id": user_id,
        "email": email,
        "aud": "authenticated",
        "role": "authenticated",
        "app_metadata": {"provider": "email"},
        "user_metadata": {},
        "created_at": "2026-01-01T00:00:00Z",
    }
    if confirmed:
        user["email_confirmed_at"] = user["confirmed_at"] = "2026-01-02T00:00:00Z"
    return user


class AuthServer:
    def __init__(self) -> None:
        self.keys: list[dict[str, Any]] = []
        self.users: dict[str, dict[str, Any]] = {}  # by email
        self.jwks_status = 200
        self.admin_status = 200
        self.jwks_hits = 0
        self.admin_requests: list[tuple[str, dict[str, str], dict[str, Any]]] = []  # (path, headers, body)
        self.invitations_sent: list[str] = []  # emails an invitation went to
        self.mail_limited = False  # True: invitations hit Supabase's email rate limit (429)
        app = Starlette(
            routes=[
                Route("/auth/v1/.well-known/jwks.json", self._jwks),
                Route("/auth/v1/invite", self._invite, methods=["POST"]),
                Route("/auth/v1/admin/generate_link", self._generate_link, methods=["POST"]),
            ]
        )
        self._server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self.url = "http://127.0.0.1:%d" % self._socket.getsockname()[1]
        self.jwks_url = self.url + "/auth/v1/.well-known/jwks.json"

    def reset(self) -> None:
        self.keys, self.users, self.admin_requests, self.invitations_sent = [], {}, [], []
        self.jwks_status = self.admin_status = 200
        self.jwks_hits = 0
        self.mail_limited = False

    def add_users(self, count: int, confirmed: bool = True) -> None:
        """`count` users, user<i>@example.com, with ids made from i."""
        for i in range(count):
            email = f"user{i}@example.com"
            self.users[email] = gotrue_user(str(uuid.UUID(int=i + 1)), email, confirmed)

    async def _jwks(self, request: Request) -> JSONResponse:
        self.jwks_hits += 1
        return JSONResponse({"keys": self.keys}, status_code=self.jwks_status)

    async def _admin(self, request: Request) -> tuple[dict[str, Any], JSONResponse | None]:
        body = await request.json()
        self.admin_requests.append((request.url.path, dict(request.headers), body))
        if self.admin_status != 200:
            return body, JSONResponse({"code": self.admin_status, "msg": "boom"}, status_code=self.admin_status)
        return body, None

    def _create(self, email: str, confirmed: bool = False) -> dict[str, Any]:
        self.users[email] = gotrue_user(str(uuid.uuid4()), email, confirmed)
        return self.users[email]

    async def _invite(self, request: Request) -> JSONResponse:
        body, failed = await self._admin(request)
        if failed:
            return failed
        email = str(body.get("email", "")).lower()
        user = self.users.get(email)
        if user is not None and user.get("email_confirmed_at"):  # GoTrue: a confirmed user cannot be invited
            return JSONResponse(
                {
                    "code": 422,
                    "error_code": "email_exists",
                    "msg": "A user with this email address has already been registered",
                },
                status_code=422,
            )
        if self.mail_limited:
            return JSONResponse(
                {"code": 429, "error_code": "over_email_send_rate_limit", "msg": "email rate limit exceeded"},
                status_code=429,
            )
        user = user or self._create(email)
        self.invitations_sent.append(email)
        return JSONResponse(user)

    async def _generate_link(self, request: Request) -> JSONResponse:
        body, failed = await self._admin(request)
        if failed:
            return failed
        email = str(body.get("email", "")).lower()
        user = self.users.get(email)
        kind = body.get("type")
        if user is None:  # GoTrue creates the user: an invited one, or signed up for a magic link
            user, kind = self._create(email), ("invite" if kind == "invite" else "signup")
        return JSONResponse(
            {
                **user,
                "action_link": f"{self.url}/auth/v1/verify?token=t&type={kind}",
                "email_otp": "123456",
                "hashed_token": "h" * 56,
                "redirect_to": self.url,
                "verification_type": kind,
            }
        )

    def __enter__(self) -> AuthServer:
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the test auth server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._socket.close()


def closed_port_url() -> str:
    """A loopback URL nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return "http://127.0.0.1:%d/jwks.json" % sock.getsockname()[1]


# -- shared by tests/test_auth.py and tests/test_security_tokens.py (fixtures in tests/conftest.py) ----

RSA, EC, OTHER_RSA, OTHER_EC, ROTATED_RSA = rsa_key(), ec_key(), rsa_key(), ec_key(), rsa_key()
PROJECT_KEYS = (("rsa-1", RSA), ("ec-1", EC))  # what the `server` fixture's JWKS publishes
KNOWN_MESSAGES = {
    t.MALFORMED,
    t.ALG_NOT_ALLOWED,
    t.NO_KEY_ID,
    t.BAD_SIGNATURE,
    t.EXPIRED,
    t.NOT_YET_VALID,
    t.WRONG_AUDIENCE,
    t.WRONG_ISSUER,
    t.INVALID,
    t.WRONG_ROLE,
    t.ANONYMOUS,
    UNKNOWN_KEY,
} | {t.missing_claim(c) for c in ("sub", "exp", "aud", "iss", "role")}


def supabase_settings(server: AuthServer, **overrides: Any) -> Settings:
    values: dict[str, Any] = {"auth_mode": "supabase", "supabase_url": server.url, "supabase_jwt_secret": SECRET}
    values.update(overrides)
    return load_settings({}, **values)


async def refused(verifier: TokenVerifier, token: str) -> str:
    """The stable message `verifier` refuses `token` with (and no library error leaks through)."""
    with pytest.raises(Unauthenticated) as info:
        await verifier.verify(token)
    error = info.value
    assert error.__cause__ is None and (error.__context__ is None or error.__suppress_context__)
    assert error.message in KNOWN_MESSAGES
    return error.message
