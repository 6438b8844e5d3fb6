"""Verify Supabase Auth access tokens locally and turn them into a `Principal`.

HS256 tokens are checked with SUPABASE_JWT_SECRET, RS256 and ES256 tokens
against the project's JWKS (`backend.auth.jwks`). The token's header only
names the key; which algorithm may verify it is decided by the key's type, so
an HS256 token cannot borrow a public key as its secret. A token must be a
signed-in user's as Supabase issues it: `role: authenticated`, and not an
anonymous sign-in unless ALLOW_ANONYMOUS=true.

Dev mode verifies dev tokens only: HS256 with DEV_JWT_SECRET and issuer
`tandem-dev`. Supabase mode never accepts that issuer (settings refuse it as
JWT_ISSUER) and never sees DEV_JWT_SECRET, so a dev token is refused there
whatever secret it was signed with. Every refusal is an `Unauthenticated`
with one of the stable messages below.

A verified token is remembered (`TokenCache`): a request that brings the same
token again gets the same `Principal` without the signature check, until the
token's `exp` or CACHE_SECONDS after it was verified, whichever is first. The
cache is keyed by the token's SHA-256 (never the token itself), holds at most
CACHE_SIZE tokens (least recently used go first), and only successes: a refused
token is checked in full every time. A token verified against the JWKS is
taken from the cache only while the JWKS cache still holds the very key that
verified it (`JwksCache.cached`): a key removed from the JWKS stops working
after the JWKS's max age, cached or not.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import OrderedDict
from datetime import datetime, timezone
from typing import Any, Callable

import httpx
import jwt
import msgspec

from backend.auth.jwks import JwksCache
from backend.errors import Unauthenticated
from backend.settings import DEV_ISSUER, Settings

log = logging.getLogger(__name__)

AUTHENTICATED_ROLE = "authenticated"
LEEWAY = 10  # seconds of clock skew tolerated on exp, nbf and iat
MAX_TOKEN_CHARS = 16_384
CACHE_SIZE = 10_000  # verified tokens remembered (TokenCache)
CACHE_SECONDS = 60.0  # the longest a verified token is remembered, if it expires later

MALFORMED = "The token is malformed."
ALG_NOT_ALLOWED = "The token's signing algorithm is not allowed."
NO_KEY_ID = "The token does not name its signing key."
BAD_SIGNATURE = "The token's signature is not valid."
EXPIRED = "The token has expired."
NOT_YET_VALID = "The token is not valid yet."
WRONG_AUDIENCE = "The token is meant for another audience."
WRONG_ISSUER = "The token comes from another issuer."
INVALID = "The token is not valid."
WRONG_ROLE = "The token is not a signed-in user's (its role is not authenticated)."
ANONYMOUS = "Anonymous sign-ins are not allowed here."

_REFUSALS: tuple[tuple[type[Exception], str], ...] = (  # most specific first
    (jwt.ExpiredSignatureError, EXPIRED),
    (jwt.ImmatureSignatureError, NOT_YET_VALID),
    (jwt.InvalidAudienceError, WRONG_AUDIENCE),
    (jwt.InvalidIssuerError, WRONG_ISSUER),
    (jwt.InvalidSignatureError, BAD_SIGNATURE),
    (jwt.InvalidAlgorithmError, ALG_NOT_ALLOWED),
    (jwt.DecodeError, MALFORMED),
)


def missing_claim(claim: str) -> str:
    return f"The token has no {claim} claim."


class Principal(msgspec.Struct, frozen=True):
    id: str  # the token's `sub`: the Supabase user id
    email: str | None
    expires_at: datetime  # UTC
    claims: dict[str, Any]


def token_issuer(settings: Settings) -> str | None:
    """The `iss` tokens must carry: "tandem-dev" in dev mode, else Supabase's."""
    return DEV_ISSUER if settings.dev else settings.issuer


class TokenCache:
    """Verified tokens by their SHA-256: (remembered until, Principal, the JWKS key that verified it)."""

    def __init__(self, size: int = CACHE_SIZE, seconds: float = CACHE_SECONDS, clock: Callable[[], float] = time.time):
        self.size, self.seconds, self._clock = size, seconds, clock
        self._entries: OrderedDict[bytes, tuple[float, Principal, tuple[str, jwt.PyJWK] | None]] = OrderedDict()
        self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    @staticmethod
    def key(token: object) -> bytes | None:
        if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_CHARS:
            return None
        return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()

    def get(self, key: bytes, jwks: JwksCache | None) -> Principal | None:
        entry = self._entries.get(key)
        if entry is not None:
            until, principal, jwk = entry
            if self._clock() < until and (jwk is None or (jwks is not None and jwks.cached(jwk[0]) is jwk[1])):
                self._entries.move_to_end(key)
                self.hits += 1
                return principal
            del self._entries[key]
        self.misses += 1
        return None

    def put(self, key: bytes, principal: Principal, jwk: tuple[str, jwt.PyJWK] | None) -> None:
        """Remember a verified token until its exp, at most `seconds`; one that expires now is not kept."""
        now = self._clock()
        until = min(principal.expires_at.timestamp(), now + self.seconds)
        if until <= now or self.size <= 0:
            return
        self._entries[key] = (until, principal, jwk)
        self._entries.move_to_end(key)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)


