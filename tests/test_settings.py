"""Settings: decoded once from the environment; every problem listed at once."""

from __future__ import annotations

import pytest

from backend.settings import SettingsError, load_settings

SECRET = "s" * 40


def test_defaults_in_dev_mode_fill_a_random_secret():
    a = load_settings({}, auth_mode="dev")
    b = load_settings({}, auth_mode="dev")
    assert a.embedded and a.ai == "offline" and a.checkin_mode == "batch" and a.approval_ttl == 72 * 3600
    assert len(a.dev_jwt_secret) >= 32 and a.dev_jwt_secret != b.dev_jwt_secret
    assert a.supabase_jwt_secret is None  # dev tokens never use the Supabase secret


def test_values_are_converted_from_strings():
    s = load_settings(
        {
            "AUTH_MODE": "dev",
            "APPROVAL_TTL": "2h",
            "CORS_ORIGINS": "https://a.example, https://b.example",
            "LOG_LEVEL": "debug",
            "MAX_BODY_BYTES": "2048",
            "WS_PER_MESSAGE_DEFLATE": "yes",
            "GROQ_API_KEY": "gsk_x",
        }
    )
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


@pytest.mark.parametrize(
    "env, fragment",
    [
        ({"MONGODB_URI": "postgres://x"}, "MONGODB_URI"),
        ({"CHECKIN_CRON": "every night"}, "CHECKIN_CRON"),
        ({"CHECKIN_TZ": "Mars/Olympus"}, "CHECKIN_TZ"),
        ({"CHECKIN_CONCURRENCY": "0"}, "CHECKIN_CONCURRENCY"),
        ({"CHECKIN_MODE": "nightly"}, "CHECKIN_MODE"),
        ({"CHECKIN_BATCH_DEADLINE": "soon"}, "CHECKIN_BATCH_DEADLINE"),
        ({"MAX_DOCUMENT_BYTES": str(20 * 1024 * 1024)}, "MAX_DOCUMENT_BYTES"),
        ({"AI_PROVIDER": "groq"}, "GROQ_API_KEY"),
    ],
)
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


@pytest.mark.parametrize("cron", ["61 2 * * *", "a b c d e", "0 25 * * *", "*/0 * * * *", "0 2 * 13 *"])
def test_a_cron_expression_the_scheduler_refuses_is_a_settings_problem(cron):
    with pytest.raises(SettingsError) as info:
        load_settings({"AUTH_MODE": "dev", "CHECKIN_CRON": cron})
    [problem] = info.value.problems
    assert problem.startswith(f"CHECKIN_CRON={cron!r}: ")
    assert len(problem) > len(f"CHECKIN_CRON={cron!r}: ")  # APScheduler's reason follows


def test_a_bad_cron_is_listed_with_a_bad_time_zone():
    with pytest.raises(SettingsError) as info:
        load_settings({"AUTH_MODE": "dev", "CHECKIN_CRON": "61 2 * * *", "CHECKIN_TZ": "Mars/Olympus"})
    assert [p.split(":")[0].split("=")[0] for p in info.value.problems] == ["CHECKIN_CRON", "CHECKIN_TZ"]


def test_a_good_cron_in_a_time_zone_passes():
    s = load_settings({"AUTH_MODE": "dev", "CHECKIN_CRON": "30 3 * * 1-5", "CHECKIN_TZ": "Europe/Paris"})
    assert (s.checkin_cron, s.checkin_tz) == ("30 3 * * 1-5", "Europe/Paris")


@pytest.mark.parametrize("name", ["WS_AUTH_TIMEOUT", "WS_PING_INTERVAL", "AI_TIMEOUT", "JOB_RETENTION"])
@pytest.mark.parametrize("value", ["0", "-1"])
def test_timeouts_and_retention_must_be_positive(name, value):
    with pytest.raises(SettingsError) as info:
        load_settings({"AUTH_MODE": "dev", name: value})
    [problem] = info.value.problems
    # "-1" as a duration (JOB_RETENTION) is refused while decoding; everything else by the check
    assert problem == f"{name} must be greater than 0" or problem.startswith(f"{name}='-1': expected a duration")


SUPABASE = {"AUTH_MODE": "supabase", "SUPABASE_URL": "https://x.supabase.co"}


@pytest.mark.parametrize("name", ["GROQ_API_KEY", "SUPABASE_SERVICE_KEY"])
@pytest.mark.parametrize("value", ["changeme", "CHANGEME", "your-secret", "todo", "   "])
def test_placeholder_keys_are_refused_outside_dev_mode(name, value):
    with pytest.raises(SettingsError) as info:
        load_settings({**SUPABASE, name: value})
    [problem] = info.value.problems
    assert problem.startswith(f"{name} is a placeholder")


def test_real_keys_pass_and_dev_mode_does_not_check_them():
    s = load_settings({**SUPABASE, "GROQ_API_KEY": "gsk_abc123", "SUPABASE_SERVICE_KEY": "sb_secret_abc123"})
    assert s.ai == "groq" and s.supabase_service_key == "sb_secret_abc123"
    load_settings({"AUTH_MODE": "dev", "GROQ_API_KEY": "changeme", "SUPABASE_SERVICE_KEY": "changeme"})


def test_checkin_settings():
    s = load_settings({"AUTH_MODE": "dev"})
    assert (s.checkin_mode, s.checkin_concurrency, s.checkin_batch_deadline) == ("batch", 4, 6 * 3600)
    s = load_settings(
        {"AUTH_MODE": "dev", "CHECKIN_MODE": "Sync", "CHECKIN_CONCURRENCY": "2", "CHECKIN_BATCH_DEADLINE": "90m"}
    )
    assert (s.checkin_mode, s.checkin_concurrency, s.checkin_batch_deadline) == ("sync", 2, 5400)
    # the old setting mixed tenants in one prompt: it is gone, and a deployment that still sets it starts
    assert not hasattr(s, "checkin_batch_size")
    assert load_settings({"AUTH_MODE": "dev", "CHECKIN_BATCH_SIZE": "20"}).checkin_mode == "batch"
