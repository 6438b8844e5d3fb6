"""Idempotency-Key over real HTTP (a real uvicorn): a request sent again is applied once.

DESIGN.md §4 "Idempotency", docs/http-api.md "Idempotency". The key is scoped to the user; the
stored answer (status and body bytes) is written with the effect, atomically; a repeat gets it
back with `Idempotent-Replayed: true`; another body is 422 idempotency_key_reused; a key still
running is 409 request_in_progress with Retry-After; a refused request stores nothing.
"""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from urllib.parse import urlsplit

import httpx
import pytest

from backend.clock import utcnow
from backend.domain.models import Actor
from backend.settings import SettingsError, load_settings, test_settings
from backend.store.idempotency import Claim, ClaimLost, Idempotency, Reused, Running, Stored, fingerprint
from tests.fake_groq import API_KEY, FakeGroq
from tests.realtime_support import STORES, live_server
from tests.support import EDITOR, OWNER, STRANGER, VIEWER, user

KEY = "Idempotency-Key"


def keyed(live, email: str, key: str) -> dict[str, str]:
    return {**live.auth(email), KEY: key}


async def team(live) -> str:
    cid = await live.create(OWNER, "Trip")
    await live.act(OWNER, "addMember", cid, {"email": EDITOR, "role": "editor"})
    await live.act(OWNER, "addMember", cid, {"email": VIEWER, "role": "viewer"})
    return cid


async def entries(live, cid: str, action: str) -> list[dict]:
    return [e for e in await live.runtime.store.audit.page(cid, limit=200) if e["action"] == action]


async def send(live, email: str, cid: str, text: str, key: str):
    return await live.http.post(
        "/api/actions/sendMessage",
        json={"collaborationId": cid, "payload": {"text": text}},
        headers=keyed(live, email, key),
    )


@pytest.fixture
async def live():
    async with live_server() as server:
        yield server


# -- replay, reuse, scope -------------------------------------------------------------------------------


async def test_a_repeat_gets_the_stored_answer_byte_for_byte_and_applies_nothing(live):
    cid = await team(live)
    body = {"collaborationId": cid, "payload": {"title": "Book the hut"}}
    first = await live.http.post("/api/actions/proposeActivity", json=body, headers=keyed(live, EDITOR, "k-1"))
    assert first.status_code == 200 and "idempotent-replayed" not in first.headers
    again = await live.http.post("/api/actions/proposeActivity", json=body, headers=keyed(live, EDITOR, "k-1"))
    assert again.status_code == 200 and again.headers["idempotent-replayed"] == "true"
    assert again.content == first.content and again.headers["content-type"] == "application/json"
    snapshot = await live.snapshot(OWNER, cid)
    assert len(snapshot["activities"]) == 1 and snapshot["version"] == first.json()["version"]
    assert len(await entries(live, cid, "proposeActivity")) == 1
    # the same JSON with its keys in another order and other spacing is the same body
    reordered = json.dumps({"payload": {"title": "Book the hut"}, "collaborationId": cid}, indent=2)
    third = await live.http.post(
        "/api/actions/proposeActivity",
        content=reordered,
        headers={**keyed(live, EDITOR, "k-1"), "content-type": "application/json"},
    )
    assert third.headers["idempotent-replayed"] == "true" and third.content == first.content


async def test_the_key_with_another_body_or_on_another_route_is_422_and_applies_nothing(live):
    cid = await team(live)
    other = await live.create(OWNER, "Elsewhere")
    await live.act(OWNER, "addMember", other, {"email": EDITOR, "role": "editor"})
    assert (await send(live, EDITOR, cid, "hello", "k-2")).status_code == 200
    for r in (
        await send(live, EDITOR, cid, "hello!", "k-2"),  # another body
        await send(live, EDITOR, other, "hello", "k-2"),  # another collaboration
        await live.http.post(
            "/api/actions/proposeActivity",  # another route
            json={"collaborationId": cid, "payload": {"text": "hello"}},
            headers=keyed(live, EDITOR, "k-2"),
        ),
    ):
        assert r.status_code == 422, r.text
        assert r.json()["error"]["code"] == "idempotency_key_reused"
        assert "idempotent-replayed" not in r.headers
    assert [m["text"] for m in await live.messages(OWNER, cid)] == ["hello"]
    assert await live.messages(OWNER, other) == []


