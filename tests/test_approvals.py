"""Approvals: owners decide, the action runs once through the engine, every refusal has its code."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from backend.clock import utcnow
from backend.composition import build_api
from backend.deciding import ApprovalService
from backend.domain.models import Actor
from backend.engine import NeedsApproval
from backend.errors import AlreadyDecided, Forbidden, NotFound
from backend.settings import test_settings
from tests.support import EDITOR, OWNER, STRANGER, VIEWER, LiveServer, team, token, user


@pytest.fixture
def runtime_settings():
    return test_settings(approval_ttl=3600)


async def proposal(rt, action="cancelActivity", payload=None):
    """A collaboration with an activity, and the AI's pending proposal (to cancel it, by default)."""
    cid = await team(rt)
    if action == "sendMessage":  # not protected by default: the owner protects it
        await rt.engine.run("setProtectedActions", user(OWNER), cid, {"actions": ["cancelActivity", "sendMessage"]})
    activity = (await rt.engine.run("proposeActivity", user(EDITOR), cid, {"title": "Hike"})).result["activityId"]
    outcome = await rt.engine.run(
        action, Actor.ai("run_test"), cid, payload if payload is not None else {"activityId": activity}, reason="stale"
    )
    assert isinstance(outcome, NeedsApproval)
    return cid, activity, outcome.approval


def service(rt, clock=utcnow):
    return ApprovalService(rt.store, rt.engine, clock)


async def test_an_owner_approves_and_the_action_runs_with_the_approval_in_its_audit(runtime):
    cid, activity, approval = await proposal(runtime)
    version = (await runtime.store.collaborations.get(cid))["version"]
    decided = await service(runtime).approve(approval["_id"], user(OWNER).id)
    assert decided["status"] == "approved" and decided["decidedBy"] == user(OWNER).id and decided["decidedAt"]
    assert decided["result"] == {"collaborationId": cid, "version": version + 1, "result": {"activityId": activity}}
    doc = await runtime.store.collaborations.get(cid)
    assert doc["version"] == version + 1 and doc["activities"][0]["status"] == "cancelled"
    entry = await runtime.store.audit.for_version(cid, version + 1)
    assert entry["approvalId"] == approval["_id"] and entry["action"] == "cancelActivity"
    assert entry["actor"] == {"type": "ai", "runId": "run_test"}  # the proposer's action, approved
    assert await runtime.store.approvals.get(approval["_id"]) == decided


async def test_only_owners_decide_and_others_cannot_tell_it_exists(runtime):
    _, _, approval = await proposal(runtime)
    for email in (EDITOR, VIEWER):
        with pytest.raises(Forbidden):
            await service(runtime).approve(approval["_id"], user(email).id)
    with pytest.raises(NotFound):
        await service(runtime).reject(approval["_id"], user(STRANGER).id)
    with pytest.raises(NotFound):
        await service(runtime).approve("apr_nope", user(OWNER).id)
    assert (await runtime.store.approvals.get(approval["_id"]))["status"] == "pending"


async def test_a_second_decision_is_a_conflict(runtime):
    _, _, approval = await proposal(runtime)
    svc = service(runtime)
    await svc.reject(approval["_id"], user(OWNER).id)
    for decide in (svc.approve, svc.reject):
        with pytest.raises(AlreadyDecided) as caught:
            await decide(approval["_id"], user(OWNER).id)
        assert caught.value.status == 409 and caught.value.details == {"status": "rejected"}


async def test_two_owners_approving_at_once_run_the_action_once(runtime):
    cid, _, approval = await proposal(runtime, "sendMessage", {"text": "only once"})
    await runtime.engine.run("changeRole", user(OWNER), cid, {"userId": user(EDITOR).id, "role": "owner"})
    svc = service(runtime)
    results = await asyncio.gather(
        svc.approve(approval["_id"], user(OWNER).id),
        svc.approve(approval["_id"], user(EDITOR).id),
        return_exceptions=True,
    )
    assert sorted(type(r).__name__ for r in results) == ["AlreadyDecided", "dict"]
    texts = [m["text"] for m in await runtime.store.messages.page(cid)]
    assert texts.count("only once") == 1


async def test_an_expired_approval_is_refused_and_marked_expired(runtime):
    _, activity, approval = await proposal(runtime)
    later = lambda: utcnow() + timedelta(hours=2)  # noqa: E731 - past the 1 h TTL
    with pytest.raises(AlreadyDecided) as caught:
        await service(runtime, later).approve(approval["_id"], user(OWNER).id)
    assert caught.value.details == {"status": "expired"} and "expired" in caught.value.message
    stored = await runtime.store.approvals.get(approval["_id"])
    assert stored["status"] == "expired" and stored["decidedAt"]


