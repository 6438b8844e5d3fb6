"""Authentication: Supabase access tokens verified locally, dev tokens, member lookup.

- `TokenVerifier(settings).verify(token)` -> `Principal` (tokens.py, jwks.py)
- `issue_dev_token(settings, email)` for `POST /api/auth/dev-login` (dev.py)
- `MemberDirectory(settings).resolve_email(email)` for `addMember` (directory.py)
"""

from backend.auth.dev import dev_user_id, issue_dev_token, normalize_email
from backend.auth.directory import MemberDirectory
from backend.auth.jwks import JwksCache
from backend.auth.tokens import Principal, TokenVerifier, token_issuer

__all__ = [
    "JwksCache", "MemberDirectory", "Principal", "TokenVerifier",
    "dev_user_id", "issue_dev_token", "normalize_email", "token_issuer",
]
