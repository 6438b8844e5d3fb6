"""Shared pytest fixtures, one section per area of the code. Add yours in a section of its own."""

from __future__ import annotations

import os
import secrets
from typing import AsyncIterator

import pytest

from backend.settings import test_settings
from backend.store import embedded
from backend.store.client import Database, open_database
from backend.store.indexes import ensure_indexes

# -- store (backend/store) ------------------------------------------------------------------------
# store_handle       a fresh embedded database with every index, per test
# real_store_handle  a fresh database on MONGODB_URI (a replica set), dropped after; skipped without it
# any_store_handle   the test runs twice: on the embedded store and on real MongoDB

REAL_MONGODB_SKIPPED = "MONGODB_URI not set: real-MongoDB test skipped"

# every read of a kept UTC-aware form first checks it against its stored document: a reader of
# `find_one_shared` (the engine's `get_shared`) that changed what it was lent fails the test
embedded.CHECK_SHARED_FORMS = True


@pytest.fixture
async def store_handle() -> AsyncIterator[Database]:
    handle = await open_database(test_settings())
    await ensure_indexes(handle.db)
    yield handle
    await handle.close()


@pytest.fixture
async def real_store_handle() -> AsyncIterator[Database]:
    uri = os.environ.get("MONGODB_URI")  # tests only: the app reads settings through load_settings()
    if not uri:
        pytest.skip(REAL_MONGODB_SKIPPED)
    name = f"tandem_test_{secrets.token_hex(6)}"
    handle = await open_database(test_settings(mongodb_uri=uri, mongodb_db=name))
    try:
        await ensure_indexes(handle.db)
        yield handle
    finally:
        await handle.client.drop_database(name)
        await handle.close()


@pytest.fixture(params=["embedded", pytest.param("mongodb", marks=pytest.mark.mongodb)])
def any_store_handle(request: pytest.FixtureRequest) -> Database:
    return request.getfixturevalue("store_handle" if request.param == "embedded" else "real_store_handle")


# -- auth (backend/auth) ---------------------------------------------------------------------------
# auth_server    one fake Supabase Auth (tests/auth_keys.py AuthServer) on 127.0.0.1 per test module
# server         that server, reset, its JWKS publishing tests/auth_keys.py PROJECT_KEYS
# make_verifier  make(settings, clock=None) -> a TokenVerifier with its own httpx client (closed after)


@pytest.fixture(scope="module")
def auth_server():
    from tests.auth_keys import AuthServer

    with AuthServer() as server:
        yield server


@pytest.fixture
def server(auth_server):
    from tests.auth_keys import PROJECT_KEYS, public_jwk

    auth_server.reset()
    auth_server.keys = [public_jwk(key, kid) for kid, key in PROJECT_KEYS]
    return auth_server


@pytest.fixture
async def make_verifier():
    import httpx

    from backend.auth import JwksCache, TokenVerifier
    from tests.auth_keys import Clock

    clients: list[httpx.AsyncClient] = []

    def make(settings, clock=None):
        http = httpx.AsyncClient()
        clients.append(http)
        jwks = JwksCache(settings.jwks_url, http, clock=clock or Clock()) if settings.jwks_url else None
        return TokenVerifier(settings, http, jwks=jwks)

    yield make
    for http in clients:
        await http.aclose()


# -- runtime (backend/runtime.py) ---------------------------------------------------------------------
# runtime           a Runtime on a fresh embedded store, closed after; its settings are `runtime_settings`
# runtime_settings  test_settings(); a module overrides this fixture for settings of its own


@pytest.fixture
def runtime_settings():
    return test_settings()


@pytest.fixture
async def runtime(runtime_settings):
    from backend.runtime import Runtime

    rt = await Runtime.open(runtime_settings)
    yield rt
    await rt.close()
