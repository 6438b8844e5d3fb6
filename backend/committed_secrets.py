"""Secrets that appear in Tandem's repository, refused outside dev mode.

Anything committed (a Compose default, a docs example, a test's fixed secret)
is public: a deployment that copied one would let anyone forge its tokens or
use its keys. `load_settings()` refuses these values for SUPABASE_JWT_SECRET,
SUPABASE_SERVICE_KEY and GROQ_API_KEY outside dev mode, as it refuses
placeholders. `tests/test_security_tokens.py` scans the Compose files and the
docs for secret-looking values and fails when one is missing here, so a new
committed secret cannot slip in: add it to this list (and better, remove it
from the file it appeared in).
"""

from __future__ import annotations

COMMITTED_SECRET_REASON = ("is a value committed to Tandem's public repository (an example or a default), "
                           "so anyone can read it and forge tokens or use the key: set your project's own secret")

COMMITTED_SECRETS: frozenset[str] = frozenset({
    # docker-compose.yml's SUPABASE_JWT_SECRET default until dev tokens got DEV_JWT_SECRET of their own
    "dev-only-jwt-secret-not-for-production-0123456789",
    # tests' fixed secrets before they became random per test run
    "tandem-test-hmac-secret-" + "k" * 32,
    "test-secret-" + "x" * 40,
    "another-test-secret-" + "y" * 40,
    "another-secret-" + "z" * 32,
    # tests/fake_groq.py's key
    "gsk_test_key",
})


def is_committed_secret(value: str) -> bool:
    return value.strip() in COMMITTED_SECRETS
