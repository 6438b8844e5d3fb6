"""The action catalogue is the one source of truth: an action declared in one place (a throwaway
one, here) is reachable over HTTP, by rules (as `when` and as a follow-up), by the AI's
protection list, in the OpenAPI document, and the SPA's generated copy no longer matches."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import httpx
import msgspec
import pytest

from backend import catalogue_ts
from backend.composition import build_api
from backend.domain import payloads as p
from backend.domain.catalogue import AI_ACTIONS, ActionSpec, declare
from backend.errors import ValidationFailed
from backend.rules import schema
from backend.settings import test_settings
from tests.support import EDITOR, OWNER, VIEWER, LiveServer, token


class PinNote(p._Payload):
    note: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    until: datetime | None = None  # not a field rules see (rule_fields below)


def pin_note(c: Any, payload: PinNote, ctx: Any, touched: list[str]) -> dict[str, Any]:
    c.description = f"📌 {payload.note}"
    touched.append("description")
    return {"pinned": payload.note}


PREPARED: list[str] = []


async def refuse_secrets(engine: Any, prep: Any) -> None:
    PREPARED.append(prep.payload.note)
    if "secret" in prep.payload.note:
        raise ValidationFailed.at("payload.note", "No secrets on the board")


PIN = ActionSpec(
    "pinNote",
    PinNote,
    "editor",
    "approval",
    effect=pin_note,
    prepare=refuse_secrets,
    followup=True,
    rule_fields=("note",),
)


@pytest.fixture
def pin():
    undo = declare(PIN)
    PREPARED.clear()
    try:
        yield PIN
    finally:
        undo()


@pytest.fixture
async def api(pin):
    settings = test_settings(action_rate_limit=1000)
    async with LiveServer(build_api(settings), settings) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
            client.settings = settings
            yield client


async def call(api, email, name, cid, payload):
    return await api.post(
        f"/api/actions/{name}",
        json={"collaborationId": cid, "payload": payload},
        headers={"authorization": f"Bearer {token(api.settings, email)}"},
    )


async def team(api) -> str:
    r = await api.post(
        "/api/collaborations", json={"title": "Club"}, headers={"authorization": f"Bearer {token(api.settings, OWNER)}"}
    )
    cid = r.json()["id"]
    await call(api, OWNER, "addMember", cid, {"email": EDITOR, "role": "editor"})
    await call(api, OWNER, "addMember", cid, {"email": VIEWER, "role": "viewer"})
    return cid


def fields(r) -> list[str]:
    return [f["path"] for f in r.json()["error"]["details"]["fields"]]


async def description(api, cid) -> str | None:
    r = await api.get(f"/api/collaborations/{cid}", headers={"authorization": f"Bearer {token(api.settings, OWNER)}"})
    return r.json().get("description")


async def test_a_declared_action_runs_over_http_with_its_role_payload_and_prepare_hook(api):
    cid = await team(api)
    r = await call(api, EDITOR, "pinNote", cid, {"note": "bring snacks"})
    assert r.status_code == 200, r.text
    assert r.json()["result"] == {"pinned": "bring snacks"}
    assert await description(api, cid) == "📌 bring snacks"
    r = await call(api, VIEWER, "pinNote", cid, {"note": "hi"})
    assert (r.status_code, r.json()["error"]["code"]) == (403, "forbidden")
    r = await call(api, EDITOR, "pinNote", cid, {"note": ""})
    assert r.status_code == 422 and fields(r) == ["payload.note"]
    r = await call(api, EDITOR, "pinNote", cid, {"note": "the secret code"})  # its prepare hook refuses
    assert r.status_code == 422 and fields(r) == ["payload.note"]
    assert PREPARED == ["bring snacks", "the secret code"]
    r = await call(api, EDITOR, "pinNote", cid, {"note": "x", "until": 1767225600})  # no Unix timestamps
    assert fields(r) == ["payload.until"] and "A time is a string" in r.text
    r = await call(api, EDITOR, "pinNote", cid, {"note": "x", "until": "0001-01-01T00:00:00Z"})
    assert fields(r) == ["payload.until"] and "Out of range" in r.text


async def test_rules_can_name_a_declared_action_as_when_and_as_follow_up(api):
    cid = await team(api)
    deny = {
        "name": "No shouting",
        "when": {"action": "pinNote"},
        "if": {"==": [{"var": "payload.note"}, "SHOUT"]},
        "then": {"deny": {"message": "Quietly."}},
    }
    r = await call(api, OWNER, "addRule", cid, {"rule": deny})
    assert r.status_code == 200, r.text
    r = await call(api, EDITOR, "pinNote", cid, {"note": "SHOUT"})
    assert (r.status_code, r.json()["error"]["code"]) == (403, "rule_denied")
    follow = {
        "name": "Pin what is proposed",
        "when": {"action": "proposeActivity"},
        "then": {"action": {"name": "pinNote", "payload": {"note": {"var": "payload.title"}}}},
    }
    r = await call(api, OWNER, "addRule", cid, {"rule": follow})
    assert r.status_code == 200, r.text
    r = await call(api, EDITOR, "proposeActivity", cid, {"title": "Hike"})
    assert r.status_code == 200 and r.json()["followups"][0]["ok"] is True, r.text
    assert await description(api, cid) == "📌 Hike"
    unknown = {
        "name": "x",
        "when": {"action": "pinNote"},
        "if": {"==": [{"var": "payload.until"}, "x"]},
        "then": {"deny": {"message": "no"}},
    }  # a field left out of rule_fields
    r = await call(api, OWNER, "addRule", cid, {"rule": unknown})
    assert r.status_code == 422 and "payload.until" in r.text


async def test_the_ai_protection_list_and_the_openapi_document_have_a_declared_action(api):
    cid = await team(api)
    r = await call(api, OWNER, "setProtectedActions", cid, {"actions": ["pinNote"]})
    assert r.status_code == 200 and r.json()["result"]["protectedActions"] == ["pinNote"]
    doc = (await api.get("/api/openapi.json")).json()
    operation = doc["paths"]["/api/actions/pinNote"]["post"]
    assert "least role: editor; AI: approval" in operation["summary"]
    assert doc["components"]["schemas"]["PinNote"]["required"] == ["note"]


def test_the_derived_tables_follow_the_catalogue(pin):
    assert "pinNote" in AI_ACTIONS and "pinNote" in schema.FOLLOWUP_ACTIONS and "pinNote" in schema.ACTIONS
    assert list(schema.PAYLOADS["pinNote"]) == ["note"]
    assert "pinNote" in catalogue_ts.render()
    assert catalogue_ts.PATH.read_text() != catalogue_ts.render()  # the SPA's copy is stale: its test fails


def test_the_derived_tables_forget_an_undeclared_action():
    assert "pinNote" not in AI_ACTIONS and "pinNote" not in schema.PAYLOADS
    assert catalogue_ts.PATH.read_text() == catalogue_ts.render()


def test_an_action_is_declared_once_and_with_an_effect(pin):
    with pytest.raises(ValueError, match="twice"):
        declare(PIN)
    with pytest.raises(ValueError, match="no effect"):
        declare(ActionSpec("inert", p.Empty, None, "never"))


def test_tandem_catalogue_ts_check_says_when_the_spa_copy_is_stale(pin, capsys):
    from backend import cli

    assert cli.main(["catalogue-ts", "--check"]) == 1
    assert "run `tandem catalogue-ts`" in capsys.readouterr().err


def test_tandem_catalogue_ts_check_passes_on_the_committed_copy():
    from backend import cli

    assert cli.main(["catalogue-ts", "--check"]) == 0
