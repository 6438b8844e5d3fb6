"""Threat: a forged or foreign token accepted as a signed-in user's.

Each test is a way to get a token Tandem should refuse, and checks it is refused
with 401 and one stable message (library errors never leak):

- forgery: `alg: none`, a tampered payload, a wrong secret or key, a token from
  another issuer or for another audience, an expired or not-yet-valid one;
- key confusion: an HS256 token using the project's public key (PEM or a JWKS
  entry) as its HMAC secret, an algorithm that does not match the named key;
- not a signed-in user as Supabase issues them: `role` other than
  `authenticated` (the anon and service_role API keys), `is_anonymous: true`
  unless ALLOW_ANONYMOUS=true;
- dev tokens anywhere but dev mode: they are signed with DEV_JWT_SECRET and
  carry issuer `tandem-dev`, which supabase mode never accepts, whatever
  secret they share; dev mode never takes a Supabase token either;
- a secret that appears in the repository (the dev Compose file's, tests',
  docs') refused at start-up outside dev mode, and a scan of the Compose files
  and docs that fails when a new secret-looking value is committed without
  being on that list (backend/committed_secrets.py).

Real keys, a real JWKS server on 127.0.0.1 (tests/auth_keys.py), and the real
API over HTTP for the end-to-end checks.
"""

from __future__ import annotations

import base64
import re
import secrets
import time
from pathlib import Path
from urllib.parse import quote

import pytest

from backend import cli
from backend.auth import TokenVerifier, issue_dev_token
from backend.auth import tokens as t
from backend.auth.jwks import UNKNOWN_KEY
from backend.committed_secrets import COMMITTED_SECRETS
from backend.errors import NotFound
from backend.settings import DEV_ISSUER, SECRET_SETTINGS, SettingsError, load_settings
from backend.settings import test_settings as dev_settings
from tests.auth_keys import (
    DROP,
    EC,
    OTHER_EC,
    OTHER_RSA,
    RSA,
    SECRET,
    claims,
    forge,
    public_pem,
    refused,
    sign,
    supabase_settings,
)
from tests.realtime_support import Client, live_server

ROOT = Path(__file__).resolve().parent.parent

# -- forged, confused, expired and foreign tokens --------------------------------------------------


def _tampered(iss):
    header, _, signature = sign(claims(iss), SECRET, "HS256").split(".")
    other = sign(claims(iss, sub="someone-else"), secrets.token_urlsafe(32), "HS256").split(".")[1]
    return f"{header}.{other}.{signature}"


