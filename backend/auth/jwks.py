"""The project's signing keys (JWKS), fetched with httpx and cached.

Keys are looked up by `kid`. An unknown `kid` triggers a refetch (key
rotation), but at most once per `min_refresh` seconds, so a stream of tokens
with made-up key ids cannot hammer the auth server. The whole set is also
refetched after `max_age`, so a revoked key stops working; if that refetch
fails the old keys stay in use. Only RSA and EC P-256 signing keys are kept:
symmetric keys are never taken from a JWKS.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Callable

import httpx
import jwt

from backend.errors import ServiceUnavailable, Unauthenticated

log = logging.getLogger(__name__)

UNKNOWN_KEY = "The token was signed with an unknown key."
KEYS_UNAVAILABLE = "The token signing keys cannot be fetched right now."

# (kty, crv) -> the one algorithm such a key may verify
_ALGORITHMS: dict[tuple[str | None, str | None], str] = {("RSA", None): "RS256", ("EC", "P-256"): "ES256"}


def parse_jwks(document: Any) -> dict[str, jwt.PyJWK]:
    """The usable signing keys of a JWKS document, by `kid`; others are skipped."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError("not a JWKS document")
    keys = {}
    for data in document["keys"]:
        if not isinstance(data, dict):
            continue
        kid, alg = data.get("kid"), _ALGORITHMS.get((data.get("kty"), data.get("crv")))
        if not isinstance(kid, str) or alg is None or data.get("use", "sig") != "sig" or data.get("alg", alg) != alg:
            continue
        try:
            keys[kid] = jwt.PyJWK(data, algorithm=alg)
        except jwt.PyJWTError as exc:
            log.warning("skipping JWKS key %r: %s", kid, exc)
    return keys


class JwksCache:
    def __init__(
        self,
        url: str,
        http_client: httpx.AsyncClient | None = None,
        *,
        timeout: float = 5.0,
        min_refresh: float = 30.0,
        max_age: float = 600.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.url = url
        self._http = http_client
        self._owns_http = http_client is None
        self._timeout, self._min_refresh, self._max_age, self._clock = timeout, min_refresh, max_age, clock
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at: float | None = None
        self._failed = False
        self._lock = asyncio.Lock()

    async def get(self, kid: str) -> jwt.PyJWK:
        """The key `kid`; raises `Unauthenticated` if the JWKS does not have it."""
        key = self._keys.get(kid)
        if key is None or self._expired():
            async with self._lock:
                if (kid not in self._keys or self._expired()) and self._may_fetch():
                    await self._fetch()
                key = self._keys.get(kid)
        if key is None:
            raise ServiceUnavailable(KEYS_UNAVAILABLE) if self._failed else Unauthenticated(UNKNOWN_KEY)
        return key

    def cached(self, kid: str) -> jwt.PyJWK | None:
        """The key `kid` as cached now, never fetching: None if it is not there or the JWKS is past
        its max age (then `get` would fetch it again). The token cache (tokens.py) asks this."""
        return None if self._expired() else self._keys.get(kid)

    def _expired(self) -> bool:
        return self._fetched_at is not None and self._clock() - self._fetched_at >= self._max_age

    def _may_fetch(self) -> bool:
        return self._fetched_at is None or self._clock() - self._fetched_at >= self._min_refresh

    async def _fetch(self) -> None:
        self._fetched_at = self._clock()
        if self._http is None:
            self._http = httpx.AsyncClient()
        try:
            response = await self._http.get(self.url, timeout=self._timeout, headers={"accept": "application/json"})
            response.raise_for_status()
            self._keys = parse_jwks(response.json())
            self._failed = False
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("cannot fetch the JWKS from %s: %s", self.url, exc)
            self._failed = True

    async def aclose(self) -> None:
        if self._owns_http and self._http is not None:
            await self._http.aclose()
            self._http = None
