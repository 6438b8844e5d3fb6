"""One settings object, decoded from the environment once at start-up.

(Over 300 lines: every environment variable, its default, its check and its error message
live in this one file on purpose, so that "settings are read once" can be checked by reading it.)

Nothing else in Tandem reads the environment: `load_settings()` is called by
the CLI, and the resulting `Settings` is passed to everything that needs it.
A bad or missing value stops start-up with one `SettingsError` that lists
every problem at once. Every variable is documented in docs/configuration.md.
"""

from __future__ import annotations

import os
import re
import secrets
from typing import Literal, Mapping

import msgspec

from backend.committed_secrets import COMMITTED_SECRET_REASON, is_committed_secret

AuthMode = Literal["supabase", "dev"]
AIProvider = Literal["groq", "ollama", "offline"]
CheckinMode = Literal["batch", "sync"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]

DEV_ISSUER = "tandem-dev"  # the `iss` of dev tokens (backend/auth/dev_tokens.py); never accepted in supabase mode
_PLACEHOLDERS = {"", "changeme", "change-me", "secret", "your-secret", "please-change", "xxx", "todo"}


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    # storage
    mongodb_uri: str | None = None
    mongodb_db: str = "tandem"
    # auth
    auth_mode: AuthMode = "supabase"
    supabase_url: str | None = None
    supabase_jwt_secret: str | None = None
    supabase_jwks_url: str | None = None
    supabase_service_key: str | None = None
    supabase_anon_key: str | None = None
    jwt_audience: str = "authenticated"
    jwt_issuer: str | None = None
    allow_anonymous: bool = False  # Supabase anonymous sign-ins (is_anonymous: true) are refused unless true
    dev_jwt_secret: str | None = None  # dev tokens only; random at start-up in dev mode when unset
    dev_token_ttl: int = 3600  # seconds
    # AI
    ai_provider: AIProvider | None = None  # None: groq with a key, else offline
    groq_api_key: str | None = None
    groq_model: str = "llama-3.3-70b-versatile"
    groq_base_url: str | None = None
    ollama_url: str = "http://127.0.0.1:11434"
    ollama_model: str = "llama3.1"
    ai_timeout: float = 60.0
    ai_chat_rate_limit: int = 10  # AI chats per user per minute (per API process)
    ai_chat_collaboration_rate_limit: int = 30  # AI chats per collaboration per minute (per API process)
    ai_max_concurrency: int = 8  # AI chat model calls at once per API process; past it 429
    # worker
    checkin_cron: str = "0 2 * * *"
    checkin_tz: str = "UTC"
    checkin_mode: CheckinMode = "batch"  # groq: one Batch API job per run; sync: one request per collaboration
    checkin_concurrency: int = 4  # synchronous model requests at once (sync mode, fallbacks, ollama, offline)
    checkin_batch_deadline: int = 6 * 3600  # seconds a Groq batch may take before the rest runs synchronously
    approval_ttl: int = 72 * 3600  # seconds
    job_lease: int = 60  # seconds
    job_max_attempts: int = 5
    job_retention: int = 7 * 86400  # seconds
    job_backoff: int = 5  # seconds before the 2nd attempt; doubles with each failure
    job_backoff_max: int = 3600  # seconds: the longest wait between attempts
    worker_grace: int = 8  # seconds a running job may finish after SIGTERM (Docker kills at 10)
    # HTTP
    cors_origins: tuple[str, ...] = ()
    log_level: LogLevel = "INFO"
    frontend_dist: str | None = None
    # limits
    max_body_bytes: int = 1_048_576
    max_message_chars: int = 4000
    max_document_bytes: int = 2 * 1_048_576
    action_rate_limit: int = 120  # actions per user per window
    action_rate_window: int = 60  # seconds
    ws_max_frame_bytes: int = 65_536
    ws_rate_limit: int = 50  # frames per second per connection (burst of twice that)
    ws_queue_size: int = 1000  # events buffered per slow subscriber before 4009
    ws_queue_bytes: int = 4 * 1_048_576  # bytes queued per connection before 4009 (a snapshot aside)
    ws_total_queue_bytes: int = 256 * 1_048_576  # bytes queued by all connections of a process, snapshots too
    ws_max_sockets_per_user: int = 20  # per process; the next one closes with 4429
    ws_auth_timeout: float = 10.0
    ws_ping_interval: float = 20.0
    ws_per_message_deflate: bool = False
    change_history: int = 10_000  # events the embedded store's change stream keeps
    hub_history: int = 256  # updates, and as many messages, kept per collaboration for catch-up
    resume_max_events: int = 1000  # events a subscribe with sinceSeq replays from MongoDB; more: a snapshot
    presence_ttl: int = 60  # seconds
    idempotency_ttl: int = 86400  # seconds an Idempotency-Key's stored answer is replayed

    @property
    def embedded(self) -> bool:
        return not self.mongodb_uri

    @property
    def dev(self) -> bool:
        return self.auth_mode == "dev"

    @property
    def ai(self) -> str:
        if self.ai_provider:
            return self.ai_provider
        return "groq" if self.groq_api_key else "offline"

    @property
    def issuer(self) -> str | None:
        if self.jwt_issuer:
            return self.jwt_issuer
        if self.supabase_url:
            return self.supabase_url.rstrip("/") + "/auth/v1"
        return None

    @property
    def jwks_url(self) -> str | None:
        if self.supabase_jwks_url:
            return self.supabase_jwks_url
        if self.supabase_url:
            return self.supabase_url.rstrip("/") + "/auth/v1/.well-known/jwks.json"
        return None