async def test_another_users_key_never_replays_to_you(live):
    first = await live.http.post("/api/collaborations", json={"title": "Mine"}, headers=keyed(live, OWNER, "same"))
    second = await live.http.post("/api/collaborations", json={"title": "Mine"}, headers=keyed(live, STRANGER, "same"))
    assert first.status_code == second.status_code == 201
    assert "idempotent-replayed" not in second.headers and second.json()["id"] != first.json()["id"]
    assert second.json()["members"][0]["userId"] == user(STRANGER).id
    # and each one's repeat replays their own
    again = await live.http.post("/api/collaborations", json={"title": "Mine"}, headers=keyed(live, STRANGER, "same"))
    assert again.headers["idempotent-replayed"] == "true" and again.content == second.content
    assert len(await live.runtime.store.collaborations.for_member(user(STRANGER).id)) == 1


@pytest.mark.parametrize("bad", ["", "a" * 129, "has space", "ключ", "a/b", "a.b", "a:b"])
async def test_a_bad_key_is_400_at_the_header_and_applies_nothing(live, bad):
    r = await live.http.post(
        "/api/collaborations", json={"title": "X"}, headers={**live.auth(OWNER), KEY: bad.encode()}
    )
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_request"
    assert r.json()["error"]["details"] == {"header": KEY}
    assert await live.runtime.store.collaborations.for_member(user(OWNER).id) == []


async def test_the_longest_key_and_every_allowed_character_work(live):
    key = ("Az09_-" * 22)[:128]
    r = await live.http.post("/api/collaborations", json={"title": "X"}, headers=keyed(live, OWNER, key))
    assert r.status_code == 201


async def test_a_refused_request_stores_nothing_and_may_run_again(live):
    cid = await team(live)
    body = {"collaborationId": cid, "payload": {"title": "Viewer's idea"}}
    refused = await live.http.post("/api/actions/proposeActivity", json=body, headers=keyed(live, VIEWER, "k-3"))
    assert refused.status_code == 403 and "idempotent-replayed" not in refused.headers
    assert await live.runtime.store.db["idempotency"].count_documents({}) == 0  # the claim was given back
    await live.act(OWNER, "changeRole", cid, {"userId": user(VIEWER).id, "role": "editor"})
    ran = await live.http.post("/api/actions/proposeActivity", json=body, headers=keyed(live, VIEWER, "k-3"))
    assert ran.status_code == 200 and "idempotent-replayed" not in ran.headers
    assert len((await live.snapshot(OWNER, cid))["activities"]) == 1


async def test_without_a_key_every_request_runs(live):
    cid = await team(live)
    for _ in range(2):
        r = await live.http.post(
            "/api/actions/sendMessage",
            json={"collaborationId": cid, "payload": {"text": "hi"}},
            headers=live.auth(EDITOR),
        )
        assert r.status_code == 200
    assert len(await live.messages(OWNER, cid)) == 2
    assert await live.runtime.store.db["idempotency"].count_documents({}) == 0


# -- in progress, concurrency ---------------------------------------------------------------------------


def hold_message_writes(live, entered: asyncio.Event, release: asyncio.Event):
    insert = live.runtime.store.messages.insert

    async def held(*args, **kwargs):
        entered.set()
        await release.wait()
        return await insert(*args, **kwargs)

    live.runtime.store.messages.insert = held


async def test_while_the_first_runs_a_repeat_is_409_request_in_progress_with_retry_after(live):
    cid = await team(live)
    entered, release = asyncio.Event(), asyncio.Event()
    hold_message_writes(live, entered, release)
    first = asyncio.create_task(send(live, EDITOR, cid, "once", "k-4"))
    await entered.wait()
    busy = await send(live, EDITOR, cid, "once", "k-4")
    assert busy.status_code == 409 and busy.json()["error"]["code"] == "request_in_progress"
    assert int(busy.headers["retry-after"]) >= 1
    release.set()
    done = await first
    assert done.status_code == 200
    again = await send(live, EDITOR, cid, "once", "k-4")
    assert again.headers["idempotent-replayed"] == "true" and again.content == done.content
    assert [m["text"] for m in await live.messages(OWNER, cid)] == ["once"]


