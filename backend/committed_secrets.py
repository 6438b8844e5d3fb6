"""Secrets that appear in Tandem's repository, refused outside dev mode.

Anything committed (a Compose default, a docs example, a test's fixed secret)
is public: a deployment that copied one would let anyone forge its tokens or
use its keys. Supabase's own public defaults are here too: the CLI's local JWT
secret and demo keys, and the self-hosting `.env.example`'s; a project still on
them can be forged by anyone. Outside dev mode `load_settings()` refuses these
values for every setting that carries a secret (`SECRET_SETTINGS` there:
SUPABASE_JWT_SECRET, SUPABASE_SERVICE_KEY, SUPABASE_ANON_KEY, GROQ_API_KEY, and
the password inside MONGODB_URI), as it refuses placeholders.
`tests/test_security_tokens.py` scans the Compose files, the docs and tests/ for
secret-looking values and fails when one is not refused, so a new committed
secret cannot slip in: add it to this list (and better, remove it from the file
it appeared in).
"""

from __future__ import annotations

COMMITTED_SECRET_REASON = (
    "is a value committed to Tandem's public repository (an example or a default), "
    "so anyone can read it and forge tokens or use the key: set your project's own secret"
)

COMMITTED_SECRETS: frozenset[str] = frozenset(
    {
        # docker-compose.yml's SUPABASE_JWT_SECRET default until dev tokens got DEV_JWT_SECRET of their own
        "dev-only-jwt-secret-not-for-production-0123456789",
        # tests' fixed secrets before they became random per test run
        "tandem-test-hmac-secret-" + "k" * 32,
        "test-secret-" + "x" * 40,
        "another-test-secret-" + "y" * 40,
        "another-secret-" + "z" * 32,
        # tests/fake_groq.py's key; the service key tests gave the fake Supabase Auth (now random per run)
        "gsk_test_key",
        "service-key-1",
        # Supabase's public defaults. The CLI (`supabase start`): its JWT secret and the demo anon and
        # service_role keys signed with it (iss "supabase-demo", exp 2032).
        "super-secret-jwt-token-with-at-least-32-characters-long",
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJzdXBhYmFzZS1kZW1vIiwicm9sZSI6ImFub24iLCJleHAiOjE5ODM4MTI5OTZ9"
        ".CRXP1A7WOeoJeXxjNni43kdQwgnWNReilDMblYTn_I0",
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJzdXBhYmFzZS1kZW1vIiwicm9sZSI6InNlcnZpY2Vfcm9sZSIsImV4cCI6MTk4"
        "MzgxMjk5Nn0.EGIM96RAZx35lJzdJsyH-qQwv8Hdp7fsn3W0YpN81IU",
        # Self-hosted Supabase's .env.example: JWT_SECRET, ANON_KEY and SERVICE_ROLE_KEY (signed with that secret).
        "your-super-secret-jwt-token-with-at-least-32-characters-long",
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyAgCiAgICAicm9sZSI6ICJhbm9uIiwKICAgICJpc3MiOiAic3VwYWJhc2UtZGVtbyIsCiAgICAi"
        "aWF0IjogMTY0MTc2OTIwMCwKICAgICJleHAiOiAxNzk5NTM1NjAwCn0.dc_X5iR_VP_qT0zsiyj_I_OZ2T9FtRU2BBNWN8Bu4GE",
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyAgCiAgICAicm9sZSI6ICJzZXJ2aWNlX3JvbGUiLAogICAgImlzcyI6ICJzdXBhYmFzZS1kZW1v"
        "IiwKICAgICJpYXQiOiAxNjQxNzY5MjAwLAogICAgImV4cCI6IDE3OTk1MzU2MDAKfQ.DaYlNEoUrrEn2Ig7tqibS-PHK5vgusbcbo7X36XVt4Q",
        # and its other defaults, in case one is reused as a Tandem secret or MongoDB password
        "your-super-secret-and-long-postgres-password",
        "this_password_is_insecure_and_should_be_updated",
    }
)


def is_committed_secret(value: str) -> bool:
    return value.strip() in COMMITTED_SECRETS