REFUSALS = [
    ("alg none", lambda iss: forge({"alg": "none", "typ": "JWT"}, claims(iss), None), t.ALG_NOT_ALLOWED),
    ("alg None", lambda iss: forge({"alg": "None"}, claims(iss), None), t.ALG_NOT_ALLOWED),
    ("alg HS512", lambda iss: sign(claims(iss), SECRET * 2, "HS512"), t.ALG_NOT_ALLOWED),
    ("wrong HMAC secret", lambda iss: sign(claims(iss), secrets.token_urlsafe(32), "HS256"), t.BAD_SIGNATURE),
    ("RS256 by another key", lambda iss: sign(claims(iss), OTHER_RSA, "RS256", "rsa-1"), t.BAD_SIGNATURE),
    ("ES256 by another key", lambda iss: sign(claims(iss), OTHER_EC, "ES256", "ec-1"), t.BAD_SIGNATURE),
    (
        "RS256 header, public key as HMAC secret",
        lambda iss: forge({"alg": "RS256", "kid": "rsa-1"}, claims(iss), public_pem(RSA)),
        t.BAD_SIGNATURE,
    ),
    (
        "HS256, public key as HMAC secret",
        lambda iss: forge({"alg": "HS256", "kid": "rsa-1"}, claims(iss), public_pem(RSA)),
        t.BAD_SIGNATURE,
    ),
    ("ES256 header naming an RSA key", lambda iss: sign(claims(iss), EC, "ES256", "rsa-1"), t.ALG_NOT_ALLOWED),
    ("RS256 without kid", lambda iss: sign(claims(iss), RSA, "RS256"), t.NO_KEY_ID),
    ("unknown kid", lambda iss: sign(claims(iss), RSA, "RS256", "nobody"), UNKNOWN_KEY),
    ("expired", lambda iss: sign(claims(iss, exp=int(time.time()) - 120), SECRET, "HS256"), t.EXPIRED),
    ("expired, RS256", lambda iss: sign(claims(iss, exp=int(time.time()) - 120), RSA, "RS256", "rsa-1"), t.EXPIRED),
    ("nbf in the future", lambda iss: sign(claims(iss, nbf=int(time.time()) + 600), SECRET, "HS256"), t.NOT_YET_VALID),
    ("iat in the future", lambda iss: sign(claims(iss, iat=int(time.time()) + 600), SECRET, "HS256"), t.NOT_YET_VALID),
    ("wrong audience", lambda iss: sign(claims(iss, aud="anon"), SECRET, "HS256"), t.WRONG_AUDIENCE),
    ("no audience", lambda iss: sign(claims(iss, aud=DROP), SECRET, "HS256"), t.missing_claim("aud")),
    ("wrong issuer", lambda iss: sign(claims("https://evil.example/auth/v1"), SECRET, "HS256"), t.WRONG_ISSUER),
    ("wrong issuer, ES256", lambda iss: sign(claims(iss + "/x"), EC, "ES256", "ec-1"), t.WRONG_ISSUER),
    ("no issuer", lambda iss: sign(claims(iss, iss=DROP), SECRET, "HS256"), t.missing_claim("iss")),
    ("no sub", lambda iss: sign(claims(iss, sub=DROP), SECRET, "HS256"), t.missing_claim("sub")),
    ("empty sub", lambda iss: sign(claims(iss, sub=""), SECRET, "HS256"), t.missing_claim("sub")),
    ("no exp", lambda iss: sign(claims(iss, exp=DROP), SECRET, "HS256"), t.missing_claim("exp")),
    ("exp past year 9999", lambda iss: sign(claims(iss, exp=10**15), SECRET, "HS256"), t.INVALID),
    ("tampered payload", _tampered, t.BAD_SIGNATURE),
    ("garbage", lambda iss: "not-a-token", t.MALFORMED),
    ("three garbage parts", lambda iss: "a.b.c", t.MALFORMED),
    ("empty", lambda iss: "", t.MALFORMED),
    ("header without alg", lambda iss: forge({"typ": "JWT"}, claims(iss), SECRET.encode()), t.MALFORMED),
]


@pytest.mark.parametrize("make_token, message", [r[1:] for r in REFUSALS], ids=[r[0] for r in REFUSALS])
async def test_refusal(server, make_verifier, make_token, message):
    verifier = make_verifier(supabase_settings(server))
    assert await refused(verifier, make_token(server.url + "/auth/v1")) == message


async def test_hs256_is_refused_when_only_the_jwks_is_configured(server, make_verifier):
    verifier = make_verifier(supabase_settings(server, supabase_jwt_secret=None))
    iss = server.url + "/auth/v1"
    assert await refused(verifier, sign(claims(iss), SECRET, "HS256")) == t.ALG_NOT_ALLOWED
    confused = forge({"alg": "HS256", "kid": "rsa-1"}, claims(iss), public_pem(RSA))
    assert await refused(verifier, confused) == t.ALG_NOT_ALLOWED


async def test_jwks_tokens_are_refused_when_only_the_secret_is_configured(server, make_verifier):
    iss = "https://project.supabase.co/auth/v1"
    verifier = make_verifier(load_settings({}, auth_mode="supabase", supabase_jwt_secret=SECRET, jwt_issuer=iss))
    assert await refused(verifier, sign(claims(iss), RSA, "RS256", "rsa-1")) == t.ALG_NOT_ALLOWED
    assert (await verifier.verify(sign(claims(iss), SECRET, "HS256"))).id


async def test_symmetric_keys_in_the_jwks_are_ignored(server, make_verifier):
    secret = b"symmetric-key-published-by-mistake"
    k = base64.urlsafe_b64encode(secret).decode().rstrip("=")
    server.keys = [{"kty": "oct", "kid": "oct-1", "k": k, "alg": "HS256"}]
    verifier = make_verifier(supabase_settings(server, supabase_jwt_secret=None))
    token = sign(claims(server.url + "/auth/v1"), secret, "HS256", "oct-1")
    assert await refused(verifier, token) == t.ALG_NOT_ALLOWED


# -- dev tokens are worthless outside dev mode ----------------------------------------------------