@pytest.mark.parametrize("store", STORES)
async def test_concurrent_requests_with_one_key_apply_once(store):
    async with live_server(store=store) as live:
        cid = await team(live)
        answers = await asyncio.gather(*(send(live, EDITOR, cid, "together", "k-5") for _ in range(8)))
        assert {r.status_code for r in answers} <= {200, 409}
        applied = [r for r in answers if r.status_code == 200 and "idempotent-replayed" not in r.headers]
        replayed = [r for r in answers if r.headers.get("idempotent-replayed") == "true"]
        assert len(applied) == 1
        assert all(r.content == applied[0].content for r in replayed)
        assert all(r.json()["error"]["code"] == "request_in_progress" for r in answers if r.status_code == 409)
        assert [m["text"] for m in await live.messages(OWNER, cid)] == ["together"]
        assert len(await entries(live, cid, "sendMessage")) == 1


# -- lost answers ---------------------------------------------------------------------------------------


async def post_and_hang_up(live, path: str, body: dict, headers: dict[str, str], applied) -> None:
    """A client that sends the request and drops the connection once it is applied, never reading the answer."""
    url = urlsplit(live.server.url)
    reader, writer = await asyncio.open_connection(url.hostname, url.port)
    data = json.dumps(body).encode()
    head = [
        f"POST {path} HTTP/1.1",
        f"Host: {url.netloc}",
        "Content-Type: application/json",
        f"Content-Length: {len(data)}",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + data)
    await writer.drain()
    for _ in range(500):
        if await applied():
            break
        await asyncio.sleep(0.01)
    writer.transport.abort()  # the answer is lost: the connection is reset without reading it


@pytest.mark.parametrize("store", STORES)
async def test_an_action_whose_answer_is_lost_is_retried_with_its_key_and_applied_once(store):
    async with live_server(store=store) as live:
        cid = await team(live)
        body = {"collaborationId": cid, "payload": {"title": "Book the hut"}}

        async def applied():
            return len(await entries(live, cid, "proposeActivity")) == 1

        await post_and_hang_up(live, "/api/actions/proposeActivity", body, keyed(live, EDITOR, "k-6"), applied)
        assert await applied()
        retry = None
        for _ in range(100):  # the server may still be finishing the first request: 409, then the answer
            retry = await live.http.post("/api/actions/proposeActivity", json=body, headers=keyed(live, EDITOR, "k-6"))
            if retry.status_code != 409:
                break
            await asyncio.sleep(0.02)
        assert retry.status_code == 200 and retry.headers["idempotent-replayed"] == "true"
        snapshot = await live.snapshot(OWNER, cid)
        assert [a["title"] for a in snapshot["activities"]] == ["Book the hut"]
        assert retry.json()["version"] == snapshot["version"]
        assert retry.json()["result"]["activityId"] == snapshot["activities"][0]["id"]
        assert len(await entries(live, cid, "proposeActivity")) == 1


class Crash(OSError):
    pass


@pytest.mark.parametrize("store", STORES)
async def test_a_failure_after_the_commit_leaves_the_answer_written_with_it(store):
    """Server side: the message commits, then the request fails (500): the key's answer is the one
    written with the message, and the retry gets it instead of posting again."""
    async with live_server(store=store) as live:
        cid = await team(live)
        insert = live.runtime.store.messages.insert

        async def commits_then_fails(*args, **kwargs):
            await insert(*args, **kwargs)
            raise Crash("the connection to the client broke")

        live.runtime.store.messages.insert = commits_then_fails
        failed = await send(live, EDITOR, cid, "only once", "k-7")
        assert failed.status_code == 500
        live.runtime.store.messages.insert = insert
        retry = await send(live, EDITOR, cid, "only once", "k-7")
        assert retry.status_code == 200 and retry.headers["idempotent-replayed"] == "true"
        messages = await live.messages(OWNER, cid)
        assert [m["text"] for m in messages] == ["only once"]
        assert retry.json()["result"]["messageId"] == messages[0]["id"]


