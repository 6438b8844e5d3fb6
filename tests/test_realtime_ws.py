"""The /ws protocol over a real uvicorn on 127.0.0.1 with a real `websockets` client:
auth, subscribe/unsubscribe, errors for every malformed frame, limits, tokens, shutdown."""

from __future__ import annotations

import asyncio
import socket
import time

import jwt
import pytest

from backend.auth.dev_tokens import dev_user_id, issue_dev_token
from tests.auth_keys import claims, closed_port_url, rsa_key, sign
from tests.realtime_support import Client, Copy, live_server
from tests.support import EDITOR, OWNER, VIEWER

LIMIT = 4096  # WS_MAX_FRAME_BYTES in these tests; uvicorn's own cap is 4x that


@pytest.fixture
async def live():
    async with live_server(ws_max_frame_bytes=LIMIT, ws_rate_limit=200) as server:
        yield server


async def team(live) -> str:
    cid = await live.create(OWNER)
    await live.act(OWNER, "addMember", cid, {"email": EDITOR, "role": "editor"})
    await live.act(OWNER, "addMember", cid, {"email": VIEWER, "role": "viewer"})
    return cid


# -- auth ------------------------------------------------------------------------------------------


async def test_auth_then_ready(live):
    client = await live.client()
    ready = await client.auth(live.token(EDITOR))
    assert ready["userId"] == dev_user_id(EDITOR)
    assert ready["connectionId"].startswith("con_")
    await client.send(type="ping")
    assert await client.expect("pong") == {"type": "pong"}
    await client.close()


@pytest.mark.parametrize(
    "first",
    [
        '{"type": "auth", "token": "not-a-token"}',
        '{"type": "ping"}',
        "hello",
        '{"type": "auth"}',
    ],
)
async def test_a_bad_first_frame_closes_with_4401(live, first):
    client = await live.client()
    await client.send_raw(first)
    assert await client.wait_closed() == 4401


async def test_a_token_signed_with_another_secret_closes_with_4401(live):
    claims = jwt.decode(live.token(EDITOR), options={"verify_signature": False})
    forged = jwt.encode(claims, "another-secret-" + "y" * 40, algorithm="HS256")
    client = await live.client()
    await client.send(type="auth", token=forged)
    assert await client.wait_closed() == 4401


async def test_no_auth_in_time_closes_with_4408():
    async with live_server(ws_auth_timeout=0.3) as live:
        client = await live.client()
        started = time.monotonic()
        assert await client.wait_closed() == 4408
        assert 0.25 < time.monotonic() - started < 3


# -- subscriptions ---------------------------------------------------------------------------------


async def test_subscribe_gives_subscribed_snapshot_and_presence(live):
    cid = await team(live)
    await live.act(EDITOR, "sendMessage", cid, {"text": "hello"})
    client = await live.client(VIEWER)
    subscribed = await client.subscribe(cid)
    assert subscribed == {"type": "subscribed", "collaborationId": cid, "version": 3, "seq": 4}
    snapshot = await client.expect("snapshot")
    assert snapshot["version"] == 3 and snapshot["collaboration"] == await live.snapshot(VIEWER, cid)
    assert "_id" not in snapshot["collaboration"] and snapshot["collaboration"]["createdAt"].endswith("Z")
    assert [m["text"] for m in snapshot["messages"]] == ["hello"]
    assert (await client.expect("presence")) == {"type": "presence", "collaborationId": cid, "members": []}
    await live.act(EDITOR, "updateDetails", cid, {"title": "Renamed"})
    update = await client.expect("collaboration_updated")
    assert update["version"] == 4 and update["action"] == "updateDetails" and update["at"].endswith("Z")
    assert update["actor"] == {"type": "user", "id": dev_user_id(EDITOR)}
    assert update["changes"]["updatedFields"]["title"] == "Renamed"
    await client.close()


async def test_snapshot_holds_the_latest_50_messages(live):
    cid = await team(live)
    for i in range(55):
        await live.runtime.engine.run("sendMessage", _user(EDITOR), cid, {"text": f"m{i}"})
    client = await live.client(OWNER)
    await client.subscribe(cid)
    snapshot = await client.expect("snapshot")
    assert [m["text"] for m in snapshot["messages"]] == [f"m{i}" for i in range(5, 55)]


def _user(email):
    from tests.support import user

    return user(email)