class SettingsError(Exception):
    """Start-up cannot go on; `problems` lists every bad or missing value."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("Tandem cannot start; fix these settings:\n" + "\n".join(f"  - {p}" for p in problems))


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_DURATION_FIELDS = {
    "approval_ttl",
    "job_lease",
    "job_retention",
    "dev_token_ttl",
    "presence_ttl",
    "action_rate_window",
    "job_backoff",
    "job_backoff_max",
    "worker_grace",
    "checkin_batch_deadline",
}
_DURATION_FIELDS |= {"idempotency_ttl"}
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def _duration(text: str) -> int:
    match = _DURATION.match(text)
    if not match:
        raise ValueError("expected a duration like 90, 90s, 15m, 72h or 7d")
    return int(float(match.group(1)) * _UNITS[match.group(2)])


def _convert(name: str, raw: str, field_type: object) -> object:
    if name in _DURATION_FIELDS:
        return _duration(raw)
    if name == "cors_origins":
        return tuple(o.strip() for o in raw.split(",") if o.strip())
    if field_type is bool or name == "ws_per_message_deflate":
        low = raw.strip().lower()
        if low in {"1", "true", "yes", "on"}:
            return True
        if low in {"0", "false", "no", "off"}:
            return False
        raise ValueError("expected true or false")
    if name == "log_level":
        raw = raw.upper()
    if name == "checkin_mode":
        raw = raw.strip().lower()
    return msgspec.convert(raw, field_type, strict=False)


def _check(s: Settings) -> list[str]:
    problems = []
    positive = [
        "checkin_concurrency",
        "checkin_batch_deadline",
        "approval_ttl",
        "max_body_bytes",
        "max_message_chars",
        "max_document_bytes",
        "action_rate_limit",
        "action_rate_window",
        "ws_max_frame_bytes",
        "ws_rate_limit",
        "ws_queue_size",
        "ws_queue_bytes",
        "ws_max_sockets_per_user",
        "change_history",
        "hub_history",
        "job_lease",
        "job_max_attempts",
        "dev_token_ttl",
        "presence_ttl",
        "job_backoff",
        "job_backoff_max",
        "job_retention",
        "ws_auth_timeout",
        "ws_ping_interval",
        "ai_timeout",
    ]
    positive.append("idempotency_ttl")
    positive += ["ai_chat_rate_limit", "ai_chat_collaboration_rate_limit", "ai_max_concurrency"]
    positive.append("ws_total_queue_bytes")
    for name in positive:
        if getattr(s, name) <= 0:
            problems.append(f"{name.upper()} must be greater than 0")
    if s.worker_grace < 0:
        problems.append("WORKER_GRACE must be 0 or more")
    if s.resume_max_events < 0:
        problems.append("RESUME_MAX_EVENTS must be 0 or more")
    if s.job_backoff_max < s.job_backoff:
        problems.append("JOB_BACKOFF_MAX must be at least JOB_BACKOFF")
    if s.max_document_bytes > 15 * 1_048_576:
        problems.append("MAX_DOCUMENT_BYTES must stay under MongoDB's 16 MB limit (at most 15728640)")
    if s.mongodb_uri and not s.mongodb_uri.startswith(("mongodb://", "mongodb+srv://")):
        problems.append("MONGODB_URI must start with mongodb:// or mongodb+srv://")
    problems += _check_checkin_schedule(s.checkin_cron, s.checkin_tz)
    if s.auth_mode == "supabase":
        secret = s.supabase_jwt_secret
        if secret is not None and (secret.strip().lower() in _PLACEHOLDERS or len(secret) < 32):
            problems.append("SUPABASE_JWT_SECRET is a placeholder or shorter than 32 characters")
        elif secret is not None and is_committed_secret(secret):
            problems.append(f"SUPABASE_JWT_SECRET {COMMITTED_SECRET_REASON}")
        if s.issuer == DEV_ISSUER:
            problems.append(f"JWT_ISSUER={DEV_ISSUER!r} is the dev tokens' issuer; AUTH_MODE=supabase never accepts it")
        if not secret and not s.jwks_url:
            problems.append(
                "AUTH_MODE=supabase needs SUPABASE_JWT_SECRET (HS256) or SUPABASE_URL / SUPABASE_JWKS_URL (JWKS)"
            )
        if not s.issuer:
            problems.append("AUTH_MODE=supabase needs SUPABASE_URL or JWT_ISSUER to check the token issuer")
    if not s.dev:
        # every other setting that carries a secret (SECRET_SETTINGS); MONGODB_URI's is its password
        for name, value in (
            ("GROQ_API_KEY", s.groq_api_key),
            ("SUPABASE_SERVICE_KEY", s.supabase_service_key),
            ("SUPABASE_ANON_KEY", s.supabase_anon_key),
            ("MONGODB_URI", _uri_password(s.mongodb_uri)),
        ):
            if value and value.strip().lower() in _PLACEHOLDERS:
                shown = "its password" if name == "MONGODB_URI" else repr(value)
                problems.append(f"{name} is a placeholder ({shown}); set the real key, or leave it unset")
            elif value and is_committed_secret(value):
                problems.append(f"{name} {COMMITTED_SECRET_REASON}")
    if s.ai_provider == "groq" and not s.groq_api_key:
        problems.append("AI_PROVIDER=groq needs GROQ_API_KEY")
    return problems


# The settings that carry a secret; outside dev mode each is refused when its value is committed
# (backend/committed_secrets.py). DEV_JWT_SECRET is dev mode only, where anyone signs in as anyone anyway.
SECRET_SETTINGS = ("SUPABASE_JWT_SECRET", "SUPABASE_SERVICE_KEY", "SUPABASE_ANON_KEY", "GROQ_API_KEY", "MONGODB_URI")


def _uri_password(uri: str | None) -> str | None:
    """The password in a mongodb:// URI (percent-decoded), or None."""
    from urllib.parse import unquote, urlsplit

    try:
        password = urlsplit(uri).password if uri else None
    except ValueError:
        return None
    return unquote(password) if password else None