async def test_a_request_that_failed_before_applying_anything_gives_the_key_back(live):
    cid = await team(live)
    insert = live.runtime.store.messages.insert

    async def fails_before_writing(*args, **kwargs):
        raise Crash("the database went away")

    live.runtime.store.messages.insert = fails_before_writing
    assert (await send(live, EDITOR, cid, "try", "k-8")).status_code == 500
    live.runtime.store.messages.insert = insert
    retry = await send(live, EDITOR, cid, "try", "k-8")
    assert retry.status_code == 200 and "idempotent-replayed" not in retry.headers
    assert [m["text"] for m in await live.messages(OWNER, cid)] == ["try"]


# -- the other routes -----------------------------------------------------------------------------------


async def test_a_202_proposal_is_stored_and_replayed_without_a_second_approval(live):
    cid = await team(live)
    rule = {
        "name": "Owner approves",
        "when": {"action": "proposeActivity", "actor": "user"},
        "then": {"require_approval": {"reason": "I decide"}},
    }
    await live.act(OWNER, "addRule", cid, {"rule": rule})
    body = {"collaborationId": cid, "payload": {"title": "Hike"}}
    first = await live.http.post("/api/actions/proposeActivity", json=body, headers=keyed(live, EDITOR, "k-9"))
    assert first.status_code == 202
    again = await live.http.post("/api/actions/proposeActivity", json=body, headers=keyed(live, EDITOR, "k-9"))
    assert again.status_code == 202 and again.headers["idempotent-replayed"] == "true"
    assert again.content == first.content
    assert len(await live.runtime.store.approvals.for_collaborations([cid])) == 1


async def test_an_answer_with_follow_ups_is_replayed_with_them(live):
    cid = await team(live)
    rule = {
        "name": "Thanks",
        "when": {"action": "completeActivity"},
        "then": {"action": {"name": "sendMessage", "payload": {"text": "Thanks!"}}},
    }
    await live.act(OWNER, "addRule", cid, {"rule": rule})
    activity = (await live.act(EDITOR, "proposeActivity", cid, {"title": "Hike"}))["result"]["activityId"]
    await live.act(EDITOR, "scheduleActivity", cid, {"activityId": activity, "scheduledFor": "2030-01-01T10:00:00Z"})
    body = {"collaborationId": cid, "payload": {"activityId": activity}}
    first = await live.http.post("/api/actions/completeActivity", json=body, headers=keyed(live, EDITOR, "k-10"))
    assert first.status_code == 200 and first.json()["followups"][0]["ok"] is True
    again = await live.http.post("/api/actions/completeActivity", json=body, headers=keyed(live, EDITOR, "k-10"))
    assert again.headers["idempotent-replayed"] == "true" and again.content == first.content
    assert [m["text"] for m in await live.messages(OWNER, cid)] == ["Thanks!"]


async def test_create_collaboration_with_a_key_creates_one(live):
    first = await live.http.post("/api/collaborations", json={"title": "Once"}, headers=keyed(live, OWNER, "k-11"))
    again = await live.http.post("/api/collaborations", json={"title": "Once"}, headers=keyed(live, OWNER, "k-11"))
    assert first.status_code == again.status_code == 201 and again.content == first.content
    assert again.headers["idempotent-replayed"] == "true"
    assert len(await live.runtime.store.collaborations.for_member(user(OWNER).id)) == 1
    invalid = await live.http.post("/api/collaborations", json={"title": ""}, headers=keyed(live, OWNER, "k-12"))
    assert invalid.status_code == 422 and invalid.json()["error"]["code"] == "validation_failed"
    assert await live.runtime.store.db["idempotency"].count_documents({"key": "k-12"}) == 0


async def pending_approval(live, cid: str) -> str:
    await live.act(OWNER, "setProtectedActions", cid, {"actions": ["proposeActivity"]})
    outcome = await live.runtime.engine.run("proposeActivity", Actor.ai("run_x"), cid, {"title": "AI's"})
    return outcome.approval["_id"]


