"""The action engine: every action, every role, lifecycles, versions and the audit trail."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from backend.domain.catalogue import CATALOGUE, DEFAULT_PROTECTED
from backend.domain.models import Actor
from backend.engine import Applied, NeedsApproval
from backend.errors import (
    DocumentTooLarge,
    Forbidden,
    InvalidTransition,
    NotFound,
    ValidationFailed,
    VersionConflict,
)
from backend.runtime import Runtime
from backend.settings import test_settings
from tests.support import EDITOR, OWNER, STRANGER, VIEWER, open_runtime, team, user


@pytest.fixture
async def rt(any_store_handle):
    """A runtime on the embedded store, and on real MongoDB when MONGODB_URI is set."""
    runtime = Runtime(test_settings(), any_store_handle)
    yield runtime
    await runtime.verifier.aclose()
    await runtime.directory.aclose()


async def doc(rt, cid):
    return await rt.store.collaborations.get(cid)


async def audit(rt, cid):
    return list(reversed(await rt.store.audit.page(cid, limit=200)))


async def test_create_makes_the_caller_owner_at_version_1_with_an_audit_entry(rt):
    out = await rt.engine.run("createCollaboration", user(OWNER), None, {"title": " Trip "}, actor_email=OWNER)
    assert isinstance(out, Applied) and out.version == 1
    d = await doc(rt, out.collaborationId)
    assert d["_id"].startswith("col_") and d["title"] == "Trip" and d["status"] == "active"
    assert d["members"][0]["role"] == "owner" and d["members"][0]["email"] == OWNER
    assert d["memberIds"] == [user(OWNER).id]
    assert d["settings"]["protectedActions"] == list(DEFAULT_PROTECTED)
    assert d["createdAt"].tzinfo is not None
    entries = await audit(rt, out.collaborationId)
    assert [(e["action"], e["version"]) for e in entries] == [("createCollaboration", 1)]


async def test_every_document_change_raises_the_version_by_one_with_one_audit_entry(rt):
    cid = await team(rt)
    e = rt.engine
    steps = [
        ("updateDetails", user(EDITOR), {"description": "Plans"}),
        ("proposeActivity", user(EDITOR), {"title": "Hike", "assigneeId": user(VIEWER).id}),
    ]
    version = 3
    for name, actor, payload in steps:
        out = await e.run(name, actor, cid, payload)
        version += 1
        assert out.version == version
    act = (await doc(rt, cid))["activities"][0]["id"]
    for name, payload in (
        ("scheduleActivity", {"activityId": act, "scheduledFor": "2026-12-01T10:00:00Z"}),
        ("completeActivity", {"activityId": act}),
    ):
        out = await e.run(name, user(EDITOR), cid, payload)
        version += 1
        assert out.version == version
    d = await doc(rt, cid)
    assert d["version"] == version == 7
    assert d["activities"][0]["status"] == "done"
    assert d["lastAction"]["name"] == "completeActivity"
    entries = await audit(rt, cid)
    assert [x["version"] for x in entries] == list(range(1, 8))
    assert entries[-1]["actor"] == {"type": "user", "id": user(EDITOR).id}


async def test_send_message_inserts_a_message_and_leaves_the_version(rt):
    cid = await team(rt)
    out = await rt.engine.run("sendMessage", user(VIEWER), cid, {"text": "hi"})
    assert out.version == 3 and out.result["messageId"].startswith("msg_")
    assert (await doc(rt, cid))["version"] == 3
    msgs = await rt.store.messages.page(cid)
    assert [m["text"] for m in msgs] == ["hi"] and msgs[0]["author"] == {"type": "user", "id": user(VIEWER).id}
    assert (await audit(rt, cid))[-1]["action"] == "sendMessage"


ROLE_CASES = [
    (name, spec.role) for name, spec in CATALOGUE.items() if spec.role is not None and name != "leaveCollaboration"
]


@pytest.mark.parametrize("name, least", ROLE_CASES)
async def test_each_action_refuses_roles_below_its_least_role(rt, name, least):
    cid = await team(rt)
    below = {"owner": [EDITOR, VIEWER], "editor": [VIEWER], "viewer": []}[least]
    for email in below:
        with pytest.raises(Forbidden):
            await rt.engine.run(name, user(email), cid, _sample_payload(name, await doc(rt, cid)))
    assert (await doc(rt, cid))["version"] == 3


@pytest.mark.parametrize("name", sorted(CATALOGUE))
async def test_a_stranger_gets_not_found_for_every_action(rt, name):
    if name == "createCollaboration":
        return
    cid = await team(rt)
    with pytest.raises(NotFound):
        await rt.engine.run(name, user(STRANGER), cid, _sample_payload(name, await doc(rt, cid)))


def _sample_payload(name: str, d: dict) -> dict:
    act = d["activities"][0]["id"] if d["activities"] else "act_missing"
    return {
        "updateDetails": {"title": "New"},
        "archiveCollaboration": {},
        "addMember": {"email": "n@e.co", "role": "viewer"},
        "removeMember": {"userId": user(VIEWER).id},
        "changeRole": {"userId": user(VIEWER).id, "role": "editor"},
        "leaveCollaboration": {},
        "proposeActivity": {"title": "A"},
        "scheduleActivity": {"activityId": act, "scheduledFor": "2026-12-01T10:00:00Z"},
        "completeActivity": {"activityId": act},
        "cancelActivity": {"activityId": act},
        "sendMessage": {"text": "x"},
        "setProtectedActions": {"actions": []},
        "addRule": {
            "rule": {
                "name": "r",
                "when": {"action": "sendMessage", "actor": "any"},
                "if": True,
                "then": {"deny": {"message": "no"}},
            }
        },
        "updateRule": {"rule": {"id": "rul_x"}},
        "removeRule": {"ruleId": "rul_x"},
    }[name]


async def test_unknown_collaboration_and_unknown_action(rt):
    with pytest.raises(NotFound):
        await rt.engine.run("updateDetails", user(OWNER), "col_nope", {"title": "x"})
    with pytest.raises(NotFound) as info:
        await rt.engine.run("dropDatabase", user(OWNER), "col_nope", {})
    assert info.value.details["action"] == "dropDatabase"


ALLOWED = {
    ("proposed", "scheduleActivity"),
    ("proposed", "cancelActivity"),
    ("scheduled", "completeActivity"),
    ("scheduled", "cancelActivity"),
}


@pytest.mark.parametrize("start", ["proposed", "scheduled", "done", "cancelled"])
@pytest.mark.parametrize("action", ["scheduleActivity", "completeActivity", "cancelActivity"])
async def test_activity_lifecycle(rt, start, action):
    cid = await team(rt)
    e, ed = rt.engine, user(EDITOR)
    act = (await e.run("proposeActivity", ed, cid, {"title": "A"})).result["activityId"]
    path = {"proposed": [], "scheduled": ["schedule"], "done": ["schedule", "complete"], "cancelled": ["cancel"]}
    for step in path[start]:
        payload = {"activityId": act}
        if step == "schedule":
            payload["scheduledFor"] = "2026-12-01T10:00:00Z"
        await e.run(f"{step}Activity", ed, cid, payload)
    payload = {"activityId": act}
    if action == "scheduleActivity":
        payload["scheduledFor"] = "2026-12-02T10:00:00Z"
    before = (await doc(rt, cid))["version"]
    if (start, action) in ALLOWED:
        out = await e.run(action, ed, cid, payload)
        assert out.version == before + 1
    else:
        with pytest.raises(InvalidTransition) as info:
            await e.run(action, ed, cid, payload)
        assert info.value.details["from"] == start
        assert (await doc(rt, cid))["version"] == before


async def test_unknown_activity_is_not_found(rt):
    cid = await team(rt)
    with pytest.raises(NotFound):
        await rt.engine.run("completeActivity", user(EDITOR), cid, {"activityId": "act_nope"})


async def test_expected_version_conflict_writes_nothing(rt):
    cid = await team(rt)
    with pytest.raises(VersionConflict) as info:
        await rt.engine.run("updateDetails", user(OWNER), cid, {"title": "X"}, expected_version=2)
    assert info.value.details == {"expectedVersion": 2, "currentVersion": 3}
    out = await rt.engine.run("updateDetails", user(OWNER), cid, {"title": "X"}, expected_version=3)
    assert out.version == 4
    assert len(await audit(rt, cid)) == 4


async def test_racing_on_the_same_expected_version_one_wins_the_other_hears_where_it_is(rt, monkeypatch):
    cid = await team(rt)
    read = rt.store.collaborations.get

    async def slow_read(collaboration_id):  # every racer reads version 3 before any of them writes
        doc = await read(collaboration_id)
        await asyncio.sleep(0.05)
        return doc

    monkeypatch.setattr(rt.store.collaborations, "get", slow_read)
    outs = await asyncio.gather(
        *[rt.engine.run("updateDetails", user(OWNER), cid, {"title": f"T{i}"}, expected_version=3) for i in range(5)],
        return_exceptions=True,
    )
    won = [o for o in outs if isinstance(o, Applied)]
    lost = [o for o in outs if isinstance(o, VersionConflict)]
    assert len(won) == 1 and len(lost) == 4 and won[0].version == 4
    assert all(e.details == {"expectedVersion": 3, "currentVersion": 4} for e in lost)
    assert (await doc(rt, cid))["version"] == 4


async def test_concurrent_actions_each_get_their_own_version(rt):
    cid = await team(rt)
    outs = await asyncio.gather(
        *[rt.engine.run("proposeActivity", user(EDITOR), cid, {"title": f"A{i}"}) for i in range(20)]
    )
    assert sorted(o.version for o in outs) == list(range(4, 24))
    d = await doc(rt, cid)
    assert d["version"] == 23 and len(d["activities"]) == 20
    assert [e["version"] for e in await audit(rt, cid)] == list(range(1, 24))


async def test_membership_rules(rt):
    cid = await team(rt)
    e, o = rt.engine, user(OWNER)
    with pytest.raises(InvalidTransition):
        await e.run("addMember", o, cid, {"email": EDITOR, "role": "viewer"})
    with pytest.raises(InvalidTransition):
        await e.run("leaveCollaboration", o, cid, {})
    with pytest.raises(InvalidTransition):
        await e.run("changeRole", o, cid, {"userId": o.id, "role": "editor"})
    with pytest.raises(InvalidTransition):
        await e.run("removeMember", o, cid, {"userId": o.id})
    with pytest.raises(NotFound):
        await e.run("removeMember", o, cid, {"userId": "nobody"})
    await e.run("changeRole", o, cid, {"userId": user(EDITOR).id, "role": "owner"})
    await e.run("leaveCollaboration", o, cid, {})
    d = await doc(rt, cid)
    assert o.id not in d["memberIds"] and [m["role"] for m in d["members"]] == ["owner", "viewer"]
    await e.run("leaveCollaboration", user(VIEWER), cid, {})
    with pytest.raises(NotFound):
        await e.run("sendMessage", user(VIEWER), cid, {"text": "still here?"})


async def test_archived_collaborations_refuse_changes(rt):
    cid = await team(rt)
    await rt.engine.run("archiveCollaboration", user(OWNER), cid, {})
    with pytest.raises(InvalidTransition):
        await rt.engine.run("proposeActivity", user(EDITOR), cid, {"title": "late"})
    with pytest.raises(InvalidTransition):
        await rt.engine.run("archiveCollaboration", user(OWNER), cid, {})
    await rt.engine.run("leaveCollaboration", user(VIEWER), cid, {})


async def test_ai_runs_auto_actions_and_gets_approvals_for_protected_ones(rt):
    cid = await team(rt)
    ai = Actor.ai("run_1")
    act = (await rt.engine.run("proposeActivity", ai, cid, {"title": "AI idea"})).result["activityId"]
    out = await rt.engine.run("cancelActivity", ai, cid, {"activityId": act, "reason": "stale"}, reason="stale")
    assert isinstance(out, NeedsApproval)
    approval = out.approval
    assert approval["status"] == "pending" and approval["action"] == "cancelActivity"
    assert approval["proposedBy"] == {"type": "ai", "runId": "run_1"}
    assert approval["expiresAt"] > approval["createdAt"]
    assert (await doc(rt, cid))["activities"][0]["status"] == "proposed"
    for never in ("leaveCollaboration", "setProtectedActions", "addRule"):
        with pytest.raises(Forbidden):
            await rt.engine.run(never, ai, cid, _sample_payload(never, await doc(rt, cid)))
    with pytest.raises(Forbidden):
        await rt.engine.run("createCollaboration", ai, None, {"title": "AI's own"})


async def test_a_protected_action_that_cannot_run_now_is_refused_not_turned_into_an_approval(rt):
    cid = await team(rt)
    ai = Actor.ai("run_1")
    act = (await rt.engine.run("proposeActivity", user(OWNER), cid, {"title": "Hike"})).result["activityId"]
    await rt.engine.run("cancelActivity", user(OWNER), cid, {"activityId": act})
    with pytest.raises(InvalidTransition):  # already cancelled: nothing an owner could approve
        await rt.engine.run("cancelActivity", ai, cid, {"activityId": act}, reason="stale")
    with pytest.raises(NotFound):
        await rt.engine.run("cancelActivity", ai, cid, {"activityId": "act_missing"}, reason="stale")
    assert await rt.store.approvals.for_collaborations([cid], "pending") == []


async def test_owner_can_change_what_the_ai_must_ask_for(rt):
    cid = await team(rt)
    await rt.engine.run("setProtectedActions", user(OWNER), cid, {"actions": ["sendMessage"]})
    ai = Actor.ai()
    assert isinstance(await rt.engine.run("sendMessage", ai, cid, {"text": "hello"}), NeedsApproval)
    act = (await rt.engine.run("proposeActivity", ai, cid, {"title": "x"})).result["activityId"]
    assert isinstance(await rt.engine.run("cancelActivity", ai, cid, {"activityId": act}), Applied)
    with pytest.raises(ValidationFailed) as info:
        await rt.engine.run("setProtectedActions", user(OWNER), cid, {"actions": ["addRule"]})
    assert info.value.fields[0]["path"] == "payload.actions.0"


async def test_document_cap_refuses_growth_with_document_too_large():
    runtime = await open_runtime(max_document_bytes=4096)
    try:
        cid = await team(runtime)
        with pytest.raises(DocumentTooLarge):
            for i in range(100):
                await runtime.engine.run("proposeActivity", user(EDITOR), cid, {"title": f"Activity {i}" * 10})
        d = await runtime.store.collaborations.get(cid)
        assert len(d["activities"]) < 100
        assert [e["version"] for e in reversed(await runtime.store.audit.page(cid, limit=200))] == list(
            range(1, d["version"] + 1)
        )
    finally:
        await runtime.close()


# -- writes that cannot race ------------------------------------------------------------------


def hold_before_writing(rt, release: asyncio.Event, entered: asyncio.Event):
    """Stand in for a slow round trip between the engine's read and the message's write: the send
    waits there until `release`, while other coroutines run."""
    insert = rt.store.messages.insert

    async def held(*args, **kwargs):
        entered.set()
        await release.wait()
        return await insert(*args, **kwargs)

    rt.store.messages.insert = held


@pytest.mark.parametrize("change", ["removeMember", "archiveCollaboration"])
async def test_a_message_racing_its_authors_removal_never_lands_after_it(rt, change):
    cid = await team(rt)
    entered, release = asyncio.Event(), asyncio.Event()
    hold_before_writing(rt, release, entered)
    send = asyncio.create_task(rt.engine.run("sendMessage", user(EDITOR), cid, {"text": "sneaking in"}))
    await entered.wait()  # the engine has read the collaboration: the editor is a member, it is active
    payload = {"userId": user(EDITOR).id} if change == "removeMember" else {}
    await rt.engine.run(change, user(OWNER), cid, payload)
    release.set()
    with pytest.raises(NotFound if change == "removeMember" else InvalidTransition):
        await send
    assert await rt.store.messages.page(cid) == []
    assert [e["action"] for e in await audit(rt, cid)][-1] == change  # and no sendMessage entry after it


async def test_sends_racing_a_removal_never_commit_after_it(rt):
    """Many sends and one removal interleaved: in commit order (the change stream's), no message of
    the removed member comes after the removal."""
    cid = await team(rt)
    editor = user(EDITOR).id
    insert = rt.store.messages.insert

    async def jittered(*args, **kwargs):
        for _ in range(len(args[0]["text"]) % 3):
            await asyncio.sleep(0)
        return await insert(*args, **kwargs)

    rt.store.messages.insert = jittered
    async with rt.store.watch_changes(None, 50) as stream:

        async def send(i):
            try:
                await rt.engine.run("sendMessage", user(EDITOR), cid, {"text": "x" * (i + 1)})
            except NotFound:
                pass

        sends = [asyncio.create_task(send(i)) for i in range(30)]
        await asyncio.sleep(0)
        await rt.engine.run("removeMember", user(OWNER), cid, {"userId": editor})
        await asyncio.gather(*sends)
        marker = await rt.engine.run("sendMessage", user(OWNER), cid, {"text": "the end"})
        assert isinstance(marker, Applied)
        order = []
        while not order or order[-1] != "end":
            change = await stream.try_next()
            if change is None:
                continue
            doc = change.get("fullDocument") or {}
            if change["ns"]["coll"] == "messages":
                order.append("end" if doc.get("text") == "the end" else doc["author"]["id"])
            elif change["ns"]["coll"] == "collaborations" and "memberIds" in str(change.get("updateDescription")):
                order.append("removed")
    removal = order.index("removed")
    assert editor not in order[removal:]


# -- rule follow-ups survive a crash after the commit ----------------------------------------


class Crash(BaseException):
    """The process dying at that point: nothing in Tandem catches it (it is no Exception)."""


THANKS = {
    "name": "Thanks",
    "when": {"action": "cancelActivity"},
    "then": {"action": {"name": "sendMessage", "payload": {"text": "Thanks!"}}},
}
LOOK_FIRST = {
    "name": "Look first",
    "when": {"action": "proposeActivity", "actor": "any"},
    "if": {"==": [{"var": "actor.type"}, "rule"]},
    "then": {"require_approval": {}},
}
RETRO = {
    "name": "Retro",
    "when": {"action": "cancelActivity"},
    "then": {"action": {"name": "proposeActivity", "payload": {"title": "Retro"}}},
}


async def completed_with_a_crash(rt, rules, where):
    """Cancel an activity whose rules start follow-ups; the process dies at `where`:
    "before" the follow-ups run (right after the commit), or "after" they ran but before the
    trigger's audit entry notes it."""
    cid = await team(rt)
    for raw in rules:
        await rt.engine.run("addRule", user(OWNER), cid, {"rule": raw})
    activity = (await rt.engine.run("proposeActivity", user(EDITOR), cid, {"title": "Hike"})).result["activityId"]
    if where == "before":

        async def dies(*args, **kwargs):
            raise Crash()

        rt.engine._followups = dies
    else:

        async def dies(*args, **kwargs):
            raise Crash()

        rt.store.audit.note_followups, kept = dies, rt.store.audit.note_followups
    with pytest.raises(Crash):
        await rt.engine.run("cancelActivity", user(OWNER), cid, {"activityId": activity})
    if where == "before":
        del rt.engine._followups
    else:
        rt.store.audit.note_followups = kept
    [trigger] = [e for e in await audit(rt, cid) if e["action"] == "cancelActivity"]
    assert (
        trigger["followupsOpen"] is True and trigger["followupsDue"][0]["action"] == rules[0]["then"]["action"]["name"]
    )
    return cid, trigger


@pytest.mark.parametrize("where", ["before", "after"])
async def test_a_follow_up_cut_short_by_a_crash_runs_exactly_once_on_recovery(rt, where):
    cid, trigger = await completed_with_a_crash(rt, [THANKS], where)
    sent = [m["text"] for m in await rt.store.messages.page(cid)]
    assert sent == ([] if where == "before" else ["Thanks!"])
    assert await rt.engine.recover_followups() == 0  # too recent: it may still be running in its process
    assert await rt.engine.recover_followups(older_than=timedelta(0)) == 1
    assert await rt.engine.recover_followups(older_than=timedelta(0)) == 0  # twice: still once
    assert [m["text"] for m in await rt.store.messages.page(cid)] == ["Thanks!"]
    [entry] = [e for e in await audit(rt, cid) if e["_id"] == trigger["_id"]]
    assert "followupsOpen" not in entry
    assert entry["followups"] == [
        {"ruleId": trigger["rulesFired"][0], "action": "sendMessage", "ok": True, "approval": False}
    ]
    [ran] = [e for e in await audit(rt, cid) if e.get("followupKey")]
    assert ran["followupKey"] == f"{trigger['_id']}:0" and ran["actor"]["type"] == "rule"


@pytest.mark.parametrize("where", ["before", "after"])
async def test_a_follow_up_held_for_approval_is_proposed_once_across_a_crash(rt, where):
    cid, trigger = await completed_with_a_crash(rt, [RETRO, LOOK_FIRST], where)
    assert await rt.engine.recover_followups(older_than=timedelta(0)) == 1
    assert await rt.engine.recover_followups(older_than=timedelta(0)) == 0
    [approval] = await rt.store.approvals.for_collaborations([cid])
    assert approval["action"] == "proposeActivity" and approval["followupKey"] == f"{trigger['_id']}:0"
    [entry] = [e for e in await audit(rt, cid) if e["_id"] == trigger["_id"]]
    assert entry["followups"][0]["ok"] is True and entry["followups"][0]["approval"] is True