def _check_checkin_schedule(cron: str, tz: str) -> list[str]:
    """The check-in's cron and zone, checked as the worker's scheduler will read them."""
    import zoneinfo
    from datetime import timezone

    problems, zone = [], None
    try:
        zone = zoneinfo.ZoneInfo(tz)
    except Exception:  # noqa: BLE001 - any zone it cannot load is reported below as a problem
        pass
    if len(cron.split()) != 5:
        problems.append("CHECKIN_CRON must be a 5-field cron expression, e.g. '0 2 * * *'")
    else:
        from apscheduler.triggers.cron import CronTrigger

        try:  # the zone does not change what is valid: check the cron even when the zone is bad
            CronTrigger.from_crontab(cron, timezone=zone or timezone.utc)
        except ValueError as exc:
            problems.append(f"CHECKIN_CRON={cron!r}: {exc}")
    if zone is None:
        problems.append(f"CHECKIN_TZ: unknown time zone {tz!r}")
    return problems


def load_settings(env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
    """Decode the settings from `env` (default: the process environment).

    `overrides` are values set by the command (e.g. `tandem dev` sets
    auth_mode="dev"); the environment wins over them where both are given.
    """
    env = os.environ if env is None else env
    values: dict[str, object] = dict(overrides)
    problems: list[str] = []
    for field in msgspec.structs.fields(Settings):
        raw = env.get(field.name.upper())
        if raw is None or raw == "":
            continue
        try:
            values[field.name] = _convert(field.name, raw, field.type)
        except (msgspec.ValidationError, ValueError) as exc:
            problems.append(f"{field.name.upper()}={raw!r}: {exc}")
    try:
        settings = Settings(**values)  # type: ignore[arg-type]  # each value was converted to its field's type above; mypy sees only dict[str, object]
    except (TypeError, msgspec.ValidationError) as exc:  # pragma: no cover - overrides from code
        raise SettingsError([*problems, str(exc)]) from exc
    problems += _check(settings)  # checks on the values that did decode, so every problem shows at once
    if problems:
        raise SettingsError(problems)
    if settings.dev and not settings.dev_jwt_secret:  # dev tokens then die with the process
        settings = msgspec.structs.replace(settings, dev_jwt_secret=secrets.token_urlsafe(48))
    return settings


_TEST_DEV_SECRET = secrets.token_urlsafe(32)  # one per test process: nothing fixed to copy from the repository


def test_settings(**overrides: object) -> Settings:
    """Settings for tests: dev auth on the embedded store, nothing read from the environment."""
    base: dict[str, object] = {"auth_mode": "dev", "dev_jwt_secret": _TEST_DEV_SECRET}
    base.update(overrides)
    return load_settings({}, **base)


test_settings.__test__ = False  # type: ignore[attr-defined]  # a helper, not a pytest test