@pytest.mark.parametrize("decision", ["approve", "reject"])
async def test_approve_and_reject_with_a_key_decide_once_and_replay(live, decision):
    cid = await team(live)
    approval = await pending_approval(live, cid)
    path = f"/api/approvals/{approval}/{decision}"
    first = await live.http.post(path, headers=keyed(live, OWNER, "k-13"))
    assert first.status_code == 200, first.text
    assert first.json()["approval"]["status"] == ("approved" if decision == "approve" else "rejected")
    again = await live.http.post(path, headers=keyed(live, OWNER, "k-13"))
    assert again.status_code == 200 and again.headers["idempotent-replayed"] == "true"
    assert again.content == first.content
    # without the key the same decision is refused: it was already decided
    plain = await live.http.post(path, headers=live.auth(OWNER))
    assert plain.status_code == 409 and plain.json()["error"]["code"] == "invalid_transition"
    activities = (await live.snapshot(OWNER, cid))["activities"]
    assert len(activities) == (1 if decision == "approve" else 0)
    # the same key on the other decision's path is another request
    other = "reject" if decision == "approve" else "approve"
    reused = await live.http.post(f"/api/approvals/{approval}/{other}", headers=keyed(live, OWNER, "k-13"))
    assert reused.status_code == 422 and reused.json()["error"]["code"] == "idempotency_key_reused"


async def test_a_refused_decision_gives_the_key_back(live):
    cid = await team(live)
    approval = await pending_approval(live, cid)
    refused = await live.http.post(f"/api/approvals/{approval}/approve", headers=keyed(live, EDITOR, "k-14"))
    assert refused.status_code == 403
    assert await live.runtime.store.db["idempotency"].count_documents({}) == 0


# -- AI chat --------------------------------------------------------------------------------------------


@pytest.fixture
async def fake():
    async with FakeGroq() as server:
        yield server


@pytest.fixture
async def ai_live(fake):
    async with live_server(
        ai_provider="groq", groq_api_key=API_KEY, groq_base_url=fake.url, groq_model="llama-fake"
    ) as server:
        yield server


async def test_a_chat_repeated_with_its_key_posts_nothing_and_asks_the_ai_once(fake, ai_live):
    live = ai_live
    cid = await team(live)
    fake.respond = lambda body: {"reply": "Book the hut.", "actions": []}
    path = f"/api/collaborations/{cid}/ai/chat"
    first = await live.http.post(path, json={"message": "What first?"}, headers=keyed(live, EDITOR, "k-15"))
    assert first.status_code == 200, first.text
    again = await live.http.post(path, json={"message": "What first?"}, headers=keyed(live, EDITOR, "k-15"))
    assert again.status_code == 200 and again.headers["idempotent-replayed"] == "true"
    assert again.content == first.content  # the question and the AI's reply, as first answered
    assert [m["text"] for m in await live.messages(OWNER, cid)] == ["What first?", "Book the hut."]
    assert len(fake.requests) == 1


async def test_a_chat_whose_ai_failed_keeps_its_question_once_and_replays_the_503(fake, ai_live):
    live = ai_live
    cid = await team(live)
    fake.push("not {{ json")
    path = f"/api/collaborations/{cid}/ai/chat"
    first = await live.http.post(path, json={"message": "ideas?"}, headers=keyed(live, VIEWER, "k-16"))
    assert first.status_code == 503
    again = await live.http.post(path, json={"message": "ideas?"}, headers=keyed(live, VIEWER, "k-16"))
    assert again.status_code == 503 and again.headers["idempotent-replayed"] == "true"
    assert again.content == first.content
    assert [m["text"] for m in await live.messages(OWNER, cid)] == ["ideas?"]  # the question, posted once
    assert len(fake.requests) == 1


async def test_a_chat_cut_short_after_its_question_replays_the_question_posted(fake, ai_live):
    """The process stops between the question and the AI's reply (its finish never runs): after the
    lease, a repeat gets the answer written with the question (503, with the question's id)."""
    live = ai_live
    cid = await team(live)
    idem = live.runtime.store.idempotency

    async def stops(claim, status, body):
        raise Crash("the process stops before the request finishes")

    fake.respond = lambda body: {"reply": "never posted", "actions": []}
    insert = live.runtime.store.messages.insert

    async def only_the_question(message, audit, **kwargs):
        if message["author"]["type"] == "ai":
            raise Crash("the process stops here")
        return await insert(message, audit, **kwargs)

    live.runtime.store.messages.insert = only_the_question
    idem.finish = stops
    path = f"/api/collaborations/{cid}/ai/chat"
    cut = await live.http.post(path, json={"message": "plan?"}, headers=keyed(live, EDITOR, "k-17"))
    assert cut.status_code == 500
    busy = await live.http.post(path, json={"message": "plan?"}, headers=keyed(live, EDITOR, "k-17"))
    assert busy.status_code == 409 and busy.json()["error"]["code"] == "request_in_progress"
    await live.runtime.store.db["idempotency"].update_one(
        {"key": "k-17"}, {"$set": {"leaseUntil": utcnow() - timedelta(seconds=1)}}
    )
    later = await live.http.post(path, json={"message": "plan?"}, headers=keyed(live, EDITOR, "k-17"))
    assert later.status_code == 503 and later.headers["idempotent-replayed"] == "true"
    messages = await live.messages(OWNER, cid)
    assert [m["text"] for m in messages] == ["plan?"]
    assert later.json()["error"]["details"] == {"questionId": messages[0]["id"]}


