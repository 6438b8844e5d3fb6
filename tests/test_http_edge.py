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
import functools
import json
import logging
import re
import subprocess
import sys
from typing import Any

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from backend.api.app import create_app
from backend.composition import build_api
from backend.errors import InvalidRequest
from backend.logs import request_id
from backend.settings import test_settings
from tests.support import OWNER, LiveServer, token

LIMIT = 1024
NEW_ID = re.compile(r"^[0-9a-hjkmnp-tv-z]{26}$")  # ids.py's Crockford base32, without the `req_` prefix


async def boom(request: Request) -> Response:
    raise RuntimeError("a bug")


async def late_boom(request: Request) -> Response:
    """An error after the answer has begun: a bug, or one a handler would answer (too late)."""
    kind = request.query_params.get("kind")

    async def body():
        yield b"partial"
        raise InvalidRequest("too late") if kind == "handled" else RuntimeError("a late bug")

    return StreamingResponse(body())


@pytest.fixture
async def api():
    settings = test_settings(action_rate_limit=1000, max_body_bytes=LIMIT)
    app = build_api(settings)
    app.router.routes.append(Route("/api/test-boom", boom, methods=["GET"]))
    app.router.routes.append(Route("/api/test-late-boom", late_boom, methods=["GET"]))
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
    assert "connection" not in r.headers  # kept: the client, still sending, reads its answer


async def asgi_post(
    app: Any, headers: list[tuple[bytes, bytes]], chunks: list[bytes], path: str = "/api/collaborations"
) -> tuple[int, dict[bytes, bytes]]:
    """One request straight to the ASGI app (a Content-Length uvicorn would refuse before the app)."""
    scope = asgi_scope("POST", path, headers)
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


async def until(check: Any, seconds: float = 5.0) -> None:
    for _ in range(int(seconds / 0.02)):
        if check():
            return
        await asyncio.sleep(0.02)


@pytest.mark.parametrize("kind", ["bug", "handled"])
async def test_an_error_after_the_answer_began_is_logged_once_under_its_request_id(api, records, kind):
    with pytest.raises(httpx.HTTPError):  # the answer is cut short: the client sees a broken stream
        async with api.stream("GET", f"/api/test-late-boom?kind={kind}", headers={"x-request-id": "late-1"}) as r:
            assert r.status_code == 200 and r.headers["x-request-id"] == "late-1"
            await r.aread()
    await until(lambda: any(rec.name == "tandem.http" for rec, _ in records.seen))
    await asyncio.sleep(0.1)  # ServerErrorMiddleware, on the way out, logs nothing more
    errors = [(rec, rid) for rec, rid in records.seen if rec.getMessage() == "unhandled error"]
    assert [rid for _, rid in errors] == ["late-1"]
    assert errors[0][0].exc_info
    # A handled kind, too late: "Caught handled exception, but response already started."
    logged = errors[0][0].exc_info[1]
    assert isinstance(logged, RuntimeError) and isinstance(logged.__cause__, InvalidRequest) is (kind == "handled")
    assert [(rec.status, rid) for rec, rid in records.seen if rec.getMessage() == "request"] == [(200, "late-1")]


_ONCE = """
import asyncio, contextlib, sys
import httpx
from starlette.routing import Route
from backend.composition import build_api
from backend.logs import configure
from backend.settings import test_settings
from tests.support import LiveServer
from tests.test_http_edge import boom, late_boom

async def main():
    configure("INFO")
    settings = test_settings()
    app = build_api(settings)
    app.router.routes.append(Route("/api/test-boom", boom, methods=["GET"]))
    app.router.routes.append(Route("/api/test-late-boom", late_boom, methods=["GET"]))
    async with LiveServer(app, settings) as server:
        async with httpx.AsyncClient(base_url=server.url) as client:
            with contextlib.suppress(httpx.HTTPError):
                await client.get(sys.argv[1], headers={"x-request-id": "once-1"})
            await asyncio.sleep(0.2)

asyncio.run(main())
"""


@pytest.mark.parametrize("path", ["/api/test-boom", "/api/test-late-boom?kind=bug"])
def test_an_unhandled_errors_trace_is_in_the_log_once(path):
    """`tandem api`'s JSON log, a real uvicorn: Tandem's `unhandled error` under the request id, and
    not uvicorn's "Exception in ASGI application" for the same exception besides."""
    done = subprocess.run([sys.executable, "-c", _ONCE, path], capture_output=True, text=True, timeout=60)
    entries = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    traces = [entry for entry in entries if "exc" in entry]
    assert len(traces) == 1, [entry["msg"] for entry in traces]
    assert traces[0]["msg"] == "unhandled error" and traces[0]["requestId"] == "once-1"


