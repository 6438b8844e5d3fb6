"""nginx/nginx.conf.template, rendered and run by the real Nginx in front of the real API.

What Nginx answers itself must look like the API: its 413 is the API's 413 for
the same MAX_BODY_BYTES, its 503 (on /api/ and /ws) keeps every security header, and /metrics is
not public. It finds the API by its DNS name at request time (a fake DNS server
stands in for Docker's). Needs the `nginx` binary (Debian's package; `make test` installs it).
The browser tests (frontend/e2e/nginx.test.mjs) cover the SPA side.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import re
import shutil
import socket
import struct
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import AsyncIterator

import httpx
import pytest
from websockets.asyncio.client import connect as ws_connect

from backend.composition import build_api
from backend.settings import test_settings
from tests.support import LiveServer, token

ROOT = Path(__file__).resolve().parent.parent
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)

pytestmark = pytest.mark.skipif(NGINX is None, reason="nginx binary not installed (apt-get install -y nginx)")

_spec = importlib.util.spec_from_file_location("nginx_render", ROOT / "nginx" / "render.py")
nginx_render = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(nginx_render)  # type: ignore[union-attr]  # spec_from_file_location of an existing file has a loader

SECURITY_HEADERS = (
    "x-content-type-options",
    "x-frame-options",
    "referrer-policy",
    "permissions-policy",
    "content-security-policy",
)


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
        self.proc = subprocess.Popen(
            [NGINX, "-e", "stderr", "-p", str(self.conf.parent), "-c", str(self.conf)], stderr=subprocess.PIPE
        )
        async with httpx.AsyncClient() as client:
            for _ in range(100):
                if self.proc.poll() is not None:
                    raise RuntimeError(f"nginx exited: {self.proc.stderr.read().decode()}")  # type: ignore[union-attr]  # Popen with stderr=PIPE
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


class FakeDns:
    """A DNS server on 127.0.0.1 (UDP) answering A queries from `records`, as Docker's 127.0.0.11
    answers for a service's containers; a name not there is NXDOMAIN. Counts the queries."""

    def __init__(self) -> None:
        self.records: dict[str, list[str]] = {}
        self.queries = 0
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.settimeout(0.1)
        self.port = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> "FakeDns":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sock.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self._sock.recvfrom(512)
            except TimeoutError:
                continue
            self.queries += 1
            self._sock.sendto(self._answer(data), peer)

    def _answer(self, query: bytes) -> bytes:
        labels, at = [], 12
        while query[at]:
            labels.append(query[at + 1 : at + 1 + query[at]].decode())
            at += 1 + query[at]
        qtype = struct.unpack(">H", query[at + 1 : at + 3])[0]
        question = query[12 : at + 5]
        addresses = self.records.get(".".join(labels).lower())
        rcode = 3 if addresses is None else 0
        answers = [
            b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 1, 4) + socket.inet_aton(ip)
            for ip in (addresses or [])
            if qtype == 1
        ]
        header = query[:2] + struct.pack(">HHHHH", 0x8180 | rcode, 1, len(answers), 0, 0)
        return header + question + b"".join(answers)


async def wait_for_status(client: httpx.AsyncClient, url: str, status: int, seconds: float = 10) -> httpx.Response:
    for _ in range(int(seconds / 0.1)):
        response = await client.get(url)
        if response.status_code == status:
            return response
        await asyncio.sleep(0.1)
    raise AssertionError(f"GET {url}: still {response.status_code}, expected {status}")


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


async def test_nginx_looks_the_api_up_while_it_runs_not_once_at_start(tmp_path: Path) -> None:
    """After `--scale api=N`, or an API container back with a new address, Nginx must follow
    the DNS answer: here the name first does not exist, then points at the API, then is gone."""
    settings = test_settings()
    with FakeDns() as dns:
        async with LiveServer(build_api(settings), settings) as server:
            api_port = server.url.rsplit(":", 1)[1]
            # Not resolvable yet: Nginx starts all the same (a static upstream would refuse to).
            async with Nginx(
                tmp_path, f"api.tandem.test:{api_port}", resolver=f"127.0.0.1:{dns.port} valid=1s"
            ) as nginx:
                async with httpx.AsyncClient() as client:
                    before = await client.get(nginx.url + "/api/health")
                    assert before.status_code == 503
                    assert before.json()["error"]["code"] == "unavailable"

                    dns.records["api.tandem.test"] = ["127.0.0.1"]
                    up = await wait_for_status(client, nginx.url + "/api/health", 200)
                    assert up.headers["content-type"].startswith("application/json")

                    # The WebSocket goes through the looked-up address too.
                    ws_url = nginx.url.replace("http://", "ws://") + "/ws"
                    async with ws_connect(ws_url) as ws:
                        await ws.send(json.dumps({"type": "auth", "token": token(settings, "ann@example.com")}))
                        assert json.loads(await asyncio.wait_for(ws.recv(), 5))["type"] == "ready"

                    queries = dns.queries
                    del dns.records["api.tandem.test"]  # the container went away
                    gone = await wait_for_status(client, nginx.url + "/api/health", 503)
                    assert gone.json()["error"]["code"] == "unavailable"
                    assert dns.queries > queries


async def test_ws_with_the_api_down_is_the_same_json_503(tmp_path: Path) -> None:
    async with Nginx(tmp_path, f"127.0.0.1:{free_port()}") as nginx:  # nothing listens there
        async with httpx.AsyncClient() as client:
            page = await client.get(nginx.url + "/")
            api = await client.get(nginx.url + "/api/health")
            ws = await client.get(
                nginx.url + "/ws",
                headers={
                    "Connection": "Upgrade",
                    "Upgrade": "websocket",
                    "Sec-WebSocket-Version": "13",
                    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
                },
            )
    assert ws.status_code == 503
    assert ws.headers["content-type"] == "application/json"
    assert (
        ws.json()
        == api.json()
        == {"error": {"code": "unavailable", "message": "The API is not reachable right now.", "details": {}}}
    )
    assert ws.headers["retry-after"] == "5"
    for name in SECURITY_HEADERS:
        assert ws.headers.get(name) == page.headers[name], name


def test_render_takes_the_resolver_from_resolv_conf(tmp_path: Path) -> None:
    conf = tmp_path / "resolv.conf"
    conf.write_text("# generated\nsearch example.com\nnameserver 10.0.0.2\nnameserver 10.0.0.3\n")
    assert nginx_render.system_resolver(conf) == "10.0.0.2"
    conf.write_text("nameserver ::1\n")
    assert nginx_render.system_resolver(conf) == "[::1]"
    assert nginx_render.system_resolver(tmp_path / "missing") == "127.0.0.1"


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
    assert image_env["NGINX_RESOLVER"] == '"127.0.0.11 valid=10s"'  # Docker's embedded DNS
