"""Owner rules seen end to end through the REST API: deny, approval, follow-ups, limits."""

from __future__ import annotations

import httpx
import pytest

from backend.composition import build_api
from backend.settings import test_settings
from tests.support import EDITOR, OWNER, VIEWER, LiveServer, token

WEEKENDS = {
    "name": "Nobody schedules on weekends",
    "when": {"action": "scheduleActivity"},
    "if": {"in": [{"weekday": {"var": "payload.scheduledFor"}}, [6, 7]]},
    "then": {"deny": {"message": "We do not schedule on weekends."}},
}
EDITOR_CANCELS = {
    "name": "Editors' cancellations need my approval",
    "when": {"action": "cancelActivity", "actor": "user"},
    "if": {"==": [{"var": "actor.role"}, "editor"]},
    "then": {"require_approval": {"reason": "Editors cancel only with an owner's approval."}},
}
THANKS = {
    "name": "Thank whoever completes an activity",
    "when": {"action": "completeActivity"},
    "then": {
        "action": {
            "name": "sendMessage",
            "payload": {"text": {"cat": ["Thanks for finishing ", {"var": "collaboration.activity.title"}, "!"]}},
        }
    },
}
ECHO = {
    "name": "Echo every message",
    "when": {"action": "sendMessage"},
    "then": {"action": {"name": "sendMessage", "payload": {"text": {"cat": ["echo: ", {"var": "payload.text"}]}}}},
}
SATURDAY, MONDAY = "2026-12-05T10:00:00Z", "2026-12-07T10:00:00Z"


@pytest.fixture
async def api():
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


async def setup(api):
    r = await api.post(
        "/api/collaborations", json={"title": "Club"}, headers={"authorization": f"Bearer {token(api.settings, OWNER)}"}
    )
    cid = r.json()["id"]
    await call(api, OWNER, "addMember", cid, {"email": EDITOR, "role": "editor"})
    await call(api, OWNER, "addMember", cid, {"email": VIEWER, "role": "viewer"})
    act = (await call(api, EDITOR, "proposeActivity", cid, {"title": "Read chapter 1"})).json()["result"]["activityId"]
    return cid, act


async def snapshot(api, cid):
    r = await api.get(f"/api/collaborations/{cid}", headers={"authorization": f"Bearer {token(api.settings, OWNER)}"})
    return r.json()


async def test_deny_rule_refuses_with_rule_denied_and_writes_nothing(api):
    cid, act = await setup(api)
    rule = (await call(api, OWNER, "addRule", cid, {"rule": WEEKENDS})).json()["result"]["ruleId"]
    before = (await snapshot(api, cid))["version"]
    r = await call(api, EDITOR, "scheduleActivity", cid, {"activityId": act, "scheduledFor": SATURDAY})
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "rule_denied"
    assert r.json()["error"]["details"] == {"ruleId": rule, "message": "We do not schedule on weekends."}
    assert (await snapshot(api, cid))["version"] == before
    ok = await call(api, EDITOR, "scheduleActivity", cid, {"activityId": act, "scheduledFor": MONDAY})
    assert ok.status_code == 200


OPEN_CAP = {
    "name": "No more than 2 open activities",
    "when": {"action": "proposeActivity"},
    "if": {">=": [{"var": "collaboration.openActivityCount"}, 2]},
    "then": {"deny": {"message": "Finish something first: at most 2 open activities."}},
}


async def test_a_deny_rule_caps_the_open_activities(api):
    """The counts are of the collaboration before the action: with 2 open, a third is refused;
    once one is cancelled (no longer open, still counted by activityCount) there is room again."""
    cid, act = await setup(api)
    rule = (await call(api, OWNER, "addRule", cid, {"rule": OPEN_CAP})).json()["result"]["ruleId"]
    second = await call(api, EDITOR, "proposeActivity", cid, {"title": "Read chapter 2"})
    assert second.status_code == 200
    r = await call(api, OWNER, "proposeActivity", cid, {"title": "Read chapter 3"})
    assert r.status_code == 403
    assert r.json()["error"]["details"] == {"ruleId": rule, "message": OPEN_CAP["then"]["deny"]["message"]}
    assert len((await snapshot(api, cid))["activities"]) == 2
    assert (await call(api, EDITOR, "cancelActivity", cid, {"activityId": act})).status_code == 200
    assert (await call(api, OWNER, "proposeActivity", cid, {"title": "Read chapter 3"})).status_code == 200
    # activityCount counts done and cancelled ones too: 3 activities, 1 open once chapter 2 is done.
    total = {**OPEN_CAP, "name": "At most 3 activities ever", "if": {">=": [{"var": "collaboration.activityCount"}, 3]}}
    added = await call(api, OWNER, "addRule", cid, {"rule": total})
    assert added.status_code == 200, added.text
    sid = second.json()["result"]["activityId"]
    assert (
        await call(api, EDITOR, "scheduleActivity", cid, {"activityId": sid, "scheduledFor": MONDAY})
    ).status_code == 200
    assert (await call(api, EDITOR, "completeActivity", cid, {"activityId": sid})).status_code == 200
    capped = await call(api, EDITOR, "proposeActivity", cid, {"title": "Read chapter 4"})
    assert capped.status_code == 403
    assert capped.json()["error"]["details"]["ruleId"] == added.json()["result"]["ruleId"]