# -- the store: leases, expiry, a lost claim ------------------------------------------------------------


async def test_a_running_claim_past_its_lease_may_run_again_and_the_old_one_applies_nothing(any_store_handle):
    from backend.store.store import Store

    store = Store(any_store_handle, test_settings())
    idem = store.idempotency
    first = await idem.claim("usr_a", "k", "print")
    assert isinstance(first, Claim)
    assert isinstance(await idem.claim("usr_a", "k", "print"), Running)
    assert isinstance(await idem.claim("usr_a", "k", "other print"), Reused)
    await any_store_handle.db["idempotency"].update_one(
        {"_id": first.record_id}, {"$set": {"leaseUntil": utcnow() - timedelta(seconds=1)}}
    )
    second = await idem.claim("usr_a", "k", "print")
    assert isinstance(second, Claim) and second.record_id == first.record_id
    # the first request, slower than its lease, finally writes: its claim is lost, nothing is applied
    first.render = second.render = lambda outcome: (201, b'{"ok":true}')
    doc = {"_id": "col_x", "title": "X", "version": 1, "memberIds": [], "members": [], "status": "active"}
    audit = {"_id": "aud_x", "collaborationId": "col_x", "version": 1, "versioned": True, "action": "x"}
    with pytest.raises(ClaimLost):
        await store.collaborations.insert(doc, audit, idempotency=first.prepare(None))
    assert await store.collaborations.get("col_x") is None
    await store.collaborations.insert(doc, audit, idempotency=second.prepare(None))
    assert await store.collaborations.get("col_x") is not None
    await idem.finish(second, 201, b'{"ok":true}')
    assert await idem.claim("usr_a", "k", "print") == Stored(201, b'{"ok":true}')
    assert isinstance(await idem.claim("usr_b", "k", "print"), Claim)  # another user's key is another key


async def test_a_record_past_its_ttl_is_gone_even_without_a_ttl_monitor(store_handle):
    idem = Idempotency(store_handle.db, 60, utcnow)
    claim = await idem.claim("usr_a", "k", "print")
    claim.render = lambda outcome: (200, b"{}")
    await claim.commit(None, object())
    await idem.finish(claim, 200, b"{}")
    assert isinstance(await idem.claim("usr_a", "k", "print"), Stored)
    later = Idempotency(store_handle.db, 60, lambda: utcnow() + timedelta(seconds=61))
    assert isinstance(await later.claim("usr_a", "k", "another body now"), Claim)


async def test_the_ttl_index_is_declared(store_handle):
    info = await store_handle.db["idempotency"].index_information()
    ttl = [i for i in info.values() if i.get("expireAfterSeconds") == 0]
    assert [i["key"] for i in ttl] == [[("expiresAt", 1)]]
    assert any(i.get("unique") and i["key"] == [("userId", 1), ("key", 1)] for i in info.values())


def test_the_fingerprint_covers_method_path_and_canonical_body():
    base = fingerprint("POST", "/api/actions/sendMessage", b'{"a": 1, "b": [1, 2]}')
    assert base == fingerprint("POST", "/api/actions/sendMessage", b'{"b":[1,2],"a":1}')
    assert base != fingerprint("POST", "/api/actions/proposeActivity", b'{"a": 1, "b": [1, 2]}')
    assert base != fingerprint("PUT", "/api/actions/sendMessage", b'{"a": 1, "b": [1, 2]}')
    assert base != fingerprint("POST", "/api/actions/sendMessage", b'{"a": 1, "b": [2, 1]}')
    assert fingerprint("POST", "/x", b"not json") != fingerprint("POST", "/x", b"not  json")


