"""Threat: input too big or too deep to handle, sent to exhaust memory, the stack or the CPU.

Over REST a body past MAX_BODY_BYTES is refused with 413 `payload_too_large` while it is read
(a chunked body without Content-Length too), JSON nested too deeply to decode is 400
`invalid_request` (never a RecursionError and a 500), and a message past MAX_MESSAGE_CHARS is 422
`validation_failed` at `payload.text`; nothing is written. Over the WebSocket a frame past
WS_MAX_FRAME_BYTES gets a `payload_too_large` error frame and the connection stays, one past
uvicorn's cap (4x) closes with 1009, and a frame too deep to decode gets an error frame (a first
frame: close 4401), never an unhandled exception.
"""

from __future__ import annotations

import httpx
import pytest

from backend.composition import build_api
from backend.settings import test_settings
from tests.realtime_support import live_server
from tests.support import EDITOR, OWNER, LiveServer
from tests.test_api import act, auth, create

LIMIT = 4096  # WS_MAX_FRAME_BYTES in these tests; uvicorn's own cap is 4x that


@pytest.fixture
async def api():
    settings = test_settings(action_rate_limit=1000, max_body_bytes=64 * 1024)
    async with LiveServer(build_api(settings), settings) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
            client.settings = settings
            yield client


@pytest.fixture
async def live():
    async with live_server(ws_max_frame_bytes=LIMIT, ws_rate_limit=200) as server:
        yield server


# -- REST ----------------------------------------------------------------------------------------


async def test_malformed_bodies_are_refused_and_nothing_is_written(api):
    h = {**auth(api, OWNER), "content-type": "application/json"}
    deep = b'{"title": ' + b"[" * 5000 + b"]" * 5000 + b"}"  # 10 KB, but too deep to decode
    for body in (b"{not json", b"[1,2]", b"", b'"text"', deep):
        r = await api.post("/api/collaborations", content=body, headers=h)
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_request", body[:40]
    r = await api.post("/api/actions/sendMessage", content=deep, headers=h)
    assert r.status_code == 400 and r.json()["error"]["message"] == "The body is nested too deeply."
    huge = b'{"title": "' + b"x" * (70 * 1024) + b'"}'
    r = await api.post("/api/collaborations", content=huge, headers=h)
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"

    async def chunks():
        for _ in range(80):
            yield b"x" * 1024

    r = await api.post("/api/collaborations", content=chunks(), headers=h)
    assert r.status_code == 413
    mine = (await api.get("/api/collaborations", headers=auth(api, OWNER))).json()["collaborations"]
    assert mine == []


@pytest.mark.parametrize("text", ["x" * 4001, "x" * 60_000, "€" * 4001])
async def test_a_message_over_the_limit_is_validation_failed_and_not_stored(api, text):
    cid = (await create(api))["id"]
    r = await act(api, OWNER, "sendMessage", cid, {"text": text})
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "validation_failed"
    assert error["details"]["fields"] == [{"path": "payload.text", "message": "Must be 1 to 4000 characters"}]
    page = (await api.get(f"/api/collaborations/{cid}/messages", headers=auth(api, OWNER))).json()
    assert page["messages"] == []
    r = await act(api, OWNER, "sendMessage", cid, {"text": "x" * 70_000})  # past the body limit: refused first
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"


# -- WebSocket -----------------------------------------------------------------------------------


async def test_a_frame_over_the_limit_gets_payload_too_large_and_the_connection_stays(live):
    client = await live.client(EDITOR)
    await client.send(type="ping", pad="x" * LIMIT)
    error = await client.expect("error")
    assert error["code"] == "payload_too_large" and error["details"]["limit"] == LIMIT
    await client.send(type="ping")
    await client.expect("pong")


async def test_a_frame_over_the_protocol_cap_closes_with_1009(live):
    client = await live.client(EDITOR, max_size=None)
    await client.send(type="ping", pad="x" * (4 * LIMIT + 1))
    assert await client.wait_closed() == 1009


async def test_a_first_frame_too_deep_to_decode_closes_with_4401(live):
    client = await live.client()
    await client.send_raw("[" * 3000)  # deeper than the JSON decoder goes: RecursionError, not a 1006
    assert await client.wait_closed() == 4401


@pytest.mark.parametrize(
    "frame, code, path",
    [
        ("[" * 3000, "invalid_request", None),  # too deep to decode: an error frame, not a 1011 close
        (
            '{"type": "presence", "collaborationId": "c", "state": {"a": ' + "[" * 1500 + "]" * 1500 + "}}",
            "invalid_request",
            None,
        ),
        (
            '{"type": "presence", "collaborationId": "c", "state": {"a": ' + "[" * 40 + "]" * 40 + "}}",
            "validation_failed",
            "state",
        ),  # decodable, but deeper than MAX_STATE_DEPTH
    ],
)
async def test_a_frame_nested_too_deeply_gets_an_error_and_the_connection_stays(live, frame, code, path):
    client = await live.client(EDITOR)
    await client.send_raw(frame)
    error = await client.expect("error")
    assert error["code"] == code, error
    if path is not None:
        assert error["details"]["fields"][0]["path"] == path
    await client.send(type="ping")
    await client.expect("pong")