async def test_dev_tokens_from_another_secret_are_refused():
    token = issue_dev_token(dev_settings(), "ada@example.com")["access_token"]
    other = dev_settings(dev_jwt_secret=secrets.token_urlsafe(32))
    assert await refused(TokenVerifier(other), token) == t.BAD_SIGNATURE


async def test_a_dev_token_is_refused_by_a_supabase_verifier_with_the_same_secret(server, make_verifier):
    token = issue_dev_token(dev_settings(dev_jwt_secret=SECRET), "ada@example.com")["access_token"]
    assert await refused(make_verifier(supabase_settings(server)), token) == t.WRONG_ISSUER


def test_no_dev_tokens_outside_dev_mode(server):
    with pytest.raises(NotFound):
        issue_dev_token(supabase_settings(server), "ada@example.com")


async def test_a_token_with_the_dev_issuer_is_refused_in_supabase_mode_even_with_the_right_secret(
    server, make_verifier
):
    token = sign(claims(DEV_ISSUER), SECRET, "HS256")  # someone who knows the project's secret, posing as dev
    assert await refused(make_verifier(supabase_settings(server)), token) == t.WRONG_ISSUER


def test_supabase_mode_refuses_the_dev_issuer_as_its_own():
    with pytest.raises(SettingsError) as info:
        load_settings({"AUTH_MODE": "supabase", "SUPABASE_JWT_SECRET": SECRET, "JWT_ISSUER": DEV_ISSUER})
    assert "JWT_ISSUER='tandem-dev'" in str(info.value)


async def test_dev_mode_never_takes_a_supabase_token(server):
    settings = dev_settings(supabase_jwt_secret=SECRET, supabase_url=server.url)
    token = sign(claims(server.url + "/auth/v1"), SECRET, "HS256")  # a real Supabase token of that project
    assert await refused(TokenVerifier(settings), token) in (t.BAD_SIGNATURE, t.WRONG_ISSUER)
    dev_token = issue_dev_token(settings, "ada@example.com")["access_token"]
    assert (await TokenVerifier(settings).verify(dev_token)).claims["iss"] == DEV_ISSUER


# -- role and anonymous sign-ins -------------------------------------------------------------------


@pytest.mark.parametrize(
    "role, message",
    [
        ("anon", t.WRONG_ROLE),
        ("service_role", t.WRONG_ROLE),
        ("supabase_admin", t.WRONG_ROLE),
        ("", t.WRONG_ROLE),
        (DROP, t.missing_claim("role")),
    ],
    ids=["anon", "service_role", "supabase_admin", "empty", "missing"],
)
async def test_only_the_authenticated_role_is_a_signed_in_user(server, make_verifier, role, message):
    verifier = make_verifier(supabase_settings(server))
    token = sign(claims(server.url + "/auth/v1", role=role), SECRET, "HS256")
    assert await refused(verifier, token) == message


async def test_anonymous_sign_ins_are_refused_unless_allowed(server, make_verifier):
    anonymous = sign(claims(server.url + "/auth/v1", is_anonymous=True, email=""), EC, "ES256", "ec-1")
    assert await refused(make_verifier(supabase_settings(server)), anonymous) == t.ANONYMOUS
    allowed = make_verifier(supabase_settings(server, allow_anonymous=True))
    assert (await allowed.verify(anonymous)).claims["is_anonymous"] is True
    assert load_settings(
        {"AUTH_MODE": "supabase", "SUPABASE_URL": server.url, "ALLOW_ANONYMOUS": "true"}
    ).allow_anonymous
    not_anonymous = sign(claims(server.url + "/auth/v1", is_anonymous=False), SECRET, "HS256")
    assert (await make_verifier(supabase_settings(server)).verify(not_anonymous)).id


