"""AI chat's own limits, over real HTTP against the fake Groq server: per user, per collaboration, and
model calls at once. One shared Groq key serves every tenant, so no one account may use it up."""

from __future__ import annotations

import asyncio

import pytest

from backend.settings import SettingsError, load_settings
from tests.fake_groq import API_KEY, FakeGroq
from tests.realtime_support import live_server
from tests.support import EDITOR, OWNER, VIEWER
from tests.test_ai_chat import chat, team


@pytest.fixture
async def fake():
    async with FakeGroq(respond=lambda body: {"reply": "Sure.", "actions": []}) as server:
        yield server


def groq(fake, **overrides):
    return live_server(
        ai_provider="groq", groq_api_key=API_KEY, groq_base_url=fake.url, groq_model="llama-fake", **overrides
    )


async def questions(live, cid):
    return [m for m in await live.messages(OWNER, cid) if m["author"]["type"] == "user"]


def refused(r):
    assert r.status_code == 429, r.text
    assert r.json()["error"]["code"] == "rate_limited" and int(r.headers["retry-after"]) >= 1
    return r.json()["error"]


async def test_the_11th_chat_of_a_user_in_a_minute_is_429_and_groq_never_sees_it(fake):
    async with groq(fake) as live:
        assert live.runtime.settings.ai_chat_rate_limit == 10  # the default
        cid = await team(live)
        for n in range(10):
            r = await chat(live, EDITOR, cid, {"message": f"question {n}?"})
            assert r.status_code == 200, r.text
        error = refused(await chat(live, EDITOR, cid, {"message": "one too many?"}))
        assert "AI chats" in error["message"]
        assert len(fake.requests) == 10  # no 11th model call
        assert [q["text"] for q in await questions(live, cid)][-1] == "question 9?"  # nor an 11th question posted
        # the limit is the user's: another member still chats
        assert (await chat(live, VIEWER, cid, {"message": "mine?"})).status_code == 200
        assert len(fake.requests) == 11


async def test_a_collaboration_has_a_chat_limit_of_its_own(fake):
    async with groq(fake, ai_chat_collaboration_rate_limit=3) as live:
        cid = await team(live)
        other = await live.create(EDITOR, "Elsewhere")
        for email in (OWNER, EDITOR, VIEWER):
            assert (await chat(live, email, cid, {"message": "hi?"})).status_code == 200
        refused(await chat(live, EDITOR, cid, {"message": "again?"}))
        assert len(fake.requests) == 3
        # another collaboration is not held back by this one's chats
        assert (await chat(live, EDITOR, other, {"message": "here?"})).status_code == 200


async def test_past_ai_max_concurrency_a_chat_is_429_at_once_without_a_model_call(fake):
    async with groq(fake, ai_max_concurrency=1) as live:
        cid = await team(live)
        fake.delay = 0.5
        answers = await asyncio.gather(
            chat(live, EDITOR, cid, {"message": "first?"}), chat(live, VIEWER, cid, {"message": "second?"})
        )
        assert sorted(r.status_code for r in answers) == [200, 429]
        assert "as many questions" in refused(next(r for r in answers if r.status_code == 429))["message"]
        assert len(fake.requests) == 1
        fake.delay = 0
        # the slot is given back after the call
        assert (await chat(live, VIEWER, cid, {"message": "now?"})).status_code == 200


@pytest.mark.parametrize("name", ["AI_CHAT_RATE_LIMIT", "AI_CHAT_COLLABORATION_RATE_LIMIT", "AI_MAX_CONCURRENCY"])
def test_the_chat_limits_are_read_once_and_must_be_positive(name):
    assert getattr(load_settings({"AUTH_MODE": "dev", name: "7"}), name.lower()) == 7
    with pytest.raises(SettingsError) as info:
        load_settings({"AUTH_MODE": "dev", name: "0"})
    assert info.value.problems == [f"{name} must be greater than 0"]
