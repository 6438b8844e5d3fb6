"""The nightly check-in in batch mode: the real groq SDK against the local fake's files and batches
endpoints, polled through the real job queue; and the per-collaboration failures of any mode."""

from __future__ import annotations

import asyncio
import json

import msgspec
import pytest

from backend.ai.groq_provider import GroqProvider
from backend.ai.offline import OfflineProvider
from backend.ai.provider import AIUnavailable
from backend.runtime import Runtime
from tests.fake_groq import FakeGroq, Reply, collaborations_in, server_error
from tests.test_checkin import ai_messages, collaboration
from worker import handlers
from worker.checkin import POLL, Checkin, run_id_for
from worker.queue import Backoff, Runner
from worker.scheduler import Scheduler


@pytest.fixture
async def fake():
    async with FakeGroq() as server:
        yield server


async def open_runtime(fake, **overrides):
    rt = await Runtime.open(fake.settings(**{"checkin_mode": "batch", "job_lease": 5, **overrides}))
    provider = GroqProvider(rt.settings, backoff=0.01, sdk_retries=0)
    return rt, provider


@pytest.fixture
async def batch_runtime(fake):
    rt, provider = await open_runtime(fake)
    rt.ai_provider = provider
    yield rt
    await provider.aclose()
    await rt.close()


def hello(body):
    """A well-behaved model: a hello message on the collaboration it was shown."""
    [c] = collaborations_in(body)
    return {"actions": [{"action": "sendMessage", "payload": {"text": f"Hello {c['title']}!"}, "reason": "hi"}]}


def checker_for(rt, provider=None):
    return Checkin(rt.store, rt.engine, rt.settings, provider or rt.ai_provider, poll_first=0.01, poll_max=0.05)


async def drive(rt, checker, tries=400):
    """Run the real queue (check-in and poll jobs) until today's run is finished; the run."""
    job, _ = await Scheduler(rt.store, rt.settings).enqueue_checkin()
    runner = Runner(
        rt.store.jobs,
        {"checkin": checker.run_job, POLL: checker.poll_job},
        worker_id="w",
        lease=5,
        backoff=Backoff(base=0.01, cap=0.05),
        poll=0.01,
    )
    run_id = run_id_for(job["uniqueKey"])
    for _ in range(tries):
        await runner.run_once()
        run = await rt.store.checkin_runs.get(run_id)
        if run is not None and run["status"] in ("done", "failed") and run.get("finishedAt"):
            return run
        await asyncio.sleep(0.01)
    return await rt.store.checkin_runs.get(run_id)


async def three(rt):
    return [(await collaboration(rt, name))[0] for name in ("Alpha", "Beta", "Gamma")]


async def test_one_batch_job_with_one_request_per_collaboration(fake, batch_runtime):
    rt = batch_runtime
    ids = await three(rt)
    fake.respond = hello
    run = await drive(rt, checker_for(rt))
    assert run["status"] == "done" and run["mode"] == "batch" and run["actionsRun"] == 3
    assert run["requests"] == 3 and run["tokens"]["total"] == 450
    # one file, one batch; no synchronous request
    assert fake.calls.count("POST /openai/v1/files") == 1 and fake.calls.count("POST /openai/v1/batches") == 1
    assert fake.requests == [] and len(fake.batch_requests) == 3
    [batch] = fake.batches.values()
    assert batch["completion_window"] == "24h" and batch["metadata"] == {"tandem": run["_id"]}
    lines = [json.loads(x) for x in fake.files[batch["input_file_id"]]["bytes"].decode().splitlines()]
    assert [x["custom_id"] for x in lines] == ids
    for line in lines:  # each request carries exactly its own collaboration
        assert [c["collaborationId"] for c in collaborations_in(line["body"])] == [line["custom_id"]]
        assert line["body"]["response_format"] == {"type": "json_object"} and line["body"]["model"] == "llama-fake"
    assert run["batch"]["status"] == "completed" and run["batch"]["collected"] is True
    assert run["batch"]["requestCounts"] == {"total": 3, "completed": 3, "failed": 0}
    for cid, name in zip(ids, ("Alpha", "Beta", "Gamma")):
        assert [m["text"] for m in await ai_messages(rt, cid)] == [f"Hello {name}!"]
    # polls went through the queue, each its own job with a deterministic key
    polls = await rt.store.jobs.list(kind=POLL)
    assert sorted(j["uniqueKey"] for j in polls) == [f"{POLL}:{run['_id']}:{n}" for n in range(len(polls))]
    assert len(polls) >= 2 and all(j["status"] == "done" for j in polls)
    # the check-in job, or the last poll, delivered again finds its run done: no second batch, nothing twice
    [job] = await rt.store.jobs.list(kind="checkin")
    await checker_for(rt).run_job(job)
    last_poll = max(polls, key=lambda j: j["payload"]["poll"])
    assert (await checker_for(rt).poll_job(last_poll))["status"] == "done"
    assert fake.calls.count("POST /openai/v1/batches") == 1 and len(await ai_messages(rt, ids[0])) == 1
    assert fake.calls.count(f"GET /openai/v1/batches/{batch['id']}") == len(polls)
    # the worker runs both kinds
    assert {"checkin", POLL} <= set(handlers.build(rt, rt.ai_provider))


