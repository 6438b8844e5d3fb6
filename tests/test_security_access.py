"""Threat: one signed-in user reaching another collaboration's data, or learning that it exists.

A non-member must not read a collaboration, act on it or subscribe to it, over
REST or WebSocket, and every refusal must be the `404 not_found` a missing id
gets, byte for byte apart from the id: existence does not leak. A viewer must
not run an editor's or an owner's actions (`403 forbidden`). A removed
member's socket gets nothing more. Everything runs on the real server
(uvicorn on 127.0.0.1, real HTTP and WebSocket clients).

The engine-level checks of the same rules are in tests/test_engine.py
(`test_a_stranger_gets_not_found_for_every_action`, the role table), and the
realtime races around a removal (removed while subscribing, while presence is
written) in tests/test_realtime_stream.py.
"""

from __future__ import annotations

import json

import pytest

from backend.auth.dev_tokens import dev_user_id
from backend.domain.catalogue import CATALOGUE
from tests.realtime_support import STORES, Client, Copy, live_server
from tests.support import EDITOR, OWNER, STRANGER, VIEWER
from tests.test_engine import _sample_payload

MISSING = "col_doesnotexist0000000000"


@pytest.fixture
async def live():
    async with live_server() as server:
        yield server


async def team(live) -> str:
    cid = await live.create(OWNER)
    await live.act(OWNER, "addMember", cid, {"email": EDITOR, "role": "editor"})
    await live.act(OWNER, "addMember", cid, {"email": VIEWER, "role": "viewer"})
    await live.act(OWNER, "proposeActivity", cid, {"title": "Book the hut"})
    return cid


def same_apart_from_id(answer: dict, cid: str) -> str:
    return json.dumps(answer, sort_keys=True).replace(cid, "<id>").replace(MISSING, "<id>")


async def test_non_members_get_not_found_everywhere(live):
    cid = await team(live)
    for path in (
        f"/api/collaborations/{cid}",
        f"/api/collaborations/{cid}/messages",
        f"/api/collaborations/{cid}/audit",
        "/api/collaborations/col_doesnotexist",
    ):
        r = await live.http.get(path, headers=live.auth(STRANGER))
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = await live.http.post(
        "/api/actions/sendMessage",
        headers=live.auth(STRANGER),
        json={"collaborationId": cid, "payload": {"text": "hi"}},
    )
    assert r.status_code == 404


@pytest.mark.parametrize("suffix", ["", "/messages", "/audit"])
async def test_reading_another_collaboration_answers_as_a_missing_one(live, suffix):
    cid = await team(live)
    theirs = await live.http.get(f"/api/collaborations/{cid}{suffix}", headers=live.auth(STRANGER))
    missing = await live.http.get(f"/api/collaborations/{MISSING}{suffix}", headers=live.auth(STRANGER))
    assert theirs.status_code == missing.status_code == 404
    assert same_apart_from_id(theirs.json(), cid) == same_apart_from_id(missing.json(), cid)
    assert cid not in [
        c["id"]
        for c in (await live.http.get("/api/collaborations", headers=live.auth(STRANGER))).json()["collaborations"]
    ]


@pytest.mark.parametrize("name", sorted(set(CATALOGUE) - {"createCollaboration"}))
async def test_acting_on_another_collaboration_answers_as_a_missing_one_and_changes_nothing(live, name):
    cid = await team(live)
    before = await live.snapshot(OWNER, cid)
    payload = _sample_payload(name, before)
    answers = []
    for target in (cid, MISSING):
        r = await live.http.post(
            f"/api/actions/{name}", headers=live.auth(STRANGER), json={"collaborationId": target, "payload": payload}
        )
        answers.append((r.status_code, same_apart_from_id(r.json(), cid)))
    assert answers[0] == answers[1] and answers[0][0] == 404, answers
    after = await live.snapshot(OWNER, cid)
    assert after["version"] == before["version"]
    assert await live.runtime.store.db["dev_users"].find_one({"_id": dev_user_id("n@e.co")}) is None  # no one invited


async def test_subscribing_to_another_collaboration_answers_as_a_missing_one(live):
    cid = await team(live)
    errors = []
    for target in (cid, MISSING):
        client = await live.client(STRANGER)
        await client.send(type="subscribe", collaborationId=target)
        errors.append(await client.expect("error"))
        await live.act(OWNER, "updateDetails", cid, {"title": "x"})
        assert await client.quiet() == []  # nothing leaks, and the connection is still up
        await client.send(type="ping")
        await client.expect("pong")
        await client.close()
    assert errors[0]["code"] == "not_found" and errors[0]["collaborationId"] == cid
    assert same_apart_from_id(errors[0], cid) == same_apart_from_id(errors[1], cid)


@pytest.mark.parametrize("name", sorted(n for n, spec in CATALOGUE.items() if spec.role in ("editor", "owner")))
async def test_a_viewer_cannot_run_an_editors_or_owners_action(live, name):
    cid = await team(live)
    before = await live.snapshot(OWNER, cid)
    r = await live.http.post(
        f"/api/actions/{name}",
        headers=live.auth(VIEWER),
        json={"collaborationId": cid, "payload": _sample_payload(name, before)},
    )
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden", r.text
    assert r.json()["error"]["details"]["role"] == "viewer"
    assert (await live.snapshot(OWNER, cid))["version"] == before["version"]


async def synced(live, email, cid) -> tuple[Client, Copy]:
    client = await live.client(email)
    copy = Copy()
    copy.apply(await client.subscribe(cid))
    copy.apply(await client.expect("snapshot"))
    await client.expect("presence")
    return client, copy


async def follow(client: Client, copy: Copy, version: int, timeout: float = 10) -> list[dict]:
    frames = []
    while copy.version < version:
        frames.append(await client.next(timeout))
        copy.apply(frames[-1])
    return frames


@pytest.mark.parametrize("store", STORES)
async def test_a_removed_member_stops_receiving_at_once(store):
    async with live_server(store=store) as live:
        cid = await live.create(OWNER)
        await live.act(OWNER, "addMember", cid, {"email": EDITOR, "role": "editor"})
        await live.act(OWNER, "addMember", cid, {"email": VIEWER, "role": "viewer"})
        viewer, _ = await synced(live, VIEWER, cid)
        owner, owner_copy = await synced(live, OWNER, cid)
        await viewer.send(type="presence", collaborationId=cid, state={"here": True})
        await owner.until(lambda f: f["type"] == "presence" and len(f["members"]) == 1)
        await live.act(OWNER, "removeMember", cid, {"userId": dev_user_id(VIEWER)})
        assert await viewer.until(lambda f: f["type"] != "presence") == {
            "type": "membership_removed",
            "collaborationId": cid,
        }
        await live.act(OWNER, "updateDetails", cid, {"title": "secret"})
        await live.act(OWNER, "sendMessage", cid, {"text": "secret"})
        assert await viewer.quiet(0.3) == []
        frames = await follow(owner, owner_copy, 5) + await owner.quiet(0.2)
        assert {"type": "presence", "collaborationId": cid, "members": []} in frames  # the viewer left
        await viewer.send(type="subscribe", collaborationId=cid)
        assert (await viewer.expect("error"))["code"] == "not_found"
        r = await live.http.get(f"/api/collaborations/{cid}", headers=live.auth(VIEWER))
        assert r.status_code == 404