async def test_unsubscribe_stops_events(live):
    cid = await team(live)
    client = await live.client(EDITOR)
    await client.subscribe(cid)
    await client.until("presence")
    await client.send(type="unsubscribe", collaborationId=cid)
    assert await client.expect("unsubscribed") == {"type": "unsubscribed", "collaborationId": cid}
    await live.act(OWNER, "updateDetails", cid, {"title": "x"})
    assert await client.quiet() == []


async def test_subscribing_again_replaces_the_subscription(live):
    cid = await team(live)
    client = await live.client(EDITOR)
    await client.subscribe(cid)
    await client.until("presence")
    await client.subscribe(cid, sinceVersion=3)
    await client.until("presence")
    await live.act(OWNER, "updateDetails", cid, {"title": "once"})
    update = await client.expect("collaboration_updated")
    assert update["version"] == 4
    assert await client.quiet() == []  # once, not twice


async def test_since_version_catches_up_without_a_snapshot(live):
    cid = await team(live)
    client = await live.client(EDITOR)
    copy = Copy()
    await client.subscribe(cid)
    copy.apply(await client.expect("snapshot"))
    await client.close()
    await live.act(OWNER, "updateDetails", cid, {"title": "while away"})
    await live.act(EDITOR, "proposeActivity", cid, {"title": "Hike"})
    sent = await live.act(EDITOR, "sendMessage", cid, {"text": "missed"})
    assert sent["version"] == 5
    client = await live.client(EDITOR)
    copy.apply(await client.subscribe(cid, **copy.since()))
    frames = [await client.next() for _ in range(4)]
    assert [f["type"] for f in frames] == [
        "collaboration_updated",
        "collaboration_updated",
        "message_created",
        "presence",
    ]
    for frame in frames:
        copy.apply(frame)
    assert copy.doc == await live.snapshot(EDITOR, cid) and copy.snapshots == 1
    assert [m["text"] for m in copy.messages.values()] == ["missed"]


async def test_since_version_beyond_the_history_gets_a_snapshot():
    async with live_server(hub_history=2) as live:
        cid = await team(live)
        for i in range(4):
            await live.act(OWNER, "updateDetails", cid, {"title": f"t{i}"})
        client = await live.client(EDITOR)
        assert (await client.subscribe(cid, sinceVersion=2))["version"] == 7
        snapshot = await client.expect("snapshot")
        assert snapshot["collaboration"]["title"] == "t3"
        await client.expect("presence")
        await client.subscribe(cid, sinceVersion=5)  # 6 and 7 are still held
        assert [(await client.until("collaboration_updated"))["version"] for _ in range(2)] == [6, 7]


async def test_since_version_from_the_future_gets_a_snapshot(live):
    cid = await team(live)
    client = await live.client(EDITOR)
    await client.subscribe(cid, sinceVersion=99)
    assert (await client.expect("snapshot"))["version"] == 3


# -- what a connection may queue -------------------------------------------------------------------


async def test_a_catch_up_larger_than_the_connections_queue_gets_a_snapshot_instead():
    async with live_server(ws_queue_bytes=16_384) as live:
        cid = await team(live)
        for i in range(6):  # six updates of ~4 KB each: more than the 16 KB a connection may queue
            await live.act(OWNER, "updateDetails", cid, {"description": f"{i} " + "d" * 4000})
        client = await live.client(EDITOR)
        assert (await client.subscribe(cid, sinceVersion=3))["version"] == 9
        assert (await client.expect("snapshot"))["version"] == 9
        await client.expect("presence")
        await client.subscribe(cid, sinceVersion=7)  # two of them fit: the events
        assert [(await client.until("collaboration_updated"))["version"] for _ in range(2)] == [8, 9]


async def test_snapshots_larger_than_the_connections_queue_reach_a_client_that_reads_slowly():
    async with live_server(ws_queue_bytes=16_384) as live:
        cid = await team(live)
        for i in range(40):  # ~200 KB: each snapshot is twelve times what the connection may queue
            await live.runtime.engine.run(
                "proposeActivity", _user(OWNER), cid, {"title": f"a{i}", "description": "d" * 5000}
            )
        host, port = live.server.url.split("//")[1].split(":")
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a small window: the server has to queue
        sock.connect((host, int(port)))
        client = await Client.open(live.ws_url, sock=sock, max_queue=1)
        await client.auth(live.token(EDITOR))
        for _ in range(3):  # one after the other, without waiting: each waits for the one before
            await client.send(type="subscribe", collaborationId=cid)
        for _ in range(3):
            assert len((await client.until("snapshot"))["collaboration"]["activities"]) == 40
        await live.act(OWNER, "updateDetails", cid, {"title": "after"})
        update = await client.until("collaboration_updated", timeout=10)
        assert update["changes"]["updatedFields"]["title"] == "after"
        assert live.runtime.metrics.slow_closes._value.get() == 0 and client.close_code is None
        await client.send(type="ping")
        await client.until("pong")