async def test_a_submission_interrupted_before_its_id_was_stored_is_found_not_repeated(fake, batch_runtime):
    rt = batch_runtime
    ids = await three(rt)
    fake.respond = hello
    provider = rt.ai_provider
    real_submit = provider.batches.submit

    async def submit_then_crash(tasks, tag):
        await real_submit(tasks, tag)
        raise ConnectionError("worker died before storing the batch id")

    provider.batches.submit = submit_then_crash
    checker = checker_for(rt)
    job, _ = await Scheduler(rt.store, rt.settings).enqueue_checkin()
    with pytest.raises(ConnectionError):
        await checker.run_job(job)
    provider.batches.submit = real_submit
    run = await drive(rt, checker)
    assert run["status"] == "done" and fake.calls.count("POST /openai/v1/batches") == 1
    assert "GET /openai/v1/batches" in fake.calls  # found by its tag
    for cid in ids:
        assert len(await ai_messages(rt, cid)) == 1


async def test_error_file_lines_fail_only_their_collaboration_which_is_asked_synchronously(fake, batch_runtime):
    rt = batch_runtime
    a, b, c = await three(rt)
    fake.respond = hello
    fake.line_errors[b] = server_error()
    run = await drive(rt, checker_for(rt))
    assert run["status"] == "done" and run["actionsRun"] == 3
    assert run["batch"]["requestCounts"] == {"total": 3, "completed": 2, "failed": 1}
    [sync] = fake.requests  # only b was asked again, on its own
    assert [x["collaborationId"] for x in collaborations_in(sync)] == [b]
    checks = {x["collaborationId"]: x for x in run["checks"]}
    assert checks[a]["via"] == checks[c]["via"] == "batch" and checks[b]["via"] == "sync"
    assert "status 500" in checks[b]["errors"][0]["message"] and checks[b]["requests"] == 2


async def test_a_collaboration_whose_fallback_fails_too_fails_alone(fake, batch_runtime):
    rt = batch_runtime
    a, b, c = await three(rt)
    fake.line_errors[b] = server_error()
    fake.respond = lambda body: server_error() if collaborations_in(body)[0]["collaborationId"] == b else hello(body)
    checker = checker_for(rt)
    run = await drive(rt, checker, tries=40)
    assert run["status"] == "failed"
    assert {x["collaborationId"]: x["status"] for x in run["checks"]} == {a: "done", b: "failed", c: "done"}
    assert len(await ai_messages(rt, a)) == len(await ai_messages(rt, c)) == 1 and await ai_messages(rt, b) == []
    # the poll job is retried by the queue; once the model answers b, only b is asked again
    fake.respond = hello
    for _ in range(200):
        run = await rt.store.checkin_runs.get(run["_id"])
        if run["status"] == "done":
            break
        await Runner(rt.store.jobs, {POLL: checker.poll_job}, worker_id="w2", lease=5).run_once()
        await asyncio.sleep(0.02)
    assert run["status"] == "done"
    for cid in (a, b, c):
        assert len(await ai_messages(rt, cid)) == 1
    assert fake.calls.count("POST /openai/v1/batches") == 1