async def test_forged_tokens_get_401_from_the_api(server):
    iss = server.url + "/auth/v1"
    forged = {
        "alg none": forge({"alg": "none", "typ": "JWT"}, claims(iss), None),
        "public key as HMAC secret": forge({"alg": "HS256", "kid": "rsa-1"}, claims(iss), public_pem(RSA)),
        "anon key": sign(claims(iss, role="anon", sub=DROP), SECRET, "HS256"),
        "anonymous": sign(claims(iss, is_anonymous=True), SECRET, "HS256"),
        "expired": sign(claims(iss, exp=int(time.time()) - 120), SECRET, "HS256"),
        "dev token": issue_dev_token(dev_settings(dev_jwt_secret=SECRET), "ada@example.com")["access_token"],
    }
    async with live_server(auth_mode="supabase", supabase_url=server.url, supabase_jwt_secret=SECRET) as live:
        for name, token in forged.items():
            r = await live.http.get("/api/me", headers={"authorization": f"Bearer {token}"})
            assert r.status_code == 401 and r.json()["error"]["code"] == "unauthenticated", name
        for name in ("alg none", "dev token", "anonymous"):  # the WebSocket uses the same verifier
            client = await Client.open(live.ws_url)
            await client.send(type="auth", token=forged[name])
            assert await client.wait_closed() == 4401, name
        assert (await live.http.post("/api/auth/dev-login", json={"email": "ada@example.com"})).status_code == 404
        good = sign(claims(iss), SECRET, "HS256")
        assert (await live.http.get("/api/me", headers={"authorization": f"Bearer {good}"})).status_code == 200


# -- secrets committed to the repository -----------------------------------------------------------

SUPABASE_DEFAULTS = [  # Supabase's own public defaults (the CLI's and self-hosting .env.example's), by name
    "super-secret-jwt-token-with-at-least-32-characters-long",
    "your-super-secret-jwt-token-with-at-least-32-characters-long",
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJzdXBhYmFzZS1kZW1vIiwicm9sZSI6ImFub24iLCJleHAiOjE5ODM4MTI5OTZ9"
    ".CRXP1A7WOeoJeXxjNni43kdQwgnWNReilDMblYTn_I0",
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJzdXBhYmFzZS1kZW1vIiwicm9sZSI6InNlcnZpY2Vfcm9sZSIsImV4cCI6MTk4"
    "MzgxMjk5Nn0.EGIM96RAZx35lJzdJsyH-qQwv8Hdp7fsn3W0YpN81IU",
]


def _env_with(name: str, value: str) -> dict[str, str]:
    if name == "MONGODB_URI":  # the secret in it is the password
        value = f"mongodb://tandem:{quote(value, safe='')}@mongo:27017/?authSource=admin"
    return {"AUTH_MODE": "supabase", "SUPABASE_URL": "https://x.supabase.co", name: value}


def refused_at_start_up(name: str, value: str) -> str | None:
    """The start-up problem `value` as `name` causes outside dev mode, or None if it is accepted."""
    try:
        load_settings(_env_with(name, value))
    except SettingsError as error:
        return next((p for p in error.problems if p.startswith(name)), None)
    return None


def test_supabases_public_defaults_are_on_the_list():
    assert set(SUPABASE_DEFAULTS) <= COMMITTED_SECRETS
    # the demo keys are what they claim: Supabase's anon and service_role keys, signed with its default secrets
    import jwt

    roles = {
        jwt.decode(key, secret, algorithms=["HS256"], options={"verify_exp": False})["role"]
        for key in SUPABASE_DEFAULTS[2:]
        for secret in SUPABASE_DEFAULTS[:1]
    }
    assert roles == {"anon", "service_role"}


@pytest.mark.parametrize("value", sorted(COMMITTED_SECRETS))
@pytest.mark.parametrize("name", SECRET_SETTINGS)
def test_a_committed_secret_is_refused_at_start_up(name, value):
    problem = refused_at_start_up(name, value)
    reason = "shorter than 32" if name == "SUPABASE_JWT_SECRET" and len(value) < 32 else "committed to Tandem's public"
    assert problem is not None and reason in problem, problem
    assert value not in problem  # the message never repeats the secret
    load_settings({**_env_with(name, value), "AUTH_MODE": "dev"})  # dev mode does not care


def test_tandem_api_does_not_start_with_the_dev_compose_secret(monkeypatch, capsys):
    for key in list(__import__("os").environ):
        if key.startswith(("SUPABASE_", "AUTH_MODE", "JWT_", "DEV_JWT", "GROQ_", "AI_PROVIDER")):
            monkeypatch.delenv(key)
    monkeypatch.setenv("AUTH_MODE", "supabase")
    monkeypatch.setenv("SUPABASE_URL", "https://x.supabase.co")
    monkeypatch.setenv("SUPABASE_JWT_SECRET", "dev-only-jwt-secret-not-for-production-0123456789")
    assert cli.main(["api", "--port", "9"]) == 2  # refused before anything starts
    assert "SUPABASE_JWT_SECRET is a value committed" in capsys.readouterr().err