def test_idempotency_ttl_is_a_duration_and_must_be_positive():
    assert load_settings({"IDEMPOTENCY_TTL": "2h"}, auth_mode="dev").idempotency_ttl == 7200
    assert test_settings().idempotency_ttl == 86400
    with pytest.raises(SettingsError, match="IDEMPOTENCY_TTL"):
        load_settings({"IDEMPOTENCY_TTL": "0"}, auth_mode="dev")


async def test_the_openapi_document_lists_the_header_and_the_answers(live):
    paths = (await live.http.get("/api/openapi.json")).json()["paths"]
    for path in (
        "/api/actions/sendMessage",
        "/api/collaborations",
        "/api/approvals/{id}/approve",
        "/api/approvals/{id}/reject",
        "/api/collaborations/{id}/ai/chat",
    ):
        op = paths[path]["post"]
        header = [p for p in op["parameters"] if p["in"] == "header"]
        assert header == [
            {
                "name": KEY,
                "in": "header",
                "required": False,
                "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,128}$"},
                "description": header[0]["description"],
            }
        ], path
        assert {"409", "422"} <= set(op["responses"]), path


async def test_a_browser_on_another_origin_may_send_the_key_and_read_the_replay_header():
    """With CORS_ORIGINS set, the preflight allows Idempotency-Key and the answer exposes
    Idempotent-Replayed and Retry-After (the SPA on another origin sends and reads them)."""
    from backend.api.app import create_app

    origin = "https://spa.example"
    app = create_app(test_settings(cors_origins=(origin,)))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        pre = await client.options(
            "/api/actions/sendMessage",
            headers={
                "origin": origin,
                "access-control-request-method": "POST",
                "access-control-request-headers": "authorization, content-type, idempotency-key",
            },
        )
        assert pre.status_code == 200
        assert "idempotency-key" in pre.headers["access-control-allow-headers"].lower()
        answer = await client.get("/api/health", headers={"origin": origin})
        exposed = answer.headers["access-control-expose-headers"].lower()
        assert "idempotent-replayed" in exposed and "retry-after" in exposed


# -- approve: the decision, its answer and its outcome --------------------------------------------------


async def lease_runs_out(live, key: str) -> None:
    """The key's lease (LEASE, 60 s) is over now, as if the clock had moved past it."""
    await live.runtime.store.db["idempotency"].update_one(
        {"key": key}, {"$set": {"leaseUntil": utcnow() - timedelta(seconds=1)}}
    )


@pytest.fixture(params=STORES)
async def any_live(request):
    """A live server on the embedded store, and on real MongoDB (marked mongodb) when MONGODB_URI is set."""
    async with live_server(store=request.param) as server:
        yield server


async def test_an_approve_slower_than_its_lease_keeps_its_outcome_and_its_answer(any_live):
    """The action outlasts the lease and the same approve comes again meanwhile: the repeat gets the
    decision's answer (the approval approved, being carried out) instead of taking the key over, the
    first request still records its result and answers with it, and a third repeat replays that."""
    live = any_live
    cid = await team(live)
    approval = await pending_approval(live, cid)
    path = f"/api/approvals/{approval}/approve"
    engine_run, during = live.runtime.engine.run, []

    async def slow_run(*args, **kwargs):
        await lease_runs_out(live, "k-20")
        during.append(await live.http.post(path, headers=keyed(live, OWNER, "k-20")))
        return await engine_run(*args, **kwargs)

    live.runtime.engine.run = slow_run
    first = await live.http.post(path, headers=keyed(live, OWNER, "k-20"))
    live.runtime.engine.run = engine_run
    assert first.status_code == 200, first.text
    assert first.json()["approval"]["status"] == "approved" and first.json()["approval"]["result"]["version"]
    [second] = during
    assert second.status_code == 200 and second.headers["idempotent-replayed"] == "true", second.text
    assert second.json()["approval"]["status"] == "approved" and "result" not in second.json()["approval"]
    stored = await live.runtime.store.approvals.get(approval)
    assert stored["result"] == first.json()["approval"]["result"]
    assert len((await live.snapshot(OWNER, cid))["activities"]) == 1
    assert len([e for e in await live.runtime.store.audit.page(cid) if e.get("approvalId") == approval]) == 1
    third = await live.http.post(path, headers=keyed(live, OWNER, "k-20"))
    assert third.status_code == 200 and third.headers["idempotent-replayed"] == "true"
    assert third.content == first.content


