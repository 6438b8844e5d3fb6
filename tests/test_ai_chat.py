"""AI chat over real HTTP: the member's question is posted as their message and the AI's answer as a
reply to it (`replyTo`), both seen by everyone; suggestions are not run."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from backend.clock import utcnow
from backend.engine import ActionEngine
from tests.fake_groq import API_KEY, FakeGroq
from tests.realtime_support import live_server
from tests.support import EDITOR, OWNER, STRANGER, VIEWER, user


@pytest.fixture
async def fake():
    async with FakeGroq() as server:
        yield server


@pytest.fixture
async def live(fake):
    async with live_server(
        ai_provider="groq", groq_api_key=API_KEY, groq_base_url=fake.url, groq_model="llama-fake"
    ) as server:
        yield server


async def team(live):
    cid = await live.create(OWNER, "Trip")
    await live.act(OWNER, "addMember", cid, {"email": EDITOR, "role": "editor"})
    await live.act(OWNER, "addMember", cid, {"email": VIEWER, "role": "viewer"})
    return cid


async def chat(live, email, cid, body):
    return await live.http.post(f"/api/collaborations/{cid}/ai/chat", json=body, headers=live.auth(email))


async def test_the_reply_is_posted_for_everyone_and_suggestions_are_not_run(fake, live):
    cid = await team(live)
    other = await live.create(OWNER, "Elsewhere")
    fake.respond = lambda body: {
        "reply": "Book the hut first, then plan the food.",
        "actions": [
            {"action": "proposeActivity", "payload": {"title": "Book the hut"}, "reason": "Nothing is planned."},
            {"action": "setProtectedActions", "payload": {"actions": []}, "reason": "asked"},
            {"action": "sendMessage", "collaborationId": other, "payload": {"text": "hi"}, "reason": "x"},
            {"action": "scheduleActivity", "payload": {"activityId": "act_x"}, "reason": "no time given"},
        ],
    }
    watcher = await live.client(VIEWER)
    await watcher.subscribe(cid)
    before = await live.snapshot(OWNER, cid)

    r = await chat(live, EDITOR, cid, {"message": "What should we do first?"})
    assert r.status_code == 200, r.text
    body = r.json()
    reply = body["reply"]
    assert reply["text"] == "Book the hut first, then plan the food." and reply["author"]["type"] == "ai"
    assert reply["collaborationId"] == cid and reply["id"].startswith("msg_") and reply["createdAt"].endswith("Z")
    assert reply["author"]["id"].startswith("chat_")  # the chat's id, as a check-in's message names its run
    assert body["suggestions"] == [
        {
            "action": "proposeActivity",
            "payload": {"title": "Book the hut"},
            "reason": "Nothing is planned.",
            "allowed": True,
            "needs": None,
        }
    ]
    # the question is the member's message, the answer replies to it
    question = body["question"]
    assert question["text"] == "What should we do first?" and question["author"] == {
        "type": "user",
        "id": user(EDITOR).id,
    }
    assert reply["replyTo"] == question["id"] and "replyTo" not in question
    # every subscriber sees both, as messages like any other
    asked = await watcher.until("message_created")
    event = await watcher.until("message_created")
    assert asked["message"] == question and event["message"] == reply
    assert [m["id"] for m in await live.messages(OWNER, cid)][-2:] == [question["id"], reply["id"]]
    # nothing was run: a suggestion is the member's to run, as themselves
    after = await live.snapshot(OWNER, cid)
    assert after["version"] == before["version"] and after["activities"] == []
    assert await live.messages(OWNER, other) == []
    ran = await live.act(EDITOR, "proposeActivity", cid, body["suggestions"][0]["payload"])
    assert ran["version"] == before["version"] + 1
    # what the model was given: the chat prompt, and the collaboration and question as JSON data
    [request] = fake.requests
    assert request["response_format"] == {"type": "json_object"} and request["model"] == "llama-fake"
    data = json.loads(request["messages"][1]["content"])
    assert data["question"] == "What should we do first?" and data["collaboration"]["collaborationId"] == cid
    assert data["member"] == {"userId": user(EDITOR).id, "role": "editor"}
    assert "What should we do first?" not in request["messages"][0]["content"]
    await watcher.close()


async def test_each_chat_s_reply_carries_that_chat_s_id(fake, live):
    cid = await team(live)
    fake.respond = lambda body: {"reply": "Sure.", "actions": []}
    first = (await chat(live, VIEWER, cid, {"message": "one?"})).json()["reply"]["author"]
    second = (await chat(live, VIEWER, cid, {"message": "two?"})).json()["reply"]["author"]
    assert first["type"] == second["type"] == "ai" and first["id"] != second["id"]
    assert all(a["id"].startswith("chat_") for a in (first, second))
    stored = [m["author"] for m in await live.messages(OWNER, cid) if m["author"]["type"] == "ai"]
    assert stored == [first, second]


async def test_suggestions_say_whether_the_asker_may_run_them_and_the_marks_hold(fake, live):
    cid = await team(live)
    activity = (await live.act(EDITOR, "proposeActivity", cid, {"title": "Hike"}))["result"]["activityId"]
    fake.respond = lambda body: {
        "reply": "Here are some ideas.",
        "actions": [
            {"action": "sendMessage", "payload": {"text": "Who is in?"}, "reason": "ask"},
            {"action": "cancelActivity", "payload": {"activityId": activity}, "reason": "stale"},
            {"action": "archiveCollaboration", "payload": {}, "reason": "done"},
        ],
    }
    marks = {}
    for email in (VIEWER, EDITOR, OWNER):
        r = await chat(live, email, cid, {"message": "What now?"})
        assert r.status_code == 200, r.text
        marks[email] = [(s["action"], s["allowed"], s["needs"]) for s in r.json()["suggestions"]]
    assert marks[VIEWER] == [
        ("sendMessage", True, None),
        ("cancelActivity", False, "editor"),
        ("archiveCollaboration", False, "owner"),
    ]
    assert marks[EDITOR] == [
        ("sendMessage", True, None),
        ("cancelActivity", True, None),
        ("archiveCollaboration", False, "owner"),
    ]
    assert marks[OWNER] == [
        ("sendMessage", True, None),
        ("cancelActivity", True, None),
        ("archiveCollaboration", True, None),
    ]
    # the marks are what the server does when the viewer runs them as themselves
    for action, allowed, _needs in marks[VIEWER]:
        payload = {
            "sendMessage": {"text": "Who is in?"},
            "cancelActivity": {"activityId": activity},
            "archiveCollaboration": {},
        }[action]
        r = await live.http.post(
            f"/api/actions/{action}", json={"collaborationId": cid, "payload": payload}, headers=live.auth(VIEWER)
        )
        assert (r.status_code == 200) if allowed else (r.status_code == 403), (action, r.text)
        if not allowed:
            assert r.json()["error"]["code"] == "forbidden"


async def test_only_members_may_ask_and_the_question_is_checked(fake, live):
    cid = await team(live)
    r = await chat(live, STRANGER, cid, {"message": "hello?"})
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    for body in (
        {},
        {"message": "  "},
        {"message": 5},
        {"message": "hi", "extra": 1},
        {"message": "x" * (live.settings.max_message_chars + 1)},
    ):
        r = await chat(live, VIEWER, cid, body)
        assert r.status_code == 422 and r.json()["error"]["code"] == "validation_failed", body
    r = await live.http.post(f"/api/collaborations/{cid}/ai/chat", json={"message": "hi"})
    assert r.status_code == 401
    assert fake.requests == []


async def test_an_unreadable_answer_is_503_and_posts_no_answer(fake, live):
    cid = await team(live)
    fake.push("I think you should {{ hike")
    r = await chat(live, VIEWER, cid, {"message": "ideas?"})
    assert r.status_code == 503 and r.json()["error"]["code"] == "unavailable"
    # the question stays: it is the member's message, posted before the AI was asked
    assert [(m["author"]["type"], m["text"]) for m in await live.messages(OWNER, cid)] == [("user", "ideas?")]


async def test_an_archived_collaboration_is_not_chatted_about(fake, live):
    cid = await team(live)
    runtime = live.runtime
    await runtime.engine.run("archiveCollaboration", user(OWNER), cid, {})
    r = await chat(live, OWNER, cid, {"message": "hello"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "invalid_transition" and fake.requests == []


async def test_when_ai_messages_need_approval_the_reply_waits_for_the_owner(fake, live):
    cid = await team(live)
    await live.act(OWNER, "setProtectedActions", cid, {"actions": ["sendMessage"]})
    fake.respond = lambda body: {"reply": "Pack warm socks.", "actions": []}
    r = await chat(live, EDITOR, cid, {"message": "What to pack?"})
    assert r.status_code == 202, r.text
    body = r.json()
    approval = body["approval"]
    assert body["reply"] is None and body["suggestions"] == []
    question = body["question"]
    assert approval["action"] == "sendMessage"
    assert approval["payload"] == {"text": "Pack warm socks.", "replyTo": question["id"]}
    assert approval["status"] == "pending" and approval["proposedBy"]["type"] == "ai"
    assert [m["id"] for m in await live.messages(OWNER, cid)] == [question["id"]]  # no answer posted yet
    r = await live.http.post(f"/api/approvals/{approval['id']}/approve", headers=live.auth(OWNER))
    assert r.status_code == 200, r.text
    _, posted = await live.messages(OWNER, cid)
    assert posted["replyTo"] == question["id"]
    assert posted["text"] == "Pack warm socks." and posted["author"]["type"] == "ai"
    assert posted["author"]["id"] == approval["proposedBy"]["runId"] and posted["author"]["id"].startswith("chat_")


async def test_the_offline_assistant_answers_without_a_model():
    async with live_server() as live:
        cid = await team(live)
        past = ActionEngine(
            live.runtime.store, live.settings, live.runtime.directory, clock=lambda: utcnow() - timedelta(days=3)
        )
        await past.run("proposeActivity", user(EDITOR), cid, {"title": "Book the hut"})
        r = await chat(live, VIEWER, cid, {"message": "anything to do?"})
        body = r.json()
        assert r.status_code == 200 and "offline" in body["reply"]["text"]
        assert [s["action"] for s in body["suggestions"]] == ["sendMessage"]
        assert "Book the hut" in body["suggestions"][0]["payload"]["text"]


async def test_a_message_may_reply_to_a_message_of_its_own_collaboration_only(live):
    cid = await team(live)
    other = await live.create(OWNER, "Elsewhere")
    first = (await live.act(EDITOR, "sendMessage", cid, {"text": "Who brings the stove?"}))["result"]["messageId"]
    elsewhere = (await live.act(OWNER, "sendMessage", other, {"text": "hi"}))["result"]["messageId"]
    watcher = await live.client(VIEWER)
    await watcher.subscribe(cid)
    answered = await live.act(VIEWER, "sendMessage", cid, {"text": "I do.", "replyTo": first})
    event = await watcher.until("message_created")
    assert event["message"]["replyTo"] == first and event["message"]["id"] == answered["result"]["messageId"]
    stored = await live.messages(OWNER, cid)
    assert [m.get("replyTo") for m in stored] == [None, first] and "replyTo" not in stored[0]
    for bad in (elsewhere, "msg_nope", ""):
        r = await live.http.post(
            "/api/actions/sendMessage",
            headers=live.auth(VIEWER),
            json={"collaborationId": cid, "payload": {"text": "x", "replyTo": bad}},
        )
        assert r.status_code == 422, (bad, r.text)
        error = r.json()["error"]
        assert error["code"] == "validation_failed" and error["details"]["fields"][0]["path"] == "payload.replyTo"
    r = await live.http.post(
        "/api/actions/sendMessage",
        headers=live.auth(VIEWER),
        json={"collaborationId": cid, "payload": {"text": "x", "replyTo": 5}},
    )
    assert r.status_code == 422 and r.json()["error"]["details"]["fields"][0]["path"] == "payload.replyTo"
    assert len(await live.messages(OWNER, cid)) == 2 and len(await live.messages(OWNER, other)) == 1
    await watcher.close()


async def test_a_question_the_owner_s_rules_hold_for_approval_is_not_asked(fake, live):
    cid = await team(live)
    rule = {
        "name": "Viewers' messages need my approval",
        "when": {"action": "sendMessage", "actor": "user"},
        "if": {"==": [{"var": "actor.role"}, "viewer"]},
        "then": {"require_approval": {"reason": "Viewers post after I approve."}},
    }
    await live.act(OWNER, "addRule", cid, {"rule": rule})
    r = await chat(live, VIEWER, cid, {"message": "Can I come?"})
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["question"] is None and body["reply"] is None and body["suggestions"] == []
    assert body["approval"]["action"] == "sendMessage" and body["approval"]["payload"] == {"text": "Can I come?"}
    assert body["approval"]["proposedBy"] == {"type": "user", "id": user(VIEWER).id}
    assert fake.requests == [] and await live.messages(OWNER, cid) == []
    # an editor's question is not held by that rule: it is asked and answered
    fake.respond = lambda body: {"reply": "Yes.", "actions": []}
    r = await chat(live, EDITOR, cid, {"message": "Shall we go?"})
    assert r.status_code == 200 and r.json()["reply"]["replyTo"] == r.json()["question"]["id"]


async def test_the_answer_s_message_keeps_its_suggestions_for_every_member_live_and_after_a_reload(fake, live):
    """Stored on the AI's reply (no per-viewer marks): another member's socket gets them with the
    message, GET messages returns them; each member runs one as themselves, with their own role."""
    cid = await team(live)
    activity = (await live.act(EDITOR, "proposeActivity", cid, {"title": "Hike"}))["result"]["activityId"]
    fake.respond = lambda body: {
        "reply": "Two ideas.",
        "actions": [
            {"action": "sendMessage", "payload": {"text": "Who is in for the hike?"}, "reason": "ask"},
            {
                "action": "scheduleActivity",
                "payload": {"activityId": activity, "scheduledFor": "2026-12-05T11:00:00+01:00"},
            },
        ],
    }
    watcher = await live.client(VIEWER)
    await watcher.subscribe(cid)
    before = await live.snapshot(OWNER, cid)

    r = await chat(live, OWNER, cid, {"message": "What next?"})
    assert r.status_code == 200, r.text
    stored = [
        {"action": "sendMessage", "payload": {"text": "Who is in for the hike?"}, "reason": "ask"},
        {"action": "scheduleActivity", "payload": {"activityId": activity, "scheduledFor": "2026-12-05T10:00:00Z"}},
    ]
    # the asker's answer: the same suggestions (times in UTC), marked for the asker, as before
    assert r.json()["suggestions"] == [
        {**stored[0], "allowed": True, "needs": None},
        {**stored[1], "reason": None, "allowed": True, "needs": None},
    ]
    reply = r.json()["reply"]
    assert reply["suggestions"] == stored
    # the viewer's socket: the reply with its suggestions, live
    event = await watcher.until(lambda e: e.get("type") == "message_created" and e["message"].get("replyTo"))
    assert event["message"]["id"] == reply["id"] and event["message"]["suggestions"] == stored
    # after a reload, for any member; the question carries none
    question, answer = (await live.messages(VIEWER, cid))[-2:]
    assert answer["suggestions"] == stored and "suggestions" not in question
    # nothing ran; the viewer may run the message (viewer) but not the scheduling (editor)
    assert (await live.snapshot(OWNER, cid))["version"] == before["version"]
    for suggestion, status in zip(stored, (200, 403)):
        r = await live.http.post(
            f"/api/actions/{suggestion['action']}",
            headers=live.auth(VIEWER),
            json={"collaborationId": cid, "payload": suggestion["payload"]},
        )
        assert r.status_code == status, r.text
    assert (await live.act(EDITOR, "scheduleActivity", cid, stored[1]["payload"]))["version"] == before["version"] + 1
    await watcher.close()


async def test_an_answer_held_for_approval_keeps_its_suggestions_when_approved(fake, live):
    cid = await team(live)
    await live.act(OWNER, "setProtectedActions", cid, {"actions": ["sendMessage"]})
    fake.respond = lambda body: {
        "reply": "Pack warm socks.",
        "actions": [{"action": "proposeActivity", "payload": {"title": "Buy socks"}, "reason": "cold"}],
    }
    r = await chat(live, EDITOR, cid, {"message": "What to pack?"})
    assert r.status_code == 202, r.text
    stored = [{"action": "proposeActivity", "payload": {"title": "Buy socks"}, "reason": "cold"}]
    assert r.json()["approval"]["payload"]["suggestions"] == stored
    assert r.json()["suggestions"] == [{**stored[0], "allowed": True, "needs": None}]
    approved = await live.http.post(f"/api/approvals/{r.json()['approval']['id']}/approve", headers=live.auth(OWNER))
    assert approved.status_code == 200, approved.text
    _, posted = await live.messages(VIEWER, cid)
    assert posted["author"]["type"] == "ai" and posted["suggestions"] == stored
    assert (await live.snapshot(OWNER, cid))["activities"] == []  # approving the answer runs none of them