# What a secret looks like where it gets committed: a value given to a *SECRET / *KEY / *PASSWORD /
# *TOKEN variable (Compose `NAME: value` or `${NAME:-value}`, shell `NAME=value`, YAML, .env), or a JWT.
_ASSIGNED = re.compile(
    r"(?P<name>[A-Za-z_][A-Za-z0-9_]*(?:SECRET|KEY|PASSWORD|TOKEN))\b"
    r"(?:\s*[:=]\s*|:-)(?P<value>\"[^\"\n]*\"|'[^'\n]*'|[^\s}#]+)",
    re.IGNORECASE,
)
_DEFAULT = re.compile(r"\$\{[A-Za-z0-9_]*(?:SECRET|KEY|PASSWORD|TOKEN):?-(?P<value>[^}]*)\}", re.IGNORECASE)
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*")


_NOT_SECRETS = {"unique_key", "followup_key", "idempotency_key", "cache_key"}  # code's names for other keys


def secret_looking_values(text: str, python: bool = False) -> set[str]:
    """In Python source (`python`), only string literals count: `SECRET=make_one()` is code."""
    found = set(_JWT.findall(text))
    for match in [*_ASSIGNED.finditer(text), *_DEFAULT.finditer(text)]:
        raw = match.group("value")
        if python and (match.re is _DEFAULT or raw[:1] not in "\"'" or match.group("name").lower() in _NOT_SECRETS):
            continue
        value = raw.strip("\"'")
        if len(value) < 8 or value.startswith(("$", "<", "...", "(", "{")) or value.lower() in {"true", "false"}:
            continue  # empty, a variable, a placeholder or a command: not a committed secret
        found.add(value)
    return found


def committed_files() -> list[Path]:
    files = [
        *ROOT.glob("docker-compose*.yml"),
        *ROOT.glob("docs/**/*.md"),
        ROOT / "README.md",
        ROOT / "Makefile",
        *ROOT.glob("docker/*"),
        *ROOT.glob(".ci/*"),
        *ROOT.glob(".github/**/*.yml"),
        *ROOT.glob("**/.env*"),
        *ROOT.glob("nginx/*.template"),
        *ROOT.glob("tests/**/*.py"),
    ]
    return sorted(p for p in files if p.is_file() and "node_modules" not in p.parts and ".venv" not in p.parts)


def test_the_scan_finds_secrets_the_way_they_get_committed():
    old_compose = "    SUPABASE_JWT_SECRET: ${SUPABASE_JWT_SECRET:-dev-only-jwt-secret-not-for-production-0123456789}\n"
    jwt_like = "eyJhbGciOiJIUzI1NiJ9.eyJyb2xl" + "IjoiYW5vbiJ9.c2lnbmF0dXJlLXZhbHVl"  # split: not a literal JWT here
    leaked = "sk-live-" + "1234567890"
    text = (
        old_compose
        + f"export SUPABASE_SERVICE_KEY='{leaked}'\nanon: {jwt_like}\n"
        + "export SUPABASE_JWT_SECRET=<jwt secret>\nGROQ_API_KEY: ${GROQ_API_KEY:-}\nKEY=$(openssl rand -hex 32)\n"
    )
    assert secret_looking_values(text) == {"dev-only-jwt-secret-not-for-production-0123456789", leaked, jwt_like}
    python = f"SECRET = secrets.token_urlsafe(32)\nsettings(supabase_service_key='{leaked}', unique_key='checkin:x')\n"
    assert secret_looking_values(python, python=True) == {leaked}


def test_every_secret_in_the_compose_files_docs_and_tests_is_refused():
    files = committed_files()
    assert ROOT / "docker-compose.yml" in files and ROOT / "docs" / "deployment.md" in files
    assert ROOT / "tests" / "test_auth.py" in files  # tests' fixed secrets are as public as the docs'
    found = {
        (value, str(path.relative_to(ROOT)))
        for path in files
        for value in secret_looking_values(path.read_text(errors="replace"), python=path.suffix == ".py")
    }
    # "refused" as start-up refuses: for every setting that carries a secret, not only "on the list"
    unrefused = sorted(
        (path, value, name)
        for value, path in found
        for name in SECRET_SETTINGS
        if refused_at_start_up(name, value) is None
    )
    assert unrefused == [], (
        "secret-looking values committed but not refused: add them to "
        "backend/committed_secrets.py, or better, remove them",
        unrefused,
    )
