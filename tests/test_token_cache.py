"""The verified-token cache (backend/auth/tokens.py TokenCache): a token verified once is not checked
again until its exp (or CACHE_SECONDS), keyed by its SHA-256, bounded, successes only, and a token
verified against the JWKS only while the JWKS still holds its key. Real keys and a real JWKS server
on 127.0.0.1 (tests/auth_keys.py)."""

from __future__ import annotations

import hashlib
import time

import httpx
import pytest

from backend.auth import JwksCache, TokenVerifier
from backend.auth import tokens as t
from backend.auth.dev_tokens import issue_dev_token
from backend.auth.jwks import UNKNOWN_KEY
from backend.settings import test_settings as dev_settings
from tests.auth_keys import ROTATED_RSA, RSA, SECRET, Clock, claims, public_jwk, refused, sign, supabase_settings


class WallClock:
    """time.time() until the test moves it."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def make():
    clients: list[httpx.AsyncClient] = []

    def make_verifier(settings, *, wall=None, jwks_clock=None, size=t.CACHE_SIZE):
        http = httpx.AsyncClient()
        clients.append(http)
        jwks = JwksCache(settings.jwks_url, http, clock=jwks_clock or Clock()) if settings.jwks_url else None
        cache = t.TokenCache(size=size, clock=wall or time.time)
        return TokenVerifier(settings, http, jwks=jwks, cache=cache)

    yield make_verifier
    for http in clients:
        await http.aclose()


async def test_a_token_is_verified_once_then_answered_from_the_cache(server, make):
    verifier = make(supabase_settings(server))
    iss = server.url + "/auth/v1"
    token = sign(claims(iss), SECRET, "HS256")
    first = await verifier.verify(token)
    again = await verifier.verify(token)
    assert again is first and (verifier.cache.hits, verifier.cache.misses) == (1, 1)
    other = await verifier.verify(sign(claims(iss, sub="someone-else"), SECRET, "HS256"))
    assert other.id == "someone-else" and verifier.cache.misses == 2


async def test_a_cached_principal_never_outlives_the_tokens_exp(server, make):
    wall = WallClock()
    verifier = make(supabase_settings(server), wall=wall)
    exp = int(wall.now) + 30
    token = sign(claims(server.url + "/auth/v1", exp=exp), SECRET, "HS256")
    await verifier.verify(token)
    wall.now = exp - 0.5
    await verifier.verify(token)
    assert verifier.cache.hits == 1
    wall.now = exp  # expired for the cache: verified in full again (PyJWT's own clock still accepts it)
    await verifier.verify(token)
    assert verifier.cache.hits == 1 and verifier.cache.misses == 2
    assert len(verifier.cache) == 0  # and not remembered again: it expires now


async def test_a_token_within_its_leeway_is_accepted_but_not_remembered(server, make):
    verifier = make(supabase_settings(server))
    token = sign(claims(server.url + "/auth/v1", exp=int(time.time()) - 5), SECRET, "HS256")
    assert (await verifier.verify(token)).id
    assert (await verifier.verify(token)).id
    assert len(verifier.cache) == 0 and verifier.cache.hits == 0


async def test_a_token_that_expires_later_is_remembered_for_cache_seconds_at_most(server, make):
    wall = WallClock()
    verifier = make(supabase_settings(server), wall=wall)
    token = sign(claims(server.url + "/auth/v1"), SECRET, "HS256")  # exp in an hour
    await verifier.verify(token)
    wall.now += t.CACHE_SECONDS - 1
    await verifier.verify(token)
    wall.now += 1
    await verifier.verify(token)
    assert (verifier.cache.hits, verifier.cache.misses) == (1, 2)


async def test_a_refusal_is_never_cached(server, make):
    jwks_clock = Clock()
    verifier = make(supabase_settings(server, supabase_jwt_secret=None), jwks_clock=jwks_clock)
    iss = server.url + "/auth/v1"
    bad = sign(claims(iss), SECRET, "HS256")
    for _ in range(3):
        assert await refused(verifier, bad) == t.ALG_NOT_ALLOWED
    assert len(verifier.cache) == 0 and verifier.cache.misses == 3
    # a token whose key the JWKS does not have yet is refused, then accepted once the key is published
    token = sign(claims(iss), ROTATED_RSA, "RS256", "rsa-2")
    assert await refused(verifier, token) == UNKNOWN_KEY
    server.keys.append(public_jwk(ROTATED_RSA, "rsa-2"))
    jwks_clock.advance(31)
    assert (await verifier.verify(token)).id and len(verifier.cache) == 1


async def test_a_jwks_token_is_cached_only_while_the_jwks_holds_its_key(server, make):
    jwks_clock = Clock()
    verifier = make(supabase_settings(server), jwks_clock=jwks_clock)
    token = sign(claims(server.url + "/auth/v1"), RSA, "RS256", "rsa-1")
    await verifier.verify(token)
    server.keys = [k for k in server.keys if k["kid"] != "rsa-1"]  # the project revokes rsa-1
    jwks_clock.advance(599)
    await verifier.verify(token)
    assert verifier.cache.hits == 1 and server.jwks_hits == 1
    jwks_clock.advance(1)  # the JWKS is past its max age: the cached token is checked against a new one
    assert await refused(verifier, token) == UNKNOWN_KEY
    assert server.jwks_hits == 2 and len(verifier.cache) == 0


async def test_the_cache_is_bounded_least_recently_used_first_and_keyed_by_sha256(server, make):
    verifier = make(supabase_settings(server), size=3)
    iss = server.url + "/auth/v1"
    tokens = [sign(claims(iss, sub=f"user-{i}"), SECRET, "HS256") for i in range(4)]
    for token in tokens[:3]:
        await verifier.verify(token)
    await verifier.verify(tokens[0])  # used again: now the most recent
    await verifier.verify(tokens[3])  # one too many: user-1's, the least recently used, goes
    assert len(verifier.cache) == 3
    keys = set(verifier.cache._entries)
    assert keys == {hashlib.sha256(tokens[i].encode()).digest() for i in (0, 2, 3)}
    hits = verifier.cache.hits
    await verifier.verify(tokens[1])
    assert verifier.cache.hits == hits  # verified again in full


async def test_dev_tokens_are_cached_too():
    settings = dev_settings()
    verifier = TokenVerifier(settings)
    token = issue_dev_token(settings, "ada@example.com")["access_token"]
    assert (await verifier.verify(token)).email == "ada@example.com"
    assert (await verifier.verify(token)).email == "ada@example.com"
    assert verifier.cache.hits == 1
    await verifier.aclose()
