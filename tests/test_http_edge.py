"""What every HTTP request gets around its route (backend/api/middleware.py `Edge`), over real HTTP.

Every answer carries `X-Request-Id` (the caller's if sane, else a new one), a 500 too, whose trace
is logged under it; a body past MAX_BODY_BYTES is 413 `payload_too_large` (by Content-Length, which
must be plain digits, or while it streams), the 413 by Content-Length with `Connection: close`;
each request is logged once at INFO (`method`, `path`, `route`, `status`, `ms`, `requestId`) and
counted by method, route template and status in /metrics. An action route's path is routed as
before (`GET /api/actions/x` is its 405 `Allow: POST`), and uvicorn parses HTTP with httptools.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from typing import Any

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from backend.api.app import create_app
from backend.composition import build_api
from backend.logs import request_id
from backend.settings import test_settings
from tests.support import OWNER, LiveServer, token

LIMIT = 1024
NEW_ID = re.compile(r"^[0-9a-hjkmnp-tv-z]{26}$")  # ids.py's Crockford base32, without the `req_` prefix


async def boom(request: Request) -> Response:
    raise RuntimeError("a bug")


@pytest.fixture
async def api():
    settings = test_settings(action_rate_limit=1000, max_body_bytes=LIMIT)
    app = build_api(settings)
    app.router.routes.append(Route("/api/test-boom", boom, methods=["GET"]))
    async with LiveServer(app, settings) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
            client.settings = settings
            yield client


class Records(logging.Handler):
    """The records logged, each with the request id current when it was logged."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.seen: list[tuple[logging.LogRecord, str | None]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.seen.append((record, request_id.get()))


