"""Authentication: Supabase access tokens verified locally, dev tokens, members by email.

- `TokenVerifier(settings).verify(token)` -> `Principal` (tokens.py, jwks.py)
- `issue_dev_token(settings, email)` for `POST /api/auth/dev-login` (dev.py)
- `MemberDirectory(settings, dev_users).find_or_invite(email)` -> `Invitee` for `addMember` (directory.py)
- `Invitations(store).seen(user_id)`: an invited member's first sign-in (invitations.py)
"""

from backend.auth.dev_tokens import dev_user_id, issue_dev_token, normalize_email
from backend.auth.directory import Invitee, MemberDirectory
from backend.auth.invitations import Invitations
from backend.auth.jwks import JwksCache
from backend.auth.tokens import Principal, TokenVerifier, token_issuer

__all__ = [
    "Invitations",
    "Invitee",
    "JwksCache",
    "MemberDirectory",
    "Principal",
    "TokenVerifier",
    "dev_user_id",
    "issue_dev_token",
    "normalize_email",
    "token_issuer",
]