@pytest.mark.parametrize("ending", ["failed", "expired"])
async def test_a_failed_or_expired_batch_leaves_the_rest_to_synchronous_requests(fake, batch_runtime, ending):
    rt = batch_runtime
    a, b, c = await three(rt)
    fake.respond = hello
    if ending == "failed":
        fake.fail_validation = "line 1: model not found"
    else:
        fake.batch_statuses = ["in_progress", "expired"]
        fake.finished_early = {a}
    run = await drive(rt, checker_for(rt))
    assert run["status"] == "done" and run["actionsRun"] == 3 and run["batch"]["status"] == ending
    asked = sorted(collaborations_in(body)[0]["collaborationId"] for body in fake.requests)
    assert asked == (sorted([a, b, c]) if ending == "failed" else sorted([b, c]))
    if ending == "failed":
        assert run["batch"]["collected"] and "model not found" in json.dumps(run["batch"], default=str)
    for cid in (a, b, c):
        assert len(await ai_messages(rt, cid)) == 1


async def test_past_the_deadline_the_batch_is_cancelled_and_the_unfinished_run_synchronously(fake):
    rt, provider = await open_runtime(fake, checkin_batch_deadline=1)
    try:
        a, b, c = await three(rt)
        fake.respond = hello
        fake.batch_statuses = ["in_progress"]  # it never finishes by itself
        fake.finished_early = {a}  # ...but had answered a when it was cancelled
        started = asyncio.get_running_loop().time()
        run = await drive(rt, checker_for(rt, provider), tries=1000)
        assert asyncio.get_running_loop().time() - started >= 0.9
        assert run["status"] == "done" and run["batch"]["status"] == "cancelled"
        [batch_id] = fake.batches
        assert f"POST /openai/v1/batches/{batch_id}/cancel" in fake.calls
        assert sorted(collaborations_in(x)[0]["collaborationId"] for x in fake.requests) == sorted([b, c])
        for cid in (a, b, c):
            assert len(await ai_messages(rt, cid)) == 1
        # no poll was scheduled past the deadline
        polls = await rt.store.jobs.list(kind=POLL)
        assert all(j["runAt"] <= run["batch"]["deadline"] for j in polls)
    finally:
        await provider.aclose()
        await rt.close()


async def test_a_bad_answer_or_an_unreadable_stored_date_fails_only_that_collaboration(fake, batch_runtime):
    rt = batch_runtime
    a, b, c = await three(rt)
    # b's stored data is broken: an activity's date is not a date, another's has no id at all
    odd = {
        "id": "act_odd",
        "title": "odd",
        "status": "proposed",
        "createdAt": "31/02/2026",
        "createdBy": {"type": "user", "id": "u"},
        "updatedAt": "never",
    }
    await rt.store.db["collaborations"].update_one({"_id": b}, {"$push": {"activities": odd}})

    def respond(body):
        [col] = collaborations_in(body)
        if col["collaborationId"] == a:  # a's answer names a date no one can read, and is half JSON
            return {
                "actions": [
                    {
                        "action": "scheduleActivity",
                        "reason": "r",
                        "payload": {"activityId": col["activities"][0]["id"], "scheduledFor": "2026-13-45"},
                    }
                ]
            }
        return hello(body)

    fake.respond = respond
    run = await drive(rt, checker_for(rt), tries=40)
    checks = {x["collaborationId"]: x for x in run["checks"]}
    assert checks[a]["status"] == "done" and checks[a]["invalid"]["malformed"] == 1
    assert checks[b]["status"] == "failed" and "datetime" in checks[b]["errors"][-1]["message"]
    assert checks[c]["status"] == "done" and len(await ai_messages(rt, c)) == 1
    # a collaboration whose prompt cannot even be built is left out of the batch, alone
    await rt.store.db["collaborations"].update_one({"_id": c}, {"$push": {"activities": {"status": "proposed"}}})
    fake.batches.clear()
    again = await Checkin(rt.store, rt.engine, rt.settings, rt.ai_provider).run_job(
        {"_id": "job_x", "uniqueKey": "checkin:again", "payload": {}}
    )
    assert again["status"] == "waiting"
    [batch] = fake.batches.values()
    assert [json.loads(x)["custom_id"] for x in fake.files[batch["input_file_id"]]["bytes"].decode().splitlines()] == [
        a,
        b,
    ]
    run = await rt.store.checkin_runs.get(run_id_for("checkin:again"))
    assert {x["collaborationId"]: x["status"] for x in run["checks"]}[c] == "failed"
    # the same in sync mode, with the offline rules: c fails alone (b has nothing to act on tonight)
    sync = Checkin(rt.store, rt.engine, msgspec.structs.replace(rt.settings, checkin_mode="sync"), OfflineProvider())
    result = await sync.run()
    assert result["status"] == "failed" and [f["collaborationId"] for f in result["collaborationsFailed"]] == [c]
    assert {x["collaborationId"]: x["status"] for x in (await rt.store.checkin_runs.get(result["id"]))["checks"]} == {
        a: "done",
        b: "done",
        c: "failed",
    }