async def test_require_approval_turns_an_editors_action_into_an_approval(api):
    cid, act = await setup(api)
    rule = (await call(api, OWNER, "addRule", cid, {"rule": EDITOR_CANCELS})).json()["result"]["ruleId"]
    r = await call(api, EDITOR, "cancelActivity", cid, {"activityId": act, "reason": "busy"})
    assert r.status_code == 202
    approval = r.json()["approval"]
    assert approval["status"] == "pending" and approval["action"] == "cancelActivity"
    assert approval["reason"] == "Editors cancel only with an owner's approval."
    assert approval["rules"] == [rule] and approval["proposedBy"]["type"] == "user"
    assert (await snapshot(api, cid))["activities"][0]["status"] == "proposed"
    # the owner is not an editor: the rule does not fire for them
    assert (await call(api, OWNER, "cancelActivity", cid, {"activityId": act})).status_code == 200


async def test_follow_up_action_runs_as_the_rule_and_audit_records_it(api):
    cid, act = await setup(api)
    rule = (await call(api, OWNER, "addRule", cid, {"rule": THANKS})).json()["result"]["ruleId"]
    await call(api, EDITOR, "scheduleActivity", cid, {"activityId": act, "scheduledFor": MONDAY})
    r = await call(api, EDITOR, "completeActivity", cid, {"activityId": act})
    assert r.status_code == 200 and r.json()["followups"][0]["ok"] is True
    h = {"authorization": f"Bearer {token(api.settings, VIEWER)}"}
    msgs = (await api.get(f"/api/collaborations/{cid}/messages", headers=h)).json()["messages"]
    assert [m["text"] for m in msgs] == ["Thanks for finishing Read chapter 1!"]
    assert msgs[0]["author"] == {"type": "rule", "id": rule}
    entries = (await api.get(f"/api/collaborations/{cid}/audit", headers=h)).json()["entries"]
    completed = next(e for e in entries if e["action"] == "completeActivity")
    assert completed["rulesFired"] == [rule]


async def test_follow_ups_cannot_loop(api):
    cid, _ = await setup(api)
    await call(api, OWNER, "addRule", cid, {"rule": ECHO})
    r = await call(api, VIEWER, "sendMessage", cid, {"text": "hi"})
    assert r.status_code == 200
    h = {"authorization": f"Bearer {token(api.settings, VIEWER)}"}
    msgs = (await api.get(f"/api/collaborations/{cid}/messages", headers=h)).json()["messages"]
    from backend.rules import FOLLOWUP_DEPTH_LIMIT

    assert len(msgs) == 1 + FOLLOWUP_DEPTH_LIMIT
    assert msgs[-1]["text"] == "echo: " * FOLLOWUP_DEPTH_LIMIT + "hi"


async def test_bad_rules_are_refused_with_the_exact_place(api):
    cid, _ = await setup(api)
    bad = {**WEEKENDS, "if": {"in": [{"weekday": {"var": "payload.nope"}}, [6, 7]]}}
    r = await call(api, OWNER, "addRule", cid, {"rule": bad})
    assert r.status_code == 422 and r.json()["error"]["code"] == "validation_failed"
    assert r.json()["error"]["details"]["fields"][0]["path"].startswith("payload.rule.if")
    r = await call(api, OWNER, "addRule", cid, {"rule": {**WEEKENDS, "when": {"action": "launchRockets"}}})
    assert r.status_code == 422
    assert (await snapshot(api, cid))["rules"] == []


async def test_rule_management_is_owner_only_and_versioned(api):
    cid, _ = await setup(api)
    assert (await call(api, EDITOR, "addRule", cid, {"rule": WEEKENDS})).status_code == 403
    added = (await call(api, OWNER, "addRule", cid, {"rule": WEEKENDS})).json()
    rule_id = added["result"]["ruleId"]
    disabled = {**WEEKENDS, "id": rule_id, "enabled": False}
    updated = await call(api, OWNER, "updateRule", cid, {"rule": disabled})
    assert updated.status_code == 200 and updated.json()["version"] == added["version"] + 1
    assert (await snapshot(api, cid))["rules"][0]["enabled"] is False
    assert (await call(api, OWNER, "removeRule", cid, {"ruleId": rule_id})).status_code == 200
    assert (await call(api, OWNER, "removeRule", cid, {"ruleId": rule_id})).status_code == 404
    assert (await snapshot(api, cid))["rules"] == []


