"""The batch check-in when Groq misbehaves: a poll that keeps failing, result lines of any shape, a
cancel that takes a while; always against the fake's real HTTP endpoints through the real groq SDK."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from tests.fake_groq import FakeGroq, collaborations_in
from tests.test_checkin import ai_messages, collaboration
from tests.test_checkin_batch import checker_for, drive, hello, open_runtime, three
from worker import handlers
from worker.checkin import POLL, Checkin, run_id_for
from worker.queue import Backoff, Runner
from worker.scheduler import Scheduler


@pytest.fixture
async def fake():
    async with FakeGroq() as server:
        yield server


@pytest.fixture
async def opened(fake):
    made = []

    async def open_(**overrides):
        rt, provider = await open_runtime(fake, **overrides)
        rt.ai_provider = provider
        made.append((rt, provider))
        return rt

    yield open_
    for rt, provider in made:
        await provider.aclose()
        await rt.close()


def asked_synchronously(fake):
    return sorted(collaborations_in(body)[0]["collaborationId"] for body in fake.requests)


async def test_a_batch_api_outage_longer_than_a_job_s_attempts_does_not_lose_the_night(fake, opened):
    rt = await opened()
    ids = await three(rt)
    fake.respond = hello
    fake.batch_outage = 3 * rt.settings.job_max_attempts  # every poll job would have gone dead
    run = await drive(rt, checker_for(rt), tries=1000)
    assert run["status"] == "done" and run["actionsRun"] == 3
    assert fake.requests == []  # the batch answered everyone once Groq was back
    assert len(run["batch"]["pollErrors"]) == 10 and "503" in run["batch"]["pollErrors"][-1]["message"]
    assert await rt.store.jobs.list(kind=POLL, status="dead") == []
    for cid in ids:
        assert len(await ai_messages(rt, cid)) == 1


async def test_a_batch_that_cannot_be_read_by_the_deadline_is_asked_synchronously(fake, opened):
    rt = await opened(checkin_batch_deadline=1)
    ids = await three(rt)
    fake.respond = hello
    fake.batch_outage = 10**6  # Groq's batch API never answers again
    run = await drive(rt, checker_for(rt), tries=1000)
    assert run["status"] == "done" and run["actionsRun"] == 3
    assert asked_synchronously(fake) == sorted(ids)
    assert run["batch"]["collected"] is True and run["batch"]["pollErrors"]
    [batch_id] = fake.batches
    assert f"POST /openai/v1/batches/{batch_id}/cancel" in fake.calls  # it was still told to stop
    checks = {x["collaborationId"]: x for x in run["checks"]}
    assert all("could not be read" in checks[cid]["errors"][0]["message"] for cid in ids)


async def test_the_hourly_recovery_re_polls_a_waiting_run_whose_poll_died(fake, opened):
    rt = await opened()
    ids = await three(rt)
    fake.respond = hello
    fake.batch_statuses = ["completed"]
    provider = rt.ai_provider
    job, _ = await Scheduler(rt.store, rt.settings).enqueue_checkin()
    assert (await checker_for(rt).run_job(job))["status"] == "waiting"
    run_id = run_id_for(job["uniqueKey"])
    # the poll went dead (as one could before, after JOB_MAX_ATTEMPTS failures): nothing polls any more
    await rt.store.db["jobs"].update_one({"uniqueKey": f"{POLL}:{run_id}:0"}, {"$set": {"status": "dead"}})
    work = handlers.build(rt, provider)
    done = await work["approvals.expire"]({"_id": "job_hourly", "payload": {}})
    assert done["checkinRepolled"] == [run_id]
    again = await rt.store.jobs.by_key(f"{POLL}:{run_id}:1")
    assert again is not None and again["status"] == "queued"
    assert "checkinRepolled" not in await work["approvals.expire"]({"_id": "job_hourly2", "payload": {}})
    # a poll job that is missing altogether is made again too
    await rt.store.db["jobs"].delete_one({"uniqueKey": f"{POLL}:{run_id}:1"})
    assert (await work["approvals.expire"]({"_id": "job_hourly3", "payload": {}}))["checkinRepolled"] == [run_id]
    runner = Runner(rt.store.jobs, work, worker_id="w", lease=5, backoff=Backoff(base=0.01, cap=0.05), poll=0.01)
    for _ in range(50):
        await runner.run_once()
        if (await rt.store.checkin_runs.get(run_id))["status"] == "done":
            break
    run = await rt.store.checkin_runs.get(run_id)
    assert run["status"] == "done" and run["actionsRun"] == 3 and fake.requests == []
    for cid in ids:
        assert len(await ai_messages(rt, cid)) == 1


async def test_malformed_result_lines_fail_only_their_own_collaboration(fake, opened):
    rt = await opened()
    a, b, c = await three(rt)
    d, _ = await collaboration(rt, "Delta")
    e, _ = await collaboration(rt, "Epsilon")
    fake.respond = hello
    fake.odd_lines = {
        b: (
            "error",
            {"id": "r1", "custom_id": b, "response": {"status_code": 500, "body": {"error": "boom"}}, "error": None},
        ),
        c: ("output", {"id": "r2", "custom_id": c, "response": "not an object", "error": None}),
        d: (
            "output",
            {
                "id": "r3",
                "custom_id": d,
                "response": {"status_code": 200, "body": {"choices": {"0": 1}}},
                "error": None,
            },
        ),
        e: (
            "output",
            {
                "id": "r4",
                "custom_id": e,
                "response": {
                    "status_code": 200,
                    "body": {
                        "choices": [{"message": {"content": '{"actions": []}'}}],
                        "usage": {"prompt_tokens": "many"},
                    },
                },
            },
        ),
    }
    leak = {"actions": [{"action": "sendMessage", "payload": {"text": "planted"}, "reason": "x"}]}
    fake.extra_lines = [
        ("output", "not json at all"),
        ("output", [1, 2]),
        ("output", {"custom_id": 5}),
        ("error", {"no": "id"}),
        ("output", {"custom_id": "", "response": None}),
        ("error", "null"),
        # a line for an id this batch never sent (another run's, or made up) maps onto nothing
        (
            "output",
            {
                "custom_id": "col_someone_else",
                "response": {
                    "status_code": 200,
                    "body": {"choices": [{"message": {"content": str(leak).replace("'", '"')}}]},
                },
            },
        ),
        # an error line for a collaboration that was answered does not undo the answer
        ("error", {"custom_id": a, "response": None, "error": "late"}),
    ]
    run = await drive(rt, checker_for(rt), tries=1000)
    assert run["status"] == "done" and run["actionsRun"] == 5
    assert asked_synchronously(fake) == sorted([b, c, d, e])
    checks = {x["collaborationId"]: x for x in run["checks"]}
    assert checks[a]["via"] == "batch" and checks[a]["errors"] == []
    assert "boom" in checks[b]["errors"][0]["message"] and "unreadable" in checks[d]["errors"][0]["message"]
    for cid in (a, b, c, d, e):
        assert [m["text"] for m in await ai_messages(rt, cid)] != [] and len(await ai_messages(rt, cid)) == 1
    # read directly: every odd shape is survived, the foreign id is ignored
    provider = rt.ai_provider
    [batch_id] = fake.batches
    results = await provider.batches.results(await provider.batches.state(batch_id), {a, b, c, d, e})
    assert set(results.answers) == {a} and set(results.errors) == {b, c, d, e}
    assert (
        "col_someone_else" not in (await provider.batches.results(await provider.batches.state(batch_id), {a})).answers
    )


async def test_answers_finished_before_a_slow_cancel_are_kept(fake, opened):
    rt = await opened(checkin_batch_deadline=1)
    a, b, c = await three(rt)
    fake.respond = hello
    fake.batch_statuses = ["in_progress"]  # it never finishes by itself
    fake.finished_early = {a}
    fake.cancelling_polls = 3  # as Groq does: `cancelling` for a while after the cancel
    run = await drive(rt, checker_for(rt), tries=1000)
    assert run["status"] == "done" and run["batch"]["status"] == "cancelled"
    assert asked_synchronously(fake) == sorted([b, c])  # a's answer from the batch was kept
    assert {x["collaborationId"]: x["via"] for x in run["checks"]}[a] == "batch"
    [batch_id] = fake.batches
    assert fake.calls.count(f"POST /openai/v1/batches/{batch_id}/cancel") == 1
    for cid in (a, b, c):
        assert len(await ai_messages(rt, cid)) == 1


async def test_a_cancel_that_never_ends_is_waited_for_no_longer_than_the_grace(fake, opened):
    rt = await opened(checkin_batch_deadline=1)
    ids = await three(rt)
    fake.respond = hello
    fake.batch_statuses = ["in_progress"]
    fake.cancelling_polls = 10**6
    checker = Checkin(
        rt.store, rt.engine, rt.settings, rt.ai_provider, poll_first=0.01, poll_max=0.05, cancel_grace=0.5
    )
    started = asyncio.get_running_loop().time()
    run = await drive(rt, checker, tries=2000)
    assert asyncio.get_running_loop().time() - started >= 1.4
    assert run["status"] == "done" and run["batch"]["status"] == "cancelling"
    assert asked_synchronously(fake) == sorted(ids)
    polls = await rt.store.jobs.list(kind=POLL, limit=1000)
    assert all(j["runAt"] <= run["batch"]["deadline"] + timedelta(seconds=0.5) for j in polls)
    assert any(j["runAt"] > run["batch"]["deadline"] for j in polls)  # it did wait on the cancel