# -- malformed frames ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frame", "code", "path"),
    [
        ("not json", "invalid_request", None),
        ("[1, 2]", "invalid_request", None),
        ('"subscribe"', "invalid_request", None),
        ("{}", "invalid_request", None),
        ('{"type": "launch"}', "invalid_request", None),
        ('{"type": 7}', "invalid_request", None),
        ('{"type": "subscribe"}', "validation_failed", "collaborationId"),
        ('{"type": "subscribe", "collaborationId": 42}', "validation_failed", "collaborationId"),
        ('{"type": "subscribe", "collaborationId": ""}', "validation_failed", "collaborationId"),
        ('{"type": "subscribe", "collaborationId": "c", "sinceVersion": "3"}', "validation_failed", "sinceVersion"),
        ('{"type": "subscribe", "collaborationId": "c", "sinceVersion": -1}', "validation_failed", "sinceVersion"),
        ('{"type": "subscribe", "collaborationId": "c", "extra": true}', "validation_failed", "extra"),
        ('{"type": "unsubscribe"}', "validation_failed", "collaborationId"),
        ('{"type": "presence", "collaborationId": "c", "state": [1]}', "validation_failed", "state"),
        ('{"type": "presence", "collaborationId": "c"}', "validation_failed", "state"),
        ('{"type": "refresh_token"}', "validation_failed", "token"),
        ('{"type": "refresh_token", "token": 5}', "validation_failed", "token"),
        ('{"type": "ping", "now": 1}', "validation_failed", "now"),
        ('{"type": "auth", "token": "again"}', "invalid_request", None),
    ],
)
async def test_malformed_frames_get_an_error_and_the_connection_stays(live, frame, code, path):
    client = await live.client(EDITOR)
    await client.send_raw(frame)
    error = await client.expect("error")
    assert error["code"] == code, error
    if path is not None:
        assert error["details"]["fields"][0]["path"] == path
    await client.send(type="ping")
    await client.expect("pong")


@pytest.mark.parametrize("state", [{"\u0000": 1}, {"big": 2**70}, {"$where": "x"}, {"a.b": 1}, {"deep": [{"$x": 1}]}])
async def test_a_presence_state_mongodb_cannot_store_gets_validation_failed(live, state):
    cid = await team(live)
    client = await live.client(EDITOR)
    await client.subscribe(cid)
    await client.until("presence")
    await client.send(type="presence", collaborationId=cid, state=state)
    error = await client.expect("error")
    assert error["code"] == "validation_failed" and error["details"]["fields"][0]["path"] == "state"
    assert await live.runtime.store.presence.for_collaboration(cid) == []  # nothing stored
    await client.send(type="presence", collaborationId=cid, state={"typing": True})  # the connection is fine
    event = await client.until("presence")
    assert [m["state"] for m in event["members"]] == [{"typing": True}]


async def test_auth_while_the_keys_cannot_be_fetched_closes_with_1013_not_4401():
    settings = dict(
        auth_mode="supabase",
        supabase_jwt_secret=None,
        supabase_jwks_url=closed_port_url(),
        jwt_issuer="https://p.supabase.co/auth/v1",
    )
    async with live_server(**settings) as live:
        client = await Client.open(live.ws_url)
        await client.send(type="auth", token=sign(claims(live.settings.issuer), rsa_key(), "RS256", "rsa-1"))
        assert await client.wait_closed() == 1013
        assert client.close_reason  # says why
        r = await live.http.get("/api/health")
        assert r.status_code == 200  # and the process is fine


async def test_binary_frames_are_refused(live):
    client = await live.client(EDITOR)
    await client.send_raw(b'{"type": "ping"}')
    assert (await client.expect("error"))["code"] == "invalid_request"
    await client.send(type="ping")
    await client.expect("pong")


async def test_too_many_frames_close_with_4429():
    async with live_server(ws_rate_limit=5) as live:
        client = await live.client(EDITOR)
        for _ in range(10):  # the burst: twice the rate
            await client.send(type="ping")
        for _ in range(10):
            await client.expect("pong")
        for _ in range(5):
            await client.send(type="ping")
        assert await client.wait_closed() == 4429


# -- tokens ----------------------------------------------------------------------------------------