def echo(n: int) -> dict:
    return {**ECHO, "name": f"Echo {n}"}


async def audit(api, cid):
    h = {"authorization": f"Bearer {token(api.settings, OWNER)}"}
    return (await api.get(f"/api/collaborations/{cid}/audit?limit=100", headers=h)).json()["entries"]


async def test_follow_ups_of_one_action_stop_at_the_follow_up_limit(api):
    from backend.rules import FOLLOWUP_LIMIT

    cid, _ = await setup(api)
    rules = [(await call(api, OWNER, "addRule", cid, {"rule": echo(n)})).json()["result"]["ruleId"] for n in range(5)]
    r = await call(api, VIEWER, "sendMessage", cid, {"text": "hi"})  # without the limit: 5 + 25 + 125 more
    assert r.status_code == 200
    followups = r.json()["followups"]
    assert [f["ruleId"] for f in followups] == rules
    assert followups[0]["ok"] is True and followups[-1] == {
        "ruleId": rules[-1],
        "action": "sendMessage",
        "ok": False,
        "error": "followup_limit",
    }
    h = {"authorization": f"Bearer {token(api.settings, VIEWER)}"}
    msgs = (await api.get(f"/api/collaborations/{cid}/messages?limit=200", headers=h)).json()["messages"]
    assert len(msgs) == 1 + FOLLOWUP_LIMIT
    assert FOLLOWUP_LIMIT == 10


async def test_the_trigger_audit_entry_records_its_follow_ups(api):
    cid, act = await setup(api)
    thanks = (await call(api, OWNER, "addRule", cid, {"rule": THANKS})).json()["result"]["ruleId"]
    bogus = {
        "name": "Complete a missing one",
        "when": {"action": "completeActivity"},
        "then": {"action": {"name": "completeActivity", "payload": {"activityId": "act_nope"}}},
    }
    bogus = (await call(api, OWNER, "addRule", cid, {"rule": bogus})).json()["result"]["ruleId"]
    await call(api, EDITOR, "scheduleActivity", cid, {"activityId": act, "scheduledFor": MONDAY})
    r = await call(api, EDITOR, "completeActivity", cid, {"activityId": act})
    expected = [
        {"ruleId": thanks, "action": "sendMessage", "ok": True, "approval": False},
        {"ruleId": bogus, "action": "completeActivity", "ok": False, "error": "not_found"},
    ]
    assert r.json()["followups"] == expected
    completed = next(e for e in await audit(api, cid) if e["action"] == "completeActivity")
    assert completed["rulesFired"] == [thanks, bogus] and completed["followups"] == expected


async def test_follow_ups_of_an_action_carried_out_from_an_approval_are_in_its_audit_entry(api):
    cid, act = await setup(api)
    await call(api, OWNER, "addRule", cid, {"rule": EDITOR_CANCELS})
    notice = {
        "name": "Say so",
        "when": {"action": "cancelActivity"},
        "then": {"action": {"name": "sendMessage", "payload": {"text": "Cancelled."}}},
    }
    notice = (await call(api, OWNER, "addRule", cid, {"rule": notice})).json()["result"]["ruleId"]
    approval = (await call(api, EDITOR, "cancelActivity", cid, {"activityId": act})).json()["approval"]
    h = {"authorization": f"Bearer {token(api.settings, OWNER)}"}
    assert (await api.post(f"/api/approvals/{approval['id']}/approve", headers=h)).status_code == 200
    cancelled = next(e for e in await audit(api, cid) if e["action"] == "cancelActivity")
    assert cancelled["approvalId"] == approval["id"]
    assert cancelled["followups"] == [{"ruleId": notice, "action": "sendMessage", "ok": True, "approval": False}]


@pytest.mark.parametrize(
    "when",
    [{"action": ["sendMessage"]}, {"action": {"a": 1}}, {"action": 7}, {"action": "sendMessage", "actor": ["user"]}],
)
async def test_a_when_of_the_wrong_type_is_refused_not_a_server_error(api, when):
    cid, _ = await setup(api)
    r = await call(
        api, OWNER, "addRule", cid, {"rule": {"name": "n", "when": when, "then": {"deny": {"message": "m"}}}}
    )
    assert r.status_code == 422 and r.json()["error"]["code"] == "validation_failed"
    field = "actor" if "actor" in when else "action"
    assert [f["path"] for f in r.json()["error"]["details"]["fields"]] == [f"payload.rule.when.{field}"]