async def test_a_client_gone_mid_body_is_logged_and_counted_as_499_without_a_trace(api, records):
    """A client that closes its connection before its body is all there: no answer, no `unhandled
    error`, nothing at ERROR; the access log and the metrics say 499, as Nginx's do."""
    uvicorn_errors = Records()
    logging.getLogger("uvicorn.error").addHandler(uvicorn_errors)
    try:
        port = api.base_url.port
        for path in ("/api/actions/createCollaboration", "/api/collaborations"):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(
                f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: {bearer(api)['authorization']}\r\n"
                'Content-Type: application/json\r\nContent-Length: 100\r\nX-Request-Id: gone-1\r\n\r\n{"payl'.encode()
            )
            await writer.drain()
            await asyncio.sleep(0.1)
            writer.close()
            await until(lambda: sum(rec.name == "tandem.http" for rec, _ in records.seen) >= 1)
            assert await reader.read() == b""  # no answer
            logged = [(rec.status, rid) for rec, rid in records.seen if rec.name == "tandem.http"]
            assert logged == [(499, "gone-1")]
            records.seen.clear()
        await asyncio.sleep(0.1)
        assert not [rec for rec, _ in uvicorn_errors.seen if rec.levelno >= logging.ERROR]
        text = (await api.get("/metrics")).text
        assert 'tandem_http_requests_total{method="POST",route="/api/actions/{name}",status="499"} 1.0' in text
        assert 'tandem_http_requests_total{method="POST",route="/api/collaborations",status="499"} 1.0' in text
        assert 'status="500"' not in text
    finally:
        logging.getLogger("uvicorn.error").removeHandler(uvicorn_errors)


def asgi_scope(method: str, path: str, headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }


async def asgi_call(app: Any, scope: dict[str, Any], messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    pending = list(messages)
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return pending.pop(0) if pending else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


async def test_the_http_disconnect_message_mid_body_is_a_quiet_499(records):
    settings = test_settings()
    app = create_app(settings)
    scope = asgi_scope("POST", "/api/auth/dev-login", [(b"content-length", b"50"), (b"x-request-id", b"gone-2")])
    sent = await asgi_call(
        app, scope, [{"type": "http.request", "body": b"{", "more_body": True}, {"type": "http.disconnect"}]
    )
    assert sent == []
    assert [(rec.getMessage(), rec.status, rid) for rec, rid in records.seen] == [("request", 499, "gone-2")]


async def test_a_request_id_with_a_trailing_newline_is_not_echoed():
    app = create_app(test_settings())
    for given in (b"abc\n", b"abc\r\n", b"\nabc"):
        sent = await asgi_call(app, asgi_scope("GET", "/api/health", [(b"x-request-id", given)]), [])
        echoed = dict(sent[0]["headers"])[b"x-request-id"].decode()
        assert NEW_ID.match(echoed), (given, echoed)


async def test_headers_past_64_kib_are_refused_with_431(api):
    r = await api.get("/api/health", headers={"x-pad": "a" * (60 * 1024)})
    assert r.status_code == 200
    r = await api.get("/api/health", headers={"x-pad": "a" * (64 * 1024), "x-request-id": "big-1"})
    assert r.status_code == 431 and r.headers["connection"] == "close" and r.headers["x-request-id"] == "big-1"
    assert r.json()["error"] == {
        "code": "headers_too_large",
        "message": "The request headers are too large.",
        "details": {"limit": 64 * 1024},
    }
    r = await api.get("/api/health", headers={f"x-pad-{i}": "a" * 1024 for i in range(70)})
    assert r.status_code == 431
    r = await api.get("/api/health", headers={f"x{i}": "" for i in range(2100)})  # many empty ones count too
    assert r.status_code == 431


class Teapot(Exception):
    pass


async def teapot(request: Request) -> Response:
    raise Teapot()


def sync_teapot(request: Request, exc: Exception, status: int = 418) -> Response:
    return JSONResponse({"teapot": True, "path": request.url.path}, status_code=status)


@pytest.mark.parametrize("handler", [sync_teapot, functools.partial(sync_teapot, status=418)])
async def test_a_sync_exception_handler_runs_as_starlettes_does(handler):
    app = create_app(test_settings(), extra_routes=[Route("/t/teapot", teapot)])
    app.add_exception_handler(Teapot, handler)
    sent = await asgi_call(app, asgi_scope("GET", "/t/teapot", []), [{"type": "http.request", "body": b""}])
    assert sent[0]["status"] == 418 and json.loads(sent[1]["body"]) == {"teapot": True, "path": "/t/teapot"}
