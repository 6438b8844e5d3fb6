"""Threat: a time at the edge of what Python or BSON can hold, sent through any path that parses one.

`scheduledFor: "0001-01-01T00:00:00Z"` used to be accepted and stored; the next prompt wrote it as
"1-01-01T…", which nothing parses again, so AI chat answered 500 and the check-in batch of that
collaboration failed; a date near 9999 overflowed a rule's `+ days(1)`. DESIGN.md §3: every time in
a payload lies between 1970-01-01T00:00:00Z and 2999-12-31T23:59:59Z (in UTC, whatever its offset),
else 422 `validation_failed` at the field, on every path that parses a payload: REST, the AI's
proposals (chat and check-in), an approval carried out later, a rule's follow-up.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import httpx
import pytest

from backend.clock import iso, parse_iso, utcnow
from backend.composition import build_api
from backend.deciding import ApprovalService
from backend.domain import payloads
from backend.errors import ValidationFailed
from backend.runtime import Runtime
from backend.settings import test_settings
from tests.fake_groq import API_KEY, FakeGroq, collaborations_in
from tests.realtime_support import live_server
from tests.support import EDITOR, OWNER, LiveServer, team, user
from tests.test_api import act, auth, create


@pytest.fixture
async def api():
    settings = test_settings(action_rate_limit=1000, max_body_bytes=64 * 1024)
    async with LiveServer(build_api(settings), settings) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
            client.settings = settings
            yield client


OUT_OF_RANGE = [
    "0001-01-01T00:00:00Z",
    "0001-01-01T00:00:00+05:00",
    "1969-12-31T23:59:59Z",
    "1970-01-01T00:30:00+01:00",  # 1969 in UTC
    "3000-01-01T00:00:00Z",
    "2999-12-31T23:59:59-05:00",  # 3000 in UTC
    "9999-12-31T23:59:59Z",
    "9999-12-31T23:59:59-05:00",
]
NOT_A_TIME = [
    1700000000,
    "2027-02-29T00:00:00Z",
    "2026-11-23T10:00:00",
    "2026-11-23",
    "2026-11-23T23:59:60Z",
    "+2026-11-23T10:00:00Z",
    "2026-W48-1T10:00:00Z",
    "next week",
]


# -- the payload itself --------------------------------------------------------


@pytest.mark.parametrize(
    "kind, field, extra",
    [
        (payloads.ProposeActivity, "dueAt", {"title": "Hike"}),
        (payloads.ScheduleActivity, "scheduledFor", {"activityId": "act_1"}),
    ],
)
@pytest.mark.parametrize("when", ["9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+05:00", *OUT_OF_RANGE])
def test_a_time_that_leaves_the_date_range_in_utc_names_its_field(kind, field, extra, when):
    with pytest.raises(ValidationFailed) as info:
        payloads.decode(kind, {**extra, field: when})
    assert [f["path"] for f in info.value.fields] == [f"payload.{field}"]


@pytest.mark.parametrize(
    "when, utc",
    [
        ("2026-11-23T10:00:00+02:00", datetime(2026, 11, 23, 8, 0, tzinfo=timezone.utc)),
        ("2999-12-31T18:59:59-05:00", datetime(2999, 12, 31, 23, 59, 59, tzinfo=timezone.utc)),
        ("1970-01-01T05:00:00+05:00", datetime(1970, 1, 1, 0, 0, tzinfo=timezone.utc)),
        ("2999-12-31T23:59:59.999Z", datetime(2999, 12, 31, 23, 59, 59, 999000, tzinfo=timezone.utc)),
        ("2028-02-29T12:00:00Z", datetime(2028, 2, 29, 12, 0, tzinfo=timezone.utc)),
        ("2026-11-23 10:00:00z", datetime(2026, 11, 23, 10, 0, tzinfo=timezone.utc)),
    ],
)
def test_times_are_stored_in_utc(when, utc):
    decoded = payloads.decode(payloads.ProposeActivity, {"title": "Hike", "dueAt": when})
    assert decoded.dueAt == utc and decoded.dueAt.utcoffset() == timedelta(0)
    assert decoded.dueAt.tzinfo is timezone.utc


@pytest.mark.parametrize("when", [1700000000, 1700000000.5, True, "1700000000", ["2026-01-01T00:00:00Z"]])
def test_only_a_string_is_a_time(when):
    with pytest.raises(ValidationFailed) as info:
        payloads.decode(payloads.ProposeActivity, {"title": "Hike", "dueAt": when})
    assert [f["path"] for f in info.value.fields] == ["payload.dueAt"]
    with pytest.raises(ValidationFailed) as info:
        payloads.decode(payloads.ScheduleActivity, {"activityId": "act_1", "scheduledFor": when})
    assert [f["path"] for f in info.value.fields] == ["payload.scheduledFor"]


def test_a_stored_time_out_of_range_is_refused_when_decoded_again():
    """An approval's payload keeps datetimes; one from before the bounds is refused when carried out."""
    for stored in (datetime(1, 1, 1, tzinfo=timezone.utc), datetime(9999, 12, 31, tzinfo=timezone.utc)):
        with pytest.raises(ValidationFailed) as info:
            payloads.decode(payloads.ScheduleActivity, {"activityId": "act_1", "scheduledFor": stored})
        assert [f["path"] for f in info.value.fields] == ["payload.scheduledFor"]