class TokenVerifier:
    def __init__(
        self,
        settings: Settings,
        http_client: httpx.AsyncClient | None = None,
        *,
        jwks: JwksCache | None = None,
        cache: TokenCache | None = None,
    ):
        self.cache = cache if cache is not None else TokenCache()
        issuer = token_issuer(settings)
        if not issuer:
            raise ValueError("TokenVerifier needs an issuer: set SUPABASE_URL or JWT_ISSUER")
        if not settings.dev and issuer == DEV_ISSUER:
            raise ValueError(f"AUTH_MODE=supabase never accepts the dev issuer {DEV_ISSUER!r}")
        self._issuer, self._audience = issuer, settings.jwt_audience
        self._allow_anonymous = settings.allow_anonymous
        if settings.dev:  # dev tokens only: never the Supabase secret, never the JWKS
            self._secret, self._jwks = settings.dev_jwt_secret or None, None
            return
        self._secret = settings.supabase_jwt_secret or None
        url = settings.jwks_url
        self._jwks = jwks or (JwksCache(url, http_client) if url else None)

    async def verify(self, token: str) -> Principal:
        cache_key = TokenCache.key(token)
        if cache_key is not None and (cached := self.cache.get(cache_key, self._jwks)) is not None:
            return cached
        header = _header(token)
        key = await self._key_for(header)
        claims = self._decode(token, key, header["alg"])
        self._check_user(claims)
        principal = Principal(claims["sub"], _email(claims), _expires_at(claims), claims)
        if cache_key is not None:  # only a success is remembered
            self.cache.put(cache_key, principal, (header["kid"], key) if isinstance(key, jwt.PyJWK) else None)
        return principal

    def _check_user(self, claims: dict[str, Any]) -> None:
        """A signed-in user's token as Supabase issues it: role `authenticated`, anonymous only if allowed."""
        role = claims.get("role")
        if role is None:
            raise Unauthenticated(missing_claim("role"))
        if role != AUTHENTICATED_ROLE:
            raise Unauthenticated(WRONG_ROLE)
        if claims.get("is_anonymous") is True and not self._allow_anonymous:
            raise Unauthenticated(ANONYMOUS)

    async def _key_for(self, header: dict[str, Any]) -> str | jwt.PyJWK:
        alg = header["alg"]
        if alg == "HS256" and self._secret:
            return self._secret
        if alg in ("RS256", "ES256") and self._jwks is not None:
            kid = header.get("kid")
            if not isinstance(kid, str) or not kid:
                raise Unauthenticated(NO_KEY_ID)
            key = await self._jwks.get(kid)
            if key.algorithm_name == alg:
                return key
        raise Unauthenticated(ALG_NOT_ALLOWED)

    def _decode(self, token: str, key: str | jwt.PyJWK, alg: str) -> dict[str, Any]:
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[alg],
                audience=self._audience,
                issuer=self._issuer,
                leeway=LEEWAY,
                options={"require": ["exp", "sub"]},
            )
        except jwt.MissingRequiredClaimError as exc:
            raise Unauthenticated(missing_claim(exc.claim)) from None
        except (jwt.PyJWTError, ValueError, TypeError) as exc:
            log.debug("token refused: %r", exc)
            raise Unauthenticated(_refusal(exc)) from None
        if not isinstance(claims.get("sub"), str) or not claims["sub"]:
            raise Unauthenticated(missing_claim("sub"))
        return claims

    async def aclose(self) -> None:
        if self._jwks is not None:
            await self._jwks.aclose()


def _header(token: object) -> dict[str, Any]:
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_CHARS:
        raise Unauthenticated(MALFORMED)
    try:
        header = jwt.get_unverified_header(token)
    except (jwt.PyJWTError, ValueError, TypeError):
        raise Unauthenticated(MALFORMED) from None
    if not isinstance(header.get("alg"), str):
        raise Unauthenticated(MALFORMED)
    return header


def _refusal(exc: Exception) -> str:
    return next((message for kind, message in _REFUSALS if isinstance(exc, kind)), INVALID)


def _expires_at(claims: dict[str, Any]) -> datetime:
    try:
        return datetime.fromtimestamp(int(claims["exp"]), timezone.utc)
    except (OverflowError, OSError, ValueError):  # an exp far beyond year 9999
        raise Unauthenticated(INVALID) from None


def _email(claims: dict[str, Any]) -> str | None:
    email = claims.get("email")
    return email if isinstance(email, str) and email else None