async def test_an_approve_whose_outcome_the_recovery_recorded_first_stores_its_answer(any_live):
    """The hourly recovery records the outcome while the approve is still running: the approve's
    answer (rendered from the approval as recovered) is still stored, and a repeat gets it."""
    live = any_live
    from backend.deciding import ApprovalService

    cid = await team(live)
    approval = await pending_approval(live, cid)
    path = f"/api/approvals/{approval}/approve"
    engine_run = live.runtime.engine.run

    async def recovery_goes_first(*args, **kwargs):
        outcome = await engine_run(*args, **kwargs)
        later = ApprovalService(live.runtime.store, live.runtime.engine, clock=lambda: utcnow() + timedelta(minutes=11))
        assert await later.recover_interrupted() == 1
        return outcome

    live.runtime.engine.run = recovery_goes_first
    first = await live.http.post(path, headers=keyed(live, OWNER, "k-21"))
    live.runtime.engine.run = engine_run
    assert first.status_code == 200, first.text
    assert first.json()["approval"]["result"]["recovered"] is True
    again = await live.http.post(path, headers=keyed(live, OWNER, "k-21"))
    assert again.status_code == 200 and again.headers["idempotent-replayed"] == "true", again.text
    assert again.content == first.content
    assert len((await live.snapshot(OWNER, cid))["activities"]) == 1


async def test_an_approve_cut_short_after_its_action_answers_a_repeat_after_the_lease(any_live):
    """The process stops after the action committed, before its outcome is recorded: within the
    lease a repeat is told the request still runs; after it, the repeat gets the decision's answer
    (approved), never 409 invalid_transition, and the recovery later records the outcome."""
    live = any_live
    from backend.deciding import ApprovalService

    cid = await team(live)
    approval = await pending_approval(live, cid)
    path = f"/api/approvals/{approval}/approve"
    idem, approvals = live.runtime.store.idempotency, live.runtime.store.approvals
    record_outcome, finish = approvals.record_outcome, idem.finish

    async def stops(*args, **kwargs):
        raise Crash("the process stops here")

    approvals.record_outcome, idem.finish = stops, stops
    cut = await live.http.post(path, headers=keyed(live, OWNER, "k-22"))
    approvals.record_outcome, idem.finish = record_outcome, finish
    assert cut.status_code == 500
    assert len((await live.snapshot(OWNER, cid))["activities"]) == 1  # the action ran
    busy = await live.http.post(path, headers=keyed(live, OWNER, "k-22"))
    assert busy.status_code == 409 and busy.json()["error"]["code"] == "request_in_progress"
    await lease_runs_out(live, "k-22")
    later = await live.http.post(path, headers=keyed(live, OWNER, "k-22"))
    assert later.status_code == 200 and later.headers["idempotent-replayed"] == "true", later.text
    assert later.json()["approval"]["status"] == "approved" and later.json()["approval"]["id"] == approval
    recovery = ApprovalService(live.runtime.store, live.runtime.engine, clock=lambda: utcnow() + timedelta(minutes=11))
    assert await recovery.recover_interrupted() == 1
    assert (await approvals.get(approval))["result"]["recovered"] is True
    assert len((await live.snapshot(OWNER, cid))["activities"]) == 1  # not carried out twice


async def test_a_reject_cut_short_after_its_move_answers_a_repeat_after_the_lease(live):
    cid = await team(live)
    approval = await pending_approval(live, cid)
    path = f"/api/approvals/{approval}/reject"
    idem = live.runtime.store.idempotency
    finish = idem.finish

    async def stops(*args, **kwargs):
        raise Crash("the process stops here")

    idem.finish = stops
    cut = await live.http.post(path, headers=keyed(live, OWNER, "k-23"))
    idem.finish = finish
    assert cut.status_code == 500
    await lease_runs_out(live, "k-23")
    later = await live.http.post(path, headers=keyed(live, OWNER, "k-23"))
    assert later.status_code == 200 and later.headers["idempotent-replayed"] == "true", later.text
    assert later.json()["approval"]["status"] == "rejected"