@pytest.mark.parametrize("year", [1, 99, 999, 1970, 2999, 9999])
def test_iso_writes_four_digit_years_that_parse_again(year):
    when = datetime(year, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    assert iso(when) == f"{year:04d}-01-02T03:04:05.000Z"
    assert parse_iso(iso(when)) == when


# -- over REST -----------------------------------------------------------------


@pytest.mark.parametrize(
    "due", ["9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+05:00", 1700000000, *OUT_OF_RANGE, *NOT_A_TIME]
)
async def test_a_time_out_of_range_or_not_a_string_is_validation_failed_not_a_500(api, due):
    cid = (await create(api))["id"]
    r = await act(api, OWNER, "proposeActivity", cid, {"title": "Hike", "dueAt": due})
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "validation_failed" and [f["path"] for f in error["details"]["fields"]] == ["payload.dueAt"]
    snap = (await api.get(f"/api/collaborations/{cid}", headers=auth(api, OWNER))).json()
    assert snap["version"] == 1 and snap["activities"] == []


async def test_scheduled_for_out_of_range_is_refused_at_its_field(api):
    cid = (await create(api))["id"]
    activity = (await act(api, OWNER, "proposeActivity", cid, {"title": "Hike"})).json()["result"]["activityId"]
    for when in OUT_OF_RANGE:
        r = await act(api, OWNER, "scheduleActivity", cid, {"activityId": activity, "scheduledFor": when})
        assert r.status_code == 422, (when, r.text)
        assert r.json()["error"]["details"]["fields"][0]["path"] == "payload.scheduledFor"
    snap = (await api.get(f"/api/collaborations/{cid}", headers=auth(api, OWNER))).json()
    assert snap["version"] == 2 and snap["activities"][0]["status"] == "proposed"


async def test_times_are_kept_and_sent_in_utc(api):
    cid = (await create(api))["id"]
    r = await act(api, OWNER, "proposeActivity", cid, {"title": "Hike", "dueAt": "2999-12-31T18:59:59-05:00"})
    assert r.status_code == 200, r.text
    r = await act(api, OWNER, "proposeActivity", cid, {"title": "Walk", "dueAt": "1970-01-01T01:00:00+01:00"})
    assert r.status_code == 200, r.text
    snap = (await api.get(f"/api/collaborations/{cid}", headers=auth(api, OWNER))).json()
    assert [a["dueAt"] for a in snap["activities"]] == ["2999-12-31T23:59:59Z", "1970-01-01T00:00:00Z"]


# -- the AI's proposals --------------------------------------------------------


@pytest.fixture
async def fake():
    async with FakeGroq() as server:
        yield server


async def test_ai_chat_drops_a_suggestion_out_of_range_and_still_answers(fake):
    async with live_server(
        ai_provider="groq", groq_api_key=API_KEY, groq_base_url=fake.url, groq_model="llama-fake"
    ) as live:
        cid = await live.create(OWNER, "Trip")
        activity = (await live.act(OWNER, "proposeActivity", cid, {"title": "Hike"}))["result"]["activityId"]
        r = await live.http.post(
            "/api/actions/scheduleActivity",
            headers=live.auth(OWNER),
            json={"collaborationId": cid, "payload": {"activityId": activity, "scheduledFor": "0001-01-01T00:00:00Z"}},
        )
        assert r.status_code == 422
        fake.respond = lambda body: {
            "reply": "Let us go.",
            "actions": [
                {
                    "action": "scheduleActivity",
                    "payload": {"activityId": activity, "scheduledFor": when},
                    "reason": "soon",
                }
                for when in ("0001-01-01T00:00:00Z", "3000-01-01T00:00:00Z", "2026-12-01T10:00:00Z")
            ],
        }
        r = await live.http.post(
            f"/api/collaborations/{cid}/ai/chat", json={"message": "When?"}, headers=live.auth(OWNER)
        )
        assert r.status_code == 200, r.text
        assert [s["payload"]["scheduledFor"] for s in r.json()["suggestions"]] == ["2026-12-01T10:00:00Z"]


async def test_a_checkin_proposal_out_of_range_is_invalid_and_the_rest_of_the_answer_runs(fake):
    rt = await Runtime.open(fake.settings(checkin_mode="sync", job_lease=5))
    try:
        from backend.ai.groq_provider import GroqProvider
        from worker.checkin import Checkin

        cid = await team(rt)
        activity = (await rt.engine.run("proposeActivity", user(EDITOR), cid, {"title": "Hike"})).result["activityId"]

        def answer(body):
            mine = collaborations_in(body)[0]["collaborationId"]
            return {
                "actions": [
                    {
                        "collaborationId": mine,
                        "action": "scheduleActivity",
                        "reason": "x",
                        "payload": {"activityId": activity, "scheduledFor": "0001-01-01T00:00:00Z"},
                    },
                    {"collaborationId": mine, "action": "sendMessage", "payload": {"text": "Still on?"}, "reason": "y"},
                ]
            }

        fake.respond = answer
        provider = GroqProvider(rt.settings, backoff=0.01)
        try:
            result = await Checkin(rt.store, rt.engine, rt.settings, provider).run()
        finally:
            await provider.aclose()
        assert result["status"] == "done" and result["actionsRun"] == 1 and result["invalid"]["malformed"] == 1
        doc = await rt.store.collaborations.get(cid)
        assert doc["activities"][0]["status"] == "proposed" and doc["activities"][0]["scheduledFor"] is None
    finally:
        await rt.close()


# -- an approval carried out later, a rule's follow-up ---------------------------


async def test_an_approval_stored_with_a_time_out_of_range_fails_when_approved():
    rt = await Runtime.open(test_settings(approval_ttl=3600))
    try:
        cid = await team(rt)
        activity = (await rt.engine.run("proposeActivity", user(EDITOR), cid, {"title": "Hike"})).result["activityId"]
        now = utcnow()
        approval = {
            "_id": "apr_old",
            "collaborationId": cid,
            "action": "scheduleActivity",
            "payload": {"activityId": activity, "scheduledFor": datetime(1, 1, 1, tzinfo=timezone.utc)},
            "reason": "stored before the bounds",
            "proposedBy": {"type": "ai", "runId": "run_x"},
            "status": "pending",
            "createdAt": now,
            "expiresAt": now + timedelta(hours=1),
        }
        await rt.store.approvals.insert(approval)
        decided = await ApprovalService(rt.store, rt.engine).approve("apr_old", user(OWNER).id)
        assert decided["status"] == "failed" and decided["error"]["code"] == "validation_failed"
        assert decided["error"]["details"]["fields"][0]["path"] == "payload.scheduledFor"
        assert (await rt.store.collaborations.get(cid))["activities"][0]["scheduledFor"] is None
    finally:
        await rt.close()


async def test_a_rule_cannot_carry_or_compute_a_time_out_of_range():
    rt = await Runtime.open(test_settings())
    try:
        cid = await team(rt)
        literal = {
            "name": "Far away",
            "when": {"action": "sendMessage"},
            "then": {
                "action": {
                    "name": "scheduleActivity",
                    "payload": {"activityId": "act_1", "scheduledFor": "0001-01-01T00:00:00Z"},
                }
            },
        }
        with pytest.raises(ValidationFailed) as info:
            await rt.engine.run("addRule", user(OWNER), cid, {"rule": literal})
        assert [f["path"] for f in info.value.fields] == ["payload.rule.then.action.payload.scheduledFor"]
        activity = (await rt.engine.run("proposeActivity", user(EDITOR), cid, {"title": "Hike"})).result["activityId"]
        computed = {
            "name": "Much later",
            "when": {"action": "sendMessage"},
            "then": {
                "action": {
                    "name": "scheduleActivity",
                    "payload": {"activityId": activity, "scheduledFor": {"+": [{"var": "now"}, {"days": 400_000}]}},
                }
            },
        }
        await rt.engine.run("addRule", user(OWNER), cid, {"rule": computed})
        sent = await rt.engine.run("sendMessage", user(EDITOR), cid, {"text": "hi"})
        assert [(f["ok"], f["error"]) for f in sent.followups] == [(False, "validation_failed")]
        assert (await rt.store.collaborations.get(cid))["activities"][0]["scheduledFor"] is None
    finally:
        await rt.close()


async def test_a_year_one_time_stored_before_the_bounds_no_longer_breaks_ai_chat():
    """Legacy data: a scheduledFor of year 1, stored before the bounds existed. The prompt writes it
    as 0001-01-01T… (four digits), which parses again: the chat answers instead of a 500."""
    async with live_server() as live:
        cid = await live.create(OWNER, "Trip")
        activity = (await live.act(OWNER, "proposeActivity", cid, {"title": "Hike"}))["result"]["activityId"]
        collaborations = live.runtime.store.db["collaborations"]
        await collaborations.update_one(
            {"_id": cid},
            {
                "$set": {
                    "activities.0.status": "scheduled",
                    "activities.0.scheduledFor": datetime(1, 1, 1, tzinfo=timezone.utc),
                }
            },
        )
        r = await live.http.post(
            f"/api/collaborations/{cid}/ai/chat", json={"message": "Anything stale?"}, headers=live.auth(OWNER)
        )
        assert r.status_code == 200, r.text
        assert [(s["action"], s["payload"]["activityId"]) for s in r.json()["suggestions"]] == [
            ("cancelActivity", activity)
        ]