async def test_no_rule_keeps_a_member_from_leaving(api):
    cid, _ = await setup(api)
    stay = {"name": "Stay", "when": {"action": "leaveCollaboration"}, "then": {"deny": {"message": "Stay."}}}
    r = await call(api, OWNER, "addRule", cid, {"rule": stay})
    assert r.status_code == 422
    assert r.json()["error"]["details"]["fields"][0] == {
        "path": "payload.rule.when.action",
        "message": "rules do not apply to leaveCollaboration: a member can always leave",
    }
    for effect in ({"require_approval": {}}, {"deny": {"message": "Nobody goes anywhere."}}):
        rule = {"name": "Everything waits", "when": {"action": "*"}, "then": effect}
        assert (await call(api, OWNER, "addRule", cid, {"rule": rule})).status_code == 200
    r = await call(api, VIEWER, "leaveCollaboration", cid, {})
    assert r.status_code == 200, r.text
    assert VIEWER not in [m["email"] for m in (await snapshot(api, cid))["members"]]


async def test_a_follow_up_held_back_by_a_rule_is_an_approval_proposed_by_the_rule(api):
    cid, _ = await setup(api)
    propose = {
        "name": "Plan a reply",
        "when": {"action": "sendMessage", "actor": "user"},
        "then": {"action": {"name": "proposeActivity", "payload": {"title": "Reply"}}},
    }
    propose = (await call(api, OWNER, "addRule", cid, {"rule": propose})).json()["result"]["ruleId"]
    wait = {"name": "Plans wait", "when": {"action": "proposeActivity"}, "then": {"require_approval": {}}}
    wait = (await call(api, OWNER, "addRule", cid, {"rule": wait})).json()["result"]["ruleId"]
    r = await call(api, VIEWER, "sendMessage", cid, {"text": "hi"})
    assert r.json()["followups"] == [{"ruleId": propose, "action": "proposeActivity", "ok": True, "approval": True}]
    h = {"authorization": f"Bearer {token(api.settings, OWNER)}"}
    [approval] = [
        a
        for a in (await api.get("/api/approvals?status=pending", headers=h)).json()["approvals"]
        if a["collaborationId"] == cid
    ]
    assert approval["proposedBy"] == {"type": "rule", "ruleId": propose} and approval["rules"] == [wait]


async def test_a_rule_change_reaches_a_subscriber_as_collaboration_updated():
    from tests.realtime_support import apply_changes, live_server

    async with live_server() as live:
        cid = await live.create(OWNER)
        await live.act(OWNER, "addMember", cid, {"email": VIEWER, "role": "viewer"})
        client = await live.client(VIEWER)
        await client.subscribe(cid)
        copy = (await client.expect("snapshot"))["collaboration"]
        for name, payload in [("addRule", {"rule": WEEKENDS}), ("addRule", {"rule": THANKS})]:
            added = await live.act(OWNER, name, cid, payload)
            update = await client.until("collaboration_updated")
            assert update["action"] == name and update["version"] == added["version"]
            copy = apply_changes(copy, update["changes"])
        rules = (await live.snapshot(OWNER, cid))["rules"]
        assert copy["rules"] == rules and [r["name"] for r in rules] == [WEEKENDS["name"], THANKS["name"]]
        removed = await live.act(OWNER, "removeRule", cid, {"ruleId": rules[0]["id"]})
        update = await client.until("collaboration_updated")
        assert update["action"] == "removeRule" and update["version"] == removed["version"]
        assert apply_changes(copy, update["changes"])["rules"] == rules[1:]
        await client.close()


async def test_a_literal_follow_up_message_is_held_to_the_servers_max_message_chars():
    settings = test_settings(action_rate_limit=1000, max_message_chars=20)
    async with LiveServer(build_api(settings), settings) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as api:
            api.settings = settings
            cid, _ = await setup(api)

            def say(text):
                return {
                    "name": "Say",
                    "when": {"action": "completeActivity"},
                    "then": {"action": {"name": "sendMessage", "payload": {"text": text}}},
                }

            r = await call(api, OWNER, "addRule", cid, {"rule": say("x" * 21)})
            assert r.status_code == 422, r.text
            [field] = r.json()["error"]["details"]["fields"]
            assert field["path"] == "payload.rule.then.action.payload.text" and "1 to 20" in field["message"]
            assert (await call(api, OWNER, "addRule", cid, {"rule": say("x" * 20)})).status_code == 200