async def test_sync_mode_asks_at_most_checkin_concurrency_at_once(fake):
    rt = await Runtime.open(fake.settings(checkin_mode="sync", checkin_concurrency=2))
    provider = GroqProvider(rt.settings, backoff=0.01)
    try:
        ids = [(await collaboration(rt, f"C{n}"))[0] for n in range(5)]
        inflight = peak = 0
        real = provider.complete

        async def counted(task):
            nonlocal inflight, peak
            inflight += 1
            peak = max(peak, inflight)
            await asyncio.sleep(0.05)
            try:
                return await real(task)
            finally:
                inflight -= 1

        provider.complete = counted
        fake.respond = hello
        result = await Checkin(rt.store, rt.engine, rt.settings, provider).run()
        assert result["status"] == "done" and result["requests"] == 5 and peak == 2
        assert fake.batches == {} and len(fake.requests) == 5
        for cid in ids:
            assert len(await ai_messages(rt, cid)) == 1
    finally:
        await provider.aclose()
        await rt.close()


async def test_the_offline_and_ollama_providers_never_batch(batch_runtime):
    rt = batch_runtime
    cid, _ = await collaboration(rt, "Solo", old_activity=True)
    job, _ = await Scheduler(rt.store, rt.settings).enqueue_checkin()
    result = await Checkin(rt.store, rt.engine, rt.settings, OfflineProvider()).run_job(job)
    assert result["actionsRun"] == 1 and await rt.store.jobs.list(kind=POLL) == []
    assert (await rt.store.checkin_runs.get(result["runId"]))["checks"][0]["via"] == "sync"


async def test_a_batch_api_that_says_no_leaves_the_night_to_synchronous_requests(fake, batch_runtime):
    rt = batch_runtime
    ids = await three(rt)
    fake.respond = hello
    fake.refuse_batches = Reply(
        status=403, error={"message": "The Batch API is not available on your plan", "type": "permission_denied"}
    )
    run = await drive(rt, checker_for(rt))
    assert run["status"] == "done" and run["actionsRun"] == 3 and len(fake.requests) == 3
    assert run["batch"]["refused"] is True and run["batch"]["status"] == 403
    assert await rt.store.jobs.list(kind=POLL) == [] and run["requests"] == 3
    for cid in ids:
        assert len(await ai_messages(rt, cid)) == 1


async def test_a_batch_api_that_is_down_is_retried_by_the_queue(fake, batch_runtime):
    rt = batch_runtime
    await three(rt)
    fake.respond = hello
    fake.refuse_batches = server_error()
    checker = checker_for(rt)
    job, _ = await Scheduler(rt.store, rt.settings).enqueue_checkin()
    with pytest.raises(AIUnavailable):
        await checker.run_job(job)
    assert fake.requests == []  # not asked synchronously: the batch is tried again
    fake.refuse_batches = None
    run = await drive(rt, checker)
    assert run["status"] == "done" and run["actionsRun"] == 3 and fake.requests == []
    assert len(fake.batches) == 1