@pytest.mark.parametrize("decision", ["approve", "reject"])
async def test_an_approval_that_expires_between_the_check_and_the_claim_is_refused(runtime, decision):
    cid, activity, approval = await proposal(runtime)
    times = iter([approval["expiresAt"] - timedelta(milliseconds=1)])  # the check still sees it unexpired...
    clock = lambda: next(times, approval["expiresAt"] + timedelta(milliseconds=1))  # noqa: E731 - ...the claim not
    with pytest.raises(AlreadyDecided) as caught:
        await getattr(service(runtime, clock), decision)(approval["_id"], user(OWNER).id)
    assert caught.value.details == {"status": "expired"} and "expired" in caught.value.message
    stored = await runtime.store.approvals.get(approval["_id"])
    assert stored["status"] == "expired" and "decidedBy" not in stored and "result" not in stored
    assert (await runtime.store.collaborations.get(cid))["activities"][0]["status"] == "proposed"  # not run


async def test_expire_due_marks_only_pending_approvals_past_their_time(runtime):
    _, _, old = await proposal(runtime)
    _, _, decided = await proposal(runtime)
    await service(runtime).reject(decided["_id"], user(OWNER).id)
    assert await service(runtime).expire_due() == 0
    assert await service(runtime, lambda: utcnow() + timedelta(hours=2)).expire_due() == 1
    assert (await runtime.store.approvals.get(old["_id"]))["status"] == "expired"
    assert (await runtime.store.approvals.get(decided["_id"]))["status"] == "rejected"


async def test_an_action_no_longer_valid_ends_failed_with_the_reason(runtime):
    cid, activity, approval = await proposal(runtime)
    await runtime.engine.run(
        "scheduleActivity", user(EDITOR), cid, {"activityId": activity, "scheduledFor": "2026-12-01T10:00:00Z"}
    )
    await runtime.engine.run("completeActivity", user(EDITOR), cid, {"activityId": activity})  # done meanwhile
    version = (await runtime.store.collaborations.get(cid))["version"]
    decided = await service(runtime).approve(approval["_id"], user(OWNER).id)
    assert decided["status"] == "failed" and decided["error"]["code"] == "invalid_transition"
    assert "done" in decided["error"]["message"] and decided["decidedBy"] == user(OWNER).id
    assert (await runtime.store.collaborations.get(cid))["version"] == version
    with pytest.raises(AlreadyDecided):
        await service(runtime).approve(approval["_id"], user(OWNER).id)


async def test_approvals_over_http(runtime):
    settings = runtime.settings
    cid, activity, approval = await proposal(runtime)
    _, _, others = await proposal(runtime)
    async with LiveServer(build_api(settings, runtime), settings) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:

            def auth(email):
                return {"authorization": f"Bearer {token(settings, email)}"}

            listed = (await http.get("/api/approvals?status=pending", headers=auth(OWNER))).json()["approvals"]
            assert {a["id"] for a in listed} == {approval["_id"], others["_id"]}
            assert listed[0]["expiresAt"].endswith("Z") and "_id" not in listed[0]
            assert (await http.get("/api/approvals", headers=auth(EDITOR))).json() == {"approvals": []}
            bad = await http.get("/api/approvals?status=maybe", headers=auth(OWNER))
            assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_request"
            assert (await http.get("/api/approvals")).status_code == 401

            url = f"/api/approvals/{approval['_id']}"
            r = await http.post(url + "/approve", headers=auth(EDITOR))
            assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
            r = await http.post(url + "/approve", headers=auth(STRANGER))
            assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
            r = await http.post(url + "/approve", headers=auth(OWNER))
            body = r.json()["approval"]
            assert r.status_code == 200 and body["status"] == "approved" and body["result"]["collaborationId"] == cid
            r = await http.post(url + "/reject", headers=auth(OWNER))
            assert r.status_code == 409 and r.json()["error"] == {
                "code": "invalid_transition",
                "message": "This approval was already decided (approved).",
                "details": {"status": "approved"},
            }
            r = await http.post(f"/api/approvals/{others['_id']}/reject", headers=auth(OWNER))
            assert r.json()["approval"]["status"] == "rejected"
            snap = (await http.get(f"/api/collaborations/{cid}", headers=auth(OWNER))).json()
            assert snap["activities"][0]["status"] == "cancelled"
            audit = (await http.get(f"/api/collaborations/{cid}/audit", headers=auth(OWNER))).json()["entries"]
            assert audit[0]["approvalId"] == approval["_id"]


