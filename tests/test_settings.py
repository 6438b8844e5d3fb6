"""Settings: decoded once from the environment; every problem listed at once."""

from __future__ import annotations

import pytest

from backend.settings import SettingsError, load_settings

SECRET = "s" * 40


def test_defaults_in_dev_mode_fill_a_random_secret():
    a = load_settings({}, auth_mode="dev")
    b = load_settings({}, auth_mode="dev")
    assert a.embedded and a.ai == "offline" and a.checkin_batch_size == 20 and a.approval_ttl == 72 * 3600
    assert len(a.supabase_jwt_secret) >= 32 and a.supabase_jwt_secret != b.supabase_jwt_secret


def test_values_are_converted_from_strings():
    s = load_settings({"AUTH_MODE": "dev", "APPROVAL_TTL": "2h", "CORS_ORIGINS": "https://a.example, https://b.example",
                       "LOG_LEVEL": "debug", "MAX_BODY_BYTES": "2048", "WS_PER_MESSAGE_DEFLATE": "yes",
                       "GROQ_API_KEY": "gsk_x"})
    assert s.approval_ttl == 7200 and s.cors_origins == ("https://a.example", "https://b.example")
    assert s.log_level == "DEBUG" and s.max_body_bytes == 2048 and s.ws_per_message_deflate is True
    assert s.ai == "groq"


def test_every_problem_is_listed_at_once():
    env = {"AUTH_MODE": "nope", "MAX_BODY_BYTES": "lots", "APPROVAL_TTL": "3 weeks", "AI_PROVIDER": "gpt"}
    with pytest.raises(SettingsError) as info:
        load_settings(env)
    text = str(info.value)
    for name in ("AUTH_MODE", "MAX_BODY_BYTES", "APPROVAL_TTL", "AI_PROVIDER"):
        assert name in text
    assert len(info.value.problems) >= 4  # plus what the default auth mode then lacks


@pytest.mark.parametrize("secret", ["changeme", "secret", "short"])
def test_placeholder_secrets_are_refused_outside_dev_mode(secret):
    with pytest.raises(SettingsError) as info:
        load_settings({"AUTH_MODE": "supabase", "SUPABASE_URL": "https://x.supabase.co", "SUPABASE_JWT_SECRET": secret})
    assert "SUPABASE_JWT_SECRET" in str(info.value)


def test_supabase_mode_needs_a_way_to_verify_tokens():
    with pytest.raises(SettingsError) as info:
        load_settings({"AUTH_MODE": "supabase"})
    assert any("SUPABASE_JWT_SECRET" in p for p in info.value.problems)
    ok = load_settings({"AUTH_MODE": "supabase", "SUPABASE_URL": "https://x.supabase.co"})
    assert ok.jwks_url == "https://x.supabase.co/auth/v1/.well-known/jwks.json"
    assert ok.issuer == "https://x.supabase.co/auth/v1"
    load_settings({"AUTH_MODE": "supabase", "SUPABASE_JWT_SECRET": SECRET, "JWT_ISSUER": "https://issuer"})


@pytest.mark.parametrize("env, fragment", [
    ({"MONGODB_URI": "postgres://x"}, "MONGODB_URI"),
    ({"CHECKIN_CRON": "every night"}, "CHECKIN_CRON"),
    ({"CHECKIN_TZ": "Mars/Olympus"}, "CHECKIN_TZ"),
    ({"CHECKIN_BATCH_SIZE": "0"}, "CHECKIN_BATCH_SIZE"),
    ({"MAX_DOCUMENT_BYTES": str(20 * 1024 * 1024)}, "MAX_DOCUMENT_BYTES"),
    ({"AI_PROVIDER": "groq"}, "GROQ_API_KEY"),
])
def test_bad_values(env, fragment):
    with pytest.raises(SettingsError) as info:
        load_settings({"AUTH_MODE": "dev", **env})
    assert fragment in str(info.value)


def test_the_environment_wins_over_command_defaults():
    s = load_settings({"AUTH_MODE": "supabase", "SUPABASE_JWT_SECRET": SECRET, "JWT_ISSUER": "i"}, auth_mode="dev")
    assert s.auth_mode == "supabase"


def test_worker_timings_are_durations_and_checked():
    s = load_settings({"AUTH_MODE": "dev", "JOB_BACKOFF": "30s", "JOB_BACKOFF_MAX": "2h", "WORKER_GRACE": "25"})
    assert (s.job_backoff, s.job_backoff_max, s.worker_grace) == (30, 7200, 25)
    with pytest.raises(SettingsError) as info:
        load_settings({"AUTH_MODE": "dev", "JOB_BACKOFF": "10m", "JOB_BACKOFF_MAX": "1m", "WORKER_GRACE": "soon"})
    text = str(info.value)
    assert "JOB_BACKOFF_MAX must be at least JOB_BACKOFF" in text and "WORKER_GRACE" in text