@pytest.fixture
def records():
    handler = Records()
    loggers = [logging.getLogger(name) for name in ("tandem.http", "tandem.api")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.addHandler(handler)
        lg.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        for lg, level in zip(loggers, levels):
            lg.removeHandler(handler)
            lg.setLevel(level)


def bearer(api: httpx.AsyncClient) -> dict[str, str]:
    return {"authorization": f"Bearer {token(api.settings, OWNER)}"}


async def test_every_answer_carries_a_request_id_the_callers_if_sane(api):
    h = bearer(api)
    answers = [
        await api.get("/api/health"),
        await api.get("/api/nope"),  # 404
        await api.delete("/api/health"),  # 405
        await api.get("/api/me"),  # 401
        await api.post("/api/collaborations", content=b"x" * (LIMIT + 1), headers=h),  # 413
        await api.post("/api/actions/sendMessage", content=b"{", headers=h),  # 400
        await api.get("/api/test-boom"),  # 500
    ]
    assert [r.status_code for r in answers] == [200, 404, 405, 401, 413, 400, 500]
    ids = [r.headers["x-request-id"] for r in answers]
    assert all(NEW_ID.match(i) for i in ids), ids
    assert len(set(ids)) == len(ids)
    for given, kept in [
        ("abc-123", True),
        ("A.b_c:d-9", True),
        ("x" * 64, True),
        ("x" * 65, False),
        ("a b", False),
        ("é", False),
        ("a/b", False),
    ]:
        r = await api.get("/api/nope", headers={"x-request-id": given.encode("utf-8")})
        assert (r.headers["x-request-id"] == given) is kept, given
        assert kept or NEW_ID.match(r.headers["x-request-id"])
    r = await api.get("/api/test-boom", headers={"x-request-id": "boom-1"})
    assert r.status_code == 500 and r.headers["x-request-id"] == "boom-1"
    assert r.json() == {"error": {"code": "internal", "message": "Internal server error.", "details": {}}}


async def test_a_server_error_is_logged_under_its_request_id(api, records):
    r = await api.get("/api/test-boom", headers={"x-request-id": "boom-2"})
    assert r.status_code == 500
    errors = [(rec, rid) for rec, rid in records.seen if rec.getMessage() == "unhandled error"]
    assert len(errors) == 1
    record, rid = errors[0]
    assert rid == "boom-2" and record.exc_info and isinstance(record.exc_info[1], RuntimeError)
    logged = [rec for rec, _ in records.seen if rec.getMessage() == "request"]
    assert [(rec.status, rec.route) for rec in logged] == [(500, "/api/test-boom")]


async def test_each_request_is_logged_once_at_info_with_its_fields(api, records):
    r = await api.post(
        "/api/actions/sendMessage", json={"collaborationId": "col_x", "payload": {}}, headers={"x-request-id": "r-1"}
    )
    assert r.status_code == 401
    await api.get("/api/nope", headers={"x-request-id": "r-2"})
    logged = [(rec, rid) for rec, rid in records.seen if rec.name == "tandem.http"]
    assert [(rec.getMessage(), rid) for rec, rid in logged] == [("request", "r-1"), ("request", "r-2")]
    first, second = logged[0][0], logged[1][0]
    assert (first.method, first.path, first.route, first.status) == (
        "POST",
        "/api/actions/sendMessage",
        "/api/actions/{name}",
        401,
    )
    assert (second.method, second.path, second.route, second.status) == ("GET", "/api/nope", "unmatched", 404)
    assert isinstance(first.ms, float) and first.ms >= 0
    logging.getLogger("tandem.http").setLevel(logging.WARNING)
    await api.get("/api/health")
    assert len([rec for rec, _ in records.seen if rec.name == "tandem.http"]) == 2


async def test_requests_are_counted_by_method_route_template_and_status(api):
    h = bearer(api)
    for _ in range(2):
        await api.post(
            "/api/actions/sendMessage", json={"collaborationId": "col_nope", "payload": {"text": "hi"}}, headers=h
        )
    await api.get("/api/nope")
    await api.post("/api/collaborations", content=b"x" * (LIMIT + 1), headers=h)
    text = (await api.get("/metrics")).text
    assert 'tandem_http_requests_total{method="POST",route="/api/actions/{name}",status="404"} 2.0' in text
    assert 'tandem_http_requests_total{method="GET",route="unmatched",status="404"} 1.0' in text
    assert 'tandem_http_requests_total{method="POST",route="unmatched",status="413"} 1.0' in text
    assert 'tandem_http_request_seconds_count{route="/api/actions/{name}"} 2.0' in text
    assert 'tandem_actions_total{action="sendMessage",outcome="not_found"} 2.0' in text


async def test_bodies_past_the_limit_are_refused_by_length_or_while_they_stream(api):
    h = {**bearer(api), "content-type": "application/json"}
    body = b"x" * LIMIT
    r = await api.post("/api/collaborations", content=body, headers=h)
    assert r.status_code == 400  # exactly the limit is read (and is not JSON here: cut short)
    r = await api.post("/api/collaborations", content=body + b" ", headers=h)
    assert r.status_code == 413 and r.headers["connection"] == "close"
    assert r.json()["error"] == {
        "code": "payload_too_large",
        "message": f"The body is larger than {LIMIT} bytes.",
        "details": {"limit": LIMIT},
    }

    async def chunks():
        for _ in range(3):
            yield b"x" * (LIMIT // 2)

    r = await api.post("/api/actions/sendMessage", content=chunks(), headers=h)
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"


async def asgi_post(
    app: Any, headers: list[tuple[bytes, bytes]], chunks: list[bytes], path: str = "/api/collaborations"
) -> tuple[int, dict[bytes, bytes]]:
    """One request straight to the ASGI app (a Content-Length uvicorn would refuse before the app)."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }
    pending = list(chunks)
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if not pending:
            await asyncio.sleep(3600)
        chunk = pending.pop(0)
        return {"type": "http.request", "body": chunk, "more_body": bool(pending)}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start = sent[0]
    return start["status"], dict(start["headers"])


@pytest.mark.parametrize("length", [b"12a", b"-1", b" 5", b"", b"1" * 40, str(LIMIT + 1).encode()])
async def test_a_content_length_that_is_not_plain_digits_or_over_the_limit_is_413(length):
    settings = test_settings(max_body_bytes=LIMIT)
    app = create_app(settings)
    status, headers = await asgi_post(app, [(b"content-length", length)], [b"{}"])
    assert status == 413 and headers[b"connection"] == b"close" and NEW_ID.match(headers[b"x-request-id"].decode())


async def test_a_body_longer_than_its_content_length_is_still_counted():
    """Whatever Content-Length says, more than MAX_BODY_BYTES read is 413 (an ASGI server that passes it on)."""
    settings = test_settings(max_body_bytes=LIMIT)
    app = create_app(settings)
    status, _ = await asgi_post(app, [(b"content-length", b"2")], [b"{", b"x" * LIMIT], "/api/auth/dev-login")
    assert status == 413


async def test_the_413_by_length_carries_cors_headers_for_an_allowed_origin():
    origin = "https://spa.example"
    app = create_app(test_settings(max_body_bytes=LIMIT, cors_origins=(origin,)))
    status, headers = await asgi_post(
        app, [(b"origin", origin.encode()), (b"content-length", str(LIMIT + 1).encode())], [b"x"]
    )
    assert status == 413 and headers[b"access-control-allow-origin"] == origin.encode()
    assert b"x-request-id" in headers[b"access-control-expose-headers"].lower()


async def test_an_action_path_is_routed_as_before(api):
    r = await api.get("/api/actions/sendMessage")
    assert r.status_code == 405 and r.headers["allow"] == "POST"
    r = await api.post("/api/actions", json={})
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = await api.post("/api/actions/sendMessage/x", json={})
    assert r.status_code == 404


def test_uvicorn_parses_http_with_httptools_and_adds_no_layer_of_its_own():
    from backend.serve import uvicorn_config

    settings = test_settings()
    app = create_app(settings)
    config = uvicorn_config(app, settings, "127.0.0.1", 0)
    config.load()
    assert config.http_protocol_class.__module__ == "uvicorn.protocols.http.httptools_impl"
    assert config.loaded_app is app  # no ProxyHeadersMiddleware (nor any other wrapper) around the app
    assert config.server_header is False and config.access_log is False


async def test_forwarded_headers_change_nothing_tandem_answers(api):
    """Without uvicorn's proxy headers a forwarded address or scheme is not applied; nothing of
    Tandem's reads them: the answer is the same with and without them."""
    plain = await api.get("/api/config")
    forwarded = await api.get("/api/config", headers={"x-forwarded-for": "203.0.113.9", "x-forwarded-proto": "https"})
    assert plain.status_code == forwarded.status_code == 200 and plain.json() == forwarded.json()


async def test_an_action_body_in_several_chunks_is_read_whole(api):
    body = json.dumps({"collaborationId": None, "payload": {"title": "Chunked " + "t" * 150}}).encode()

    async def chunks():
        for i in range(0, len(body), 50):
            yield body[i : i + 50]

    r = await api.post("/api/actions/createCollaboration", content=chunks(), headers=bearer(api))
    assert r.status_code == 200, r.text
    cid = r.json()["collaborationId"]
    snapshot = (await api.get(f"/api/collaborations/{cid}", headers=bearer(api))).json()
    assert snapshot["title"] == "Chunked " + "t" * 150
    assert r.headers["content-type"] == "application/json" and int(r.headers["content-length"]) == len(r.content)