def expiry(tok: str) -> float:
    return jwt.decode(tok, options={"verify_signature": False})["exp"]


async def test_the_socket_closes_with_4401_when_the_token_expires():
    async with live_server(dev_token_ttl=1) as live:
        tok = live.token(EDITOR)
        client = await live.client()
        await client.auth(tok)
        assert await client.wait_closed(timeout=4) == 4401
        assert time.time() >= expiry(tok) - 0.05
        assert client.close_reason == "token expired"


async def test_refresh_token_keeps_the_socket_open_past_the_first_expiry():
    async with live_server(dev_token_ttl=2) as live:
        first = live.token(EDITOR)
        client = await live.client()
        await client.auth(first)
        while int(time.time()) + 2 <= expiry(first):  # until a new token expires later than the first
            await asyncio.sleep(0.05)
        second = live.token(EDITOR)
        assert expiry(second) > expiry(first)
        await client.send(type="refresh_token", token=second)
        refreshed = await client.expect("token_refreshed")
        assert refreshed["expiresAt"].endswith("Z")
        await asyncio.sleep(max(0.0, expiry(first) - time.time()) + 0.3)
        await client.send(type="ping")
        await client.expect("pong")
        assert await client.wait_closed(timeout=4) == 4401
        assert time.time() >= expiry(second) - 0.05


async def test_refresh_with_another_users_token_closes_with_4401(live):
    client = await live.client(EDITOR)
    await client.send(type="refresh_token", token=live.token(VIEWER))
    assert await client.wait_closed() == 4401


async def test_refresh_with_a_bad_token_is_an_error_only(live):
    client = await live.client(EDITOR)
    expired = issue_dev_token(_with(live.settings, dev_token_ttl=-60), EDITOR)["access_token"]
    await client.send(type="refresh_token", token=expired)
    assert (await client.expect("error"))["code"] == "unauthenticated"
    await client.send(type="ping")
    await client.expect("pong")


def _with(settings, **changes):
    import msgspec

    return msgspec.structs.replace(settings, **changes)


# -- shutdown --------------------------------------------------------------------------------------


async def test_going_away_closes_every_socket_with_1001(live):
    cid = await team(live)
    clients = [await live.client(email) for email in (OWNER, EDITOR)]
    for client in clients:
        await client.subscribe(cid)
    await live.realtime.close_all(1001, "server going away")
    assert [await c.wait_closed() for c in clients] == [1001, 1001]
    assert live.realtime.hub.subscribers(cid) == 0 and not live.realtime.connections


async def test_ready_reports_the_change_stream(live):
    ready = (await live.http.get("/api/ready")).json()
    assert ready["checks"] == {"mongodb": True, "changeStream": True}
    await live.realtime.reader.stop()
    r = await live.http.get("/api/ready")
    assert r.status_code == 503 and r.json()["checks"]["changeStream"] is False


async def test_a_database_error_during_subscribe_is_an_error_frame_only(live, monkeypatch):
    from pymongo.errors import AutoReconnect

    cid = await team(live)

    async def down(collaboration_id):
        raise AutoReconnect("no primary")

    monkeypatch.setattr(live.runtime.store.stream, "head", down)  # the subscribe's read of the collaboration
    client = await live.client(EDITOR)
    await client.send(type="subscribe", collaborationId=cid)
    error = await client.expect("error")
    assert error["code"] == "unavailable" and error["collaborationId"] == cid
    assert live.realtime.hub.subscribers(cid) == 0
    monkeypatch.undo()
    assert (await client.subscribe(cid))["version"] == 3


async def test_a_dead_peer_is_dropped_by_protocol_pings():
    async with live_server(ws_ping_interval=0.3) as live:
        cid = await team(live)
        client = await live.client(EDITOR)
        await client.subscribe(cid)
        await client.until("presence")
        assert live.realtime.hub.subscribers(cid) == 1
        client.ws.transport.pause_reading()  # it never sees a ping again, so it never answers one
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 5
        while (live.realtime.connections or live.realtime.hub.subscribers(cid)) and loop.time() < deadline:
            await asyncio.sleep(0.05)
        assert not live.realtime.connections and live.realtime.hub.subscribers(cid) == 0


async def test_stopping_the_server_closes_sockets_and_stops_cleanly():
    async with live_server() as live:
        cid = await team(live)
        client = await live.client(EDITOR)
        await client.subscribe(cid)
        server = live.server
    # the server says "going away" before uvicorn would close the socket itself (with 1012)
    assert await client.wait_closed() == 1001
    assert server._task.done() and server._task.exception() is None
