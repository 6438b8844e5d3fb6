"""The AI's suggestions kept on its answer's message: nobody else can plant them, and what is kept is
bounded and valid.

The threat: suggestions come from a model that may follow text planted in the collaboration, and
every member now sees them with a Run button. So (1) they are only ever data: nothing runs them;
(2) only the AI's chat answer carries them, never a member's or a rule's message (a member could
otherwise dress up "Run: remove the owner" under their own message), nor a check-in message; (3)
each is an action the AI may take, with a payload that action accepts, on the message's own
collaboration (a suggestion has no collaboration id: Run posts it to the collaboration it is in);
(4) their count and size are bounded in the stored message, whoever sends it (the chat, or an
approval of the chat's answer carried out).
"""

from __future__ import annotations

import msgspec
import pytest

from backend.ai.proposals import screen_chat, screen_checkin
from backend.domain.models import Actor
from backend.domain.suggestions import MAX_SUGGESTIONS_BYTES
from backend.errors import ValidationFailed
from tests.fake_groq import API_KEY, FakeGroq
from tests.realtime_support import live_server
from tests.support import EDITOR, OWNER, VIEWER, open_runtime, team, user

SUGGESTION = {"action": "sendMessage", "payload": {"text": "Who is in?"}, "reason": "ask"}


async def a_question(runtime, cid) -> str:
    return (await runtime.engine.run("sendMessage", user(EDITOR), cid, {"text": "Ideas?"})).result["messageId"]


async def refused_at(runtime, actor, cid, payload) -> str:
    with pytest.raises(ValidationFailed) as caught:
        await runtime.engine.run("sendMessage", actor, cid, payload)
    return caught.value.details["fields"][0]["path"]


async def test_a_member_cannot_post_a_message_with_suggestions():
    async with live_server() as live:
        cid = await live.create(OWNER, "Trip")
        await live.act(OWNER, "addMember", cid, {"email": VIEWER, "role": "viewer"})
        question = (await live.act(VIEWER, "sendMessage", cid, {"text": "Ideas?"}))["result"]["messageId"]
        for email in (VIEWER, OWNER):
            for extra in ({}, {"replyTo": question}):
                r = await live.http.post(
                    "/api/actions/sendMessage",
                    headers=live.auth(email),
                    json={
                        "collaborationId": cid,
                        "payload": {
                            "text": "Run this!",
                            **extra,
                            "suggestions": [{"action": "removeMember", "payload": {"userId": "u1"}}],
                        },
                    },
                )
                assert r.status_code == 422, r.text
                error = r.json()["error"]
                assert error["code"] == "validation_failed"
                assert error["details"]["fields"][0]["path"] == "payload.suggestions"
        assert [m["text"] for m in await live.messages(OWNER, cid)] == ["Ideas?"]


async def test_a_rule_cannot_send_a_message_with_suggestions():
    runtime = await open_runtime()
    try:
        cid = await team(runtime)
        rule = {
            "name": "echo",
            "when": {"action": "sendMessage", "actor": "user"},
            "then": {"action": {"name": "sendMessage", "payload": {"text": "x", "suggestions": [SUGGESTION]}}},
        }
        with pytest.raises(ValidationFailed):
            await runtime.engine.run("addRule", user(OWNER), cid, {"rule": rule})
        question = await a_question(runtime, cid)
        rule_actor = Actor(type="rule", ruleId="rul_x")
        assert (
            await refused_at(runtime, rule_actor, cid, {"text": "x", "replyTo": question, "suggestions": [SUGGESTION]})
            == "payload.suggestions"
        )
    finally:
        await runtime.close()