async def test_actions_and_decisions_share_one_rate_limit_and_one_way_of_counting(runtime):
    # backend/api/gate.py: the action route and the approvals' decisions take tokens from the same
    # bucket and label tandem_actions_total alike ({action, outcome}; unknown names as "unknown").
    settings = test_settings(approval_ttl=3600, action_rate_limit=3, action_rate_window=3600)  # the app's limits
    cid, activity, approval = await proposal(runtime)
    async with LiveServer(build_api(settings, runtime), settings) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
            owner = {"authorization": f"Bearer {token(settings, OWNER)}"}
            sent = await http.post(
                "/api/actions/sendMessage", headers=owner, json={"collaborationId": cid, "payload": {"text": "hi"}}
            )
            assert sent.status_code == 200, sent.text
            assert (
                await http.post(
                    "/api/actions/noSuchAction", headers=owner, json={"collaborationId": cid, "payload": {}}
                )
            ).status_code == 404
            approved = await http.post(f"/api/approvals/{approval['_id']}/approve", headers=owner)
            assert approved.status_code == 200 and approved.json()["approval"]["status"] == "approved"
            refused = await http.post(
                "/api/actions/sendMessage", headers=owner, json={"collaborationId": cid, "payload": {"text": "again"}}
            )
            assert refused.status_code == 429 and refused.json()["error"]["code"] == "rate_limited"
            metrics = (await http.get("/metrics")).text
    assert 'tandem_actions_total{action="sendMessage",outcome="applied"} 1.0' in metrics
    assert 'tandem_actions_total{action="cancelActivity",outcome="applied"} 1.0' in metrics
    assert 'tandem_actions_total{action="unknown",outcome="not_found"} 1.0' in metrics


async def test_an_approval_cut_short_is_finished_by_the_hourly_job_exactly_once(runtime):
    """The process stopped after claiming the decision: once before the action ran, once after."""
    # 1. before the action ran: the hourly job carries it out, with the same checks as approve
    cid, activity, approval = await proposal(runtime)
    version = (await runtime.store.collaborations.get(cid))["version"]
    long_ago = utcnow() - timedelta(minutes=30)
    await runtime.store.approvals.transition(
        approval["_id"], "pending", {"status": "approved", "decidedBy": user(OWNER).id, "decidedAt": long_ago}
    )
    assert await service(runtime).recover_interrupted() == 1
    done = await runtime.store.approvals.get(approval["_id"])
    assert done["status"] == "approved" and done["result"]["version"] == version + 1
    assert (await runtime.store.collaborations.get(cid))["activities"][0]["status"] == "cancelled"
    assert await service(runtime).recover_interrupted() == 0  # once

    # 2. after the action ran (its audit entry names the approval): only the outcome is recorded
    cid, activity, approval = await proposal(runtime)
    await runtime.store.approvals.transition(
        approval["_id"], "pending", {"status": "approved", "decidedBy": user(OWNER).id, "decidedAt": long_ago}
    )
    ran = await runtime.engine.run(
        "cancelActivity", Actor.ai("run_test"), cid, {"activityId": activity}, approval_id=approval["_id"]
    )
    assert await service(runtime).recover_interrupted() == 1
    done = await runtime.store.approvals.get(approval["_id"])
    assert done["result"] == {"collaborationId": cid, "version": ran.version, "result": None, "recovered": True}
    assert (await runtime.store.collaborations.get(cid))["version"] == ran.version  # not run twice

    # 3. one being carried out right now (decided a moment ago) is left alone
    cid, activity, approval = await proposal(runtime)
    await runtime.store.approvals.transition(
        approval["_id"], "pending", {"status": "approved", "decidedBy": user(OWNER).id, "decidedAt": utcnow()}
    )
    assert await service(runtime).recover_interrupted() == 0


async def test_an_approvals_times_are_kept_in_utc_and_still_run_when_approved(runtime):
    """DESIGN §2: times are UTC with `Z`; the payload keeps datetimes, which the engine decodes again."""
    settings = runtime.settings
    cid = await team(runtime)
    await runtime.engine.run("setProtectedActions", user(OWNER), cid, {"actions": ["scheduleActivity"]})
    activity = (await runtime.engine.run("proposeActivity", user(EDITOR), cid, {"title": "Hike"})).result["activityId"]
    outcome = await runtime.engine.run(
        "scheduleActivity",
        Actor.ai("run_test"),
        cid,
        {"activityId": activity, "scheduledFor": "2026-12-01T10:00:00+01:00"},
    )
    assert isinstance(outcome, NeedsApproval)
    stored = await runtime.store.approvals.get(outcome.approval["_id"])
    assert stored["payload"]["scheduledFor"] == datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)
    async with LiveServer(build_api(settings, runtime), settings) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
            owner = {"authorization": f"Bearer {token(settings, OWNER)}"}
            listed = (await http.get("/api/approvals", headers=owner)).json()["approvals"]
            assert listed[0]["payload"] == {"activityId": activity, "scheduledFor": "2026-12-01T09:00:00Z"}
            r = await http.post(f"/api/approvals/{stored['_id']}/approve", headers=owner)
            assert r.status_code == 200 and r.json()["approval"]["status"] == "approved", r.text
            assert r.json()["approval"]["payload"]["scheduledFor"] == "2026-12-01T09:00:00Z"
            snap = (await http.get(f"/api/collaborations/{cid}", headers=owner)).json()
            assert snap["activities"][0]["status"] == "scheduled"
            assert snap["activities"][0]["scheduledFor"] == "2026-12-01T09:00:00Z"


