"""`tandem dev` serving the built SPA over a real uvicorn: files, the history fallback, and
the API's own paths (api, ws, metrics) kept out of it."""

from __future__ import annotations

from pathlib import Path
from typing import AsyncIterator

import httpx
import pytest

from backend.composition import build_dev
from backend.settings import test_settings
from tests.support import LiveServer

INDEX = '<!doctype html><div id="root"></div>\n'


@pytest.fixture
async def dev(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    dist = tmp_path / "dist"
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_text(INDEX)
    (dist / "assets" / "app-1234.js").write_text("console.log(1)\n")
    settings = test_settings()
    app, _ = build_dev(settings, dist, seed=False)
    async with LiveServer(app, settings) as server, httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        yield client


@pytest.mark.parametrize(
    "path",
    ["/", "/collaborations/col_1", "/approvals", "/wsx", "/ws-help", "/wsapp/page", "/apis", "/api-docs", "/metricsx"],
)
async def test_spa_routes_get_index_html(dev: httpx.AsyncClient, path: str) -> None:
    response = await dev.get(path)
    assert response.status_code == 200, path
    assert response.text == INDEX
    assert response.headers["cache-control"] == "no-cache"


@pytest.mark.parametrize("path", ["/api", "/api/", "/api/nope", "/ws", "/ws/", "/ws/anything", "/assets/missing.js"])
async def test_the_apis_paths_and_missing_assets_are_404s_not_the_spa(dev: httpx.AsyncClient, path: str) -> None:
    response = await dev.get(path)
    assert response.status_code == 404, path
    assert response.json()["error"]["code"] == "not_found"


async def test_hashed_assets_are_served_immutable(dev: httpx.AsyncClient) -> None:
    response = await dev.get("/assets/app-1234.js")
    assert response.status_code == 200 and response.text == "console.log(1)\n"
    assert response.headers["cache-control"] == "public, max-age=31536000, immutable"


@pytest.mark.parametrize(
    "method,path,allow",
    [
        ("GET", "/api/actions/sendMessage", "POST"),
        ("GET", "/api/auth/dev-login", "POST"),
        ("OPTIONS", "/api/auth/dev-login", "POST"),
        ("DELETE", "/api/collaborations", "GET, HEAD, POST"),
    ],
)
async def test_a_method_an_api_path_lacks_is_its_405_not_the_spas(
    dev: httpx.AsyncClient, method: str, path: str, allow: str
) -> None:
    # The SPA's catch-all GET route answered these with 404 (or its own `Allow: GET, HEAD`).
    response = await dev.request(method, path)
    assert response.status_code == 405, (method, path)
    assert response.json()["error"]["code"] == "invalid_request"
    assert response.headers["allow"] == allow
