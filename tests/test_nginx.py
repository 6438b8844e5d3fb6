"""nginx/nginx.conf.template, rendered and run by the real Nginx in front of the real API.

What Nginx answers itself must look like the API: its 413 is the API's 413 for
the same MAX_BODY_BYTES, its 503 keeps every security header, and /metrics is
not public. Needs the `nginx` binary (Debian's package; `make test` installs it).
The browser tests (frontend/e2e/nginx.test.mjs) cover the SPA side.
"""

from __future__ import annotations

import asyncio
import importlib.util
import re
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from typing import AsyncIterator

import httpx
import pytest

from backend.app import build_api
from backend.settings import test_settings
from tests.support import LiveServer

ROOT = Path(__file__).resolve().parent.parent
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)

pytestmark = pytest.mark.skipif(NGINX is None, reason="nginx binary not installed (apt-get install -y nginx)")

_spec = importlib.util.spec_from_file_location("nginx_render", ROOT / "nginx" / "render.py")
nginx_render = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(nginx_render)  # type: ignore[union-attr]

SECURITY_HEADERS = ("x-content-type-options", "x-frame-options", "referrer-policy", "permissions-policy",
                    "content-security-policy")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Nginx:
    def __init__(self, tmp_path: Path, upstream: str, **options: object):
        # Run as root, Nginx's workers are `nobody`: the SPA root must be readable by anyone,
        # and pytest's tmp_path (under a 0700 directory) is not.
        self._root = tempfile.TemporaryDirectory(prefix="tandem-nginx-root-")
        root = Path(self._root.name)
        root.chmod(0o755)
        (root / "index.html").write_text('<!doctype html><div id="root"></div>\n')
        (root / "index.html").chmod(0o644)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.conf = nginx_render.render(tmp_path / "nginx", port=self.port, upstream=upstream, root=root, **options)
        self.proc: subprocess.Popen[bytes] | None = None

    async def __aenter__(self) -> "Nginx":
        self.proc = subprocess.Popen([NGINX, "-e", "stderr", "-p", str(self.conf.parent), "-c", str(self.conf)],
                                     stderr=subprocess.PIPE)
        async with httpx.AsyncClient() as client:
            for _ in range(100):
                if self.proc.poll() is not None:
                    raise RuntimeError(f"nginx exited: {self.proc.stderr.read().decode()}")  # type: ignore[union-attr]
                try:
                    await client.get(self.url + "/")
                    return self
                except httpx.TransportError:
                    await asyncio.sleep(0.05)
        raise RuntimeError(f"nginx did not answer on {self.url}")

    async def __aexit__(self, *exc: object) -> None:
        assert self.proc is not None
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self._root.cleanup()


@pytest.fixture
async def api_behind_nginx(tmp_path: Path) -> AsyncIterator[tuple[str, str]]:
    """(API url, Nginx url), both with MAX_BODY_BYTES=4096."""
    settings = test_settings(max_body_bytes=4096)
    async with LiveServer(build_api(settings), settings) as server:
        async with Nginx(tmp_path, server.url.removeprefix("http://"), max_body_bytes=4096) as nginx:
            yield server.url, nginx.url


async def test_nginx_413_is_the_apis_413_for_the_same_limit(api_behind_nginx: tuple[str, str]) -> None:
    api_url, nginx_url = api_behind_nginx
    headers = {"content-type": "application/json"}
    async with httpx.AsyncClient() as client:
        from_api = await client.post(api_url + "/api/actions/sendMessage", content=b"x" * 4097, headers=headers)
        from_nginx = await client.post(nginx_url + "/api/actions/sendMessage", content=b"x" * 4097, headers=headers)
        # Exactly the limit passes Nginx and reaches the API (which wants a token first).
        at_limit = await client.post(nginx_url + "/api/actions/sendMessage", content=b"x" * 4096, headers=headers)
    assert from_api.status_code == 413 and from_nginx.status_code == 413
    assert from_nginx.headers["server"] == "nginx"  # refused by Nginx itself, not passed on
    assert from_nginx.headers["content-type"] == "application/json"
    assert from_nginx.json() == from_api.json()
    assert from_nginx.json()["error"]["details"] == {"limit": 4096}
    assert at_limit.status_code == 401


async def test_metrics_are_not_public_through_nginx(api_behind_nginx: tuple[str, str]) -> None:
    api_url, nginx_url = api_behind_nginx
    async with httpx.AsyncClient() as client:
        direct = await client.get(api_url + "/metrics")
        through = await client.get(nginx_url + "/metrics")
    assert direct.status_code == 200 and "tandem_http_requests_total" in direct.text
    assert through.status_code == 404
    assert through.json()["error"]["code"] == "not_found"
    assert "tandem_" not in through.text


async def test_unreachable_api_is_503_in_the_api_shape_with_every_security_header(tmp_path: Path) -> None:
    async with Nginx(tmp_path, f"127.0.0.1:{free_port()}") as nginx:  # nothing listens there
        async with httpx.AsyncClient() as client:
            page = await client.get(nginx.url + "/")
            down = await client.get(nginx.url + "/api/health")
    assert page.status_code == 200
    assert down.status_code == 503
    assert down.json()["error"]["code"] == "unavailable"
    assert down.headers["retry-after"] == "5"
    for name in SECURITY_HEADERS:
        assert down.headers.get(name) == page.headers[name], name


def test_render_defaults_the_body_limit_to_the_apis_default(tmp_path: Path) -> None:
    (tmp_path / "dist").mkdir()
    (tmp_path / "dist" / "index.html").write_text("")
    conf = nginx_render.render(tmp_path / "n", port=8080, upstream="api:8000", root=tmp_path / "dist").read_text()
    default = str(test_settings().max_body_bytes)
    assert f"client_max_body_size {default};" in conf
    assert f"client_body_buffer_size {default};" in conf
    assert f'"details": {{"limit": {default}}}' in conf
    with pytest.raises(ValueError, match="MAX_BODY_BYTES"):
        nginx_render.render(tmp_path / "n", port=8080, upstream="api:8000", root=tmp_path / "dist", max_body_bytes="1m")


def test_the_frontend_image_sets_every_placeholder_of_the_template() -> None:
    """The image's envsubst renders only variables that are set: an unset one would stay `${NAME}`."""
    dockerfile = (ROOT / "docker" / "frontend.Dockerfile").read_text()
    env_block = re.search(r"^ENV (.*?)(?=^\S)", dockerfile, re.M | re.S)
    assert env_block is not None
    image_env = dict(re.findall(r"([A-Z][A-Z0-9_]*)=(\"[^\"]*\"|\S+)", env_block.group(1)))
    placeholders = set(nginx_render.PLACEHOLDER.findall(nginx_render.TEMPLATE.read_text()))
    assert placeholders <= set(image_env), sorted(placeholders - set(image_env))
    assert image_env["MAX_BODY_BYTES"] == str(test_settings().max_body_bytes)
    assert set(nginx_render.DEFAULTS) | {"NGINX_PORT", "API_UPSTREAM", "SPA_ROOT"} >= placeholders