class Crash(BaseException):
    """The process dying at that point: nothing in Tandem catches it (it is no Exception)."""


async def test_a_recovery_cut_short_after_carrying_out_leaves_it_recoverable_and_runs_it_once(runtime):
    cid, activity, approval = await proposal(runtime)
    version = (await runtime.store.collaborations.get(cid))["version"]
    long_ago = utcnow() - timedelta(minutes=30)
    await runtime.store.approvals.transition(
        approval["_id"], "pending", {"status": "approved", "decidedBy": user(OWNER).id, "decidedAt": long_ago}
    )
    record = runtime.store.approvals.record_outcome

    async def dies_before_storing_the_outcome(approval_id, changes):
        raise Crash()

    runtime.store.approvals.record_outcome = dies_before_storing_the_outcome
    with pytest.raises(Crash):
        await service(runtime).recover_interrupted()
    runtime.store.approvals.record_outcome = record
    assert (await runtime.store.collaborations.get(cid))["version"] == version + 1  # it ran
    held = await runtime.store.approvals.get(approval["_id"])
    assert "result" not in held and "recoveredAt" not in held  # not marked recovered: no outcome stored
    assert await service(runtime).recover_interrupted() == 0  # the cut-short recovery's lease still holds
    later = service(runtime, clock=lambda: utcnow() + timedelta(minutes=11))
    assert await later.recover_interrupted() == 1
    done = await runtime.store.approvals.get(approval["_id"])
    assert done["status"] == "approved" and done["recoveredAt"]
    assert done["result"] == {"collaborationId": cid, "version": version + 1, "result": None, "recovered": True}
    assert (await runtime.store.collaborations.get(cid))["version"] == version + 1  # not carried out twice
    assert await later.recover_interrupted() == 0


async def test_an_approval_carried_out_twice_at_once_applies_once(runtime):
    """A recovery racing an approve that is still running (slow, not dead): the approval id is a
    unique key of the audit, checked inside the action's write, so the second finds it taken."""
    for action, payload in (("cancelActivity", None), ("sendMessage", {"text": "Hello"})):
        cid, activity, approval = await proposal(runtime, action, payload)
        claimed = await runtime.store.approvals.transition(
            approval["_id"], "pending", {"status": "approved", "decidedBy": user(OWNER).id, "decidedAt": utcnow()}
        )
        before = await runtime.store.collaborations.get(cid)
        first, second = await asyncio.gather(
            service(runtime)._run_approved_action(claimed),
            service(runtime)._run_approved_action(claimed, recovering=True),
        )
        entries = [e for e in await runtime.store.audit.page(cid) if e.get("approvalId") == approval["_id"]]
        assert len(entries) == 1
        if action == "sendMessage":
            assert [m["text"] for m in await runtime.store.messages.page(cid)] == ["Hello"]
        else:
            assert (await runtime.store.collaborations.get(cid))["version"] == before["version"] + 1
        done = await runtime.store.approvals.get(approval["_id"])
        assert done["status"] == "approved" and done["result"]["collaborationId"] == cid


async def test_an_approve_that_fails_after_its_action_committed_is_not_recorded_failed(runtime):
    """The action committed, then something after it (its follow-ups) failed unexpectedly: the
    approval records that it ran (from its audit entry), not `failed` as if it had not."""
    cid, activity, approval = await proposal(runtime)
    version = (await runtime.store.collaborations.get(cid))["version"]
    engine_run = runtime.engine.run

    async def fails_after_committing(*args, **kwargs):
        await engine_run(*args, **kwargs)
        raise RuntimeError("a follow-up broke")

    runtime.engine.run = fails_after_committing
    with pytest.raises(RuntimeError):
        await service(runtime).approve(approval["_id"], user(OWNER).id)
    runtime.engine.run = engine_run
    done = await runtime.store.approvals.get(approval["_id"])
    assert done["status"] == "approved" and "error" not in done
    assert done["result"] == {"collaborationId": cid, "version": version + 1, "result": None, "recovered": True}