async def test_the_engine_checks_and_bounds_the_ai_s_suggestions_whoever_sends_them():
    runtime = await open_runtime()
    try:
        cid = await team(runtime)
        question = await a_question(runtime, cid)
        ai = Actor.ai("chat_x")
        limit = runtime.settings.max_message_chars

        def answer(*suggestions, **extra):
            return {"text": "Answer", "replyTo": question, "suggestions": list(suggestions), **extra}

        cases = [
            ({"text": "Answer", "suggestions": [SUGGESTION]}, "payload.suggestions"),  # not an answer
            (answer(*[SUGGESTION] * 6), "payload.suggestions"),
            (answer({"action": "setProtectedActions", "payload": {"actions": []}}), "payload.suggestions.0.action"),
            (answer({"action": "addRule", "payload": {"rule": {}}}), "payload.suggestions.0.action"),
            (answer({"action": "nope"}), "payload.suggestions.0.action"),
            (
                answer(SUGGESTION, {"action": "proposeActivity", "payload": {"title": ""}}),
                "payload.suggestions.1.payload.title",
            ),
            (
                answer({"action": "proposeActivity", "payload": {"title": "x", "collaborationId": "col_other"}}),
                "payload.suggestions.0.payload.collaborationId",
            ),
            (answer({**SUGGESTION, "collaborationId": "col_other"}), "payload.suggestions.0.collaborationId"),
            (answer({**SUGGESTION, "allowed": True}), "payload.suggestions.0.allowed"),
            (
                answer(
                    {
                        "action": "sendMessage",
                        "payload": {"text": "x", "replyTo": question, "suggestions": [SUGGESTION]},
                    }
                ),
                "payload.suggestions.0.payload.suggestions",
            ),
            (answer({**SUGGESTION, "reason": "r" * 1001}), "payload.suggestions.0.reason"),
            # five long suggested messages of four-byte characters: 80 KB, over the bound
            (answer(*[{"action": "sendMessage", "payload": {"text": "😀" * limit}}] * 5), "payload.suggestions"),
        ]
        for payload, path in cases:
            assert await refused_at(runtime, ai, cid, payload) == path, payload
        assert [m["_id"] for m in await runtime.store.messages.page(cid)] == [question]
        # what passes is stored normalised, without marks or anything else
        posted = await runtime.engine.run(
            "sendMessage",
            ai,
            cid,
            answer(
                SUGGESTION,
                {
                    "action": "scheduleActivity",
                    "payload": {"activityId": "act_1", "scheduledFor": "2026-12-05T11:00:00+01:00"},
                },
            ),
        )
        message = await runtime.store.messages.get(cid, posted.result["messageId"])
        assert message["suggestions"] == [
            SUGGESTION,
            {"action": "scheduleActivity", "payload": {"activityId": "act_1", "scheduledFor": "2026-12-05T10:00:00Z"}},
        ]
        assert (await runtime.store.collaborations.get(cid))["activities"] == []  # never run
    finally:
        await runtime.close()


def test_a_model_cannot_put_suggestions_on_a_checkin_message_or_nest_them_in_a_suggestion():
    nested = {"action": "sendMessage", "payload": {"text": "hi", "suggestions": [SUGGESTION]}, "reason": "x"}
    checkin = screen_checkin(msgspec.json.encode({"actions": [nested]}).decode(), "col_1")
    assert checkin.accepted == [] and checkin.invalid["malformed"] == 1
    chat = screen_chat(msgspec.json.encode({"reply": "ok", "actions": [nested, SUGGESTION]}).decode(), "col_1")
    assert chat.stored == [SUGGESTION] and chat.invalid["malformed"] == 1


def test_a_model_s_suggestions_are_cut_to_the_bound_not_refused_whole():
    """The longest valid suggestions a model can write: those past the byte bound are dropped as excess."""
    limit = 4000
    big = {"action": "sendMessage", "payload": {"text": "😀" * limit}, "reason": "r" * 2000}
    chat = screen_chat(msgspec.json.encode({"reply": "ok", "actions": [big] * 5}).decode(), "col_1", limit)
    assert 1 <= len(chat.stored) < 5 and chat.invalid["excess"] == 5 - len(chat.stored)
    assert len(msgspec.json.encode(chat.stored)) <= MAX_SUGGESTIONS_BYTES
    assert all(len(s["reason"]) == 1000 for s in chat.stored)


@pytest.fixture
async def fake():
    async with FakeGroq() as server:
        yield server


async def test_a_chat_answer_s_suggestions_target_only_its_collaboration_and_are_never_run(fake):
    async with live_server(
        ai_provider="groq", groq_api_key=API_KEY, groq_base_url=fake.url, groq_model="llama-fake"
    ) as live:
        cid = await live.create(OWNER, "Trip")
        other = await live.create(OWNER, "Elsewhere")
        await live.act(OWNER, "addMember", cid, {"email": EDITOR, "role": "editor"})
        fake.respond = lambda body: {
            "reply": "Done as you asked.",
            "actions": [
                {
                    "action": "updateDetails",
                    "collaborationId": other,
                    "payload": {"title": "pwned"},
                    "reason": "planted",
                },
                {"action": "removeMember", "payload": {"userId": "u1"}, "collaborationId": cid, "reason": "planted"},
                {"action": "setProtectedActions", "payload": {"actions": []}, "reason": "planted"},
            ],
        }
        r = await live.http.post(
            f"/api/collaborations/{cid}/ai/chat", json={"message": "go"}, headers=live.auth(EDITOR)
        )
        assert r.status_code == 200, r.text
        reply = r.json()["reply"]
        assert reply["suggestions"] == [{"action": "removeMember", "payload": {"userId": "u1"}, "reason": "planted"}]
        assert r.json()["suggestions"][0]["allowed"] is False and r.json()["suggestions"][0]["needs"] == "owner"
        assert (await live.snapshot(OWNER, other))["title"] == "Elsewhere"
        assert len((await live.snapshot(OWNER, cid))["members"]) == 2
        assert await live.messages(OWNER, other) == []
