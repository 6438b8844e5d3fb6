"""The job queue on the embedded store: claims, leases, retries, dead jobs, the scheduler, the CLI."""

from __future__ import annotations

import asyncio
import io
import json
import os
import random
import select
import signal
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from apscheduler.triggers.cron import CronTrigger

from backend.ai import make_provider
from backend.clock import utcnow
from backend.runtime import Runtime
from backend.settings import test_settings
from tests.support import user
from worker import commands
from worker.main import Worker
from worker.queue import Backoff, Permanent, Runner
from worker.scheduler import Scheduler, checkin_day, last_fire

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FAST = Backoff(base=0.01, cap=1.0, jitter=0.5)


@pytest.fixture
def runtime_settings():
    return test_settings(job_lease=1, job_max_attempts=3)


async def enqueue(rt, kind="work", payload=None, **kw):
    job, _ = await rt.store.jobs.enqueue(kind, payload or {}, now=kw.pop("now", utcnow()), **kw)
    return job


def runner(rt, handlers, worker_id="w1", lease=1.0, **kw):
    return Runner(
        rt.store.jobs,
        handlers,
        worker_id=worker_id,
        lease=lease,
        backoff=kw.pop("backoff", FAST),
        poll=kw.pop("poll", 0.01),
        **kw,
    )


async def until(predicate, timeout=5.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while not await predicate():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def test_a_unique_key_makes_enqueueing_idempotent(runtime):
    now = utcnow()
    first, created = await runtime.store.jobs.enqueue("checkin", {"day": "x"}, now=now, unique_key="checkin:x")
    again, created_again = await runtime.store.jobs.enqueue("checkin", {"day": "y"}, now=now, unique_key="checkin:x")
    assert created and not created_again and again["_id"] == first["_id"] and again["payload"] == {"day": "x"}
    await enqueue(runtime)
    await enqueue(runtime)  # jobs without a key never collide
    assert len(await runtime.store.jobs.list()) == 3


async def test_a_delayed_job_is_not_claimed_before_its_run_at(runtime):
    now = utcnow()
    await enqueue(runtime, now=now, run_at=now + timedelta(minutes=5))
    assert await runtime.store.jobs.claim("w1", now, 60) is None
    assert await runtime.store.jobs.claim("w1", now + timedelta(minutes=4, seconds=59), 60) is None
    claimed = await runtime.store.jobs.claim("w1", now + timedelta(minutes=5), 60)
    assert claimed is not None and claimed[1]["status"] == "running" and claimed[1]["attempts"] == 1


async def test_concurrent_claimers_get_a_job_once(runtime):
    await enqueue(runtime)
    now = utcnow()
    results = await asyncio.gather(*(runtime.store.jobs.claim(f"w{i}", now, 60) for i in range(50)))
    winners = [r for r in results if r is not None]
    assert len(winners) == 1 and winners[0][1]["workerId"] in {f"w{i}" for i in range(50)}


async def test_many_runners_run_every_job_once_and_never_two_at_once(runtime):
    ids = [(await enqueue(runtime, payload={"n": n}))["_id"] for n in range(30)]
    running: set[str] = set()
    runs: dict[str, int] = {}

    async def handler(job):
        assert job["_id"] not in running, "a job ran twice at the same time"
        running.add(job["_id"])
        runs[job["_id"]] = runs.get(job["_id"], 0) + 1
        await asyncio.sleep(random.uniform(0, 0.02))
        running.discard(job["_id"])

    stop = asyncio.Event()
    tasks = [asyncio.create_task(runner(runtime, {"work": handler}, worker_id=f"w{i}").run(stop)) for i in range(6)]

    async def all_done():
        return (await runtime.store.jobs.counts())["done"] == 30

    await until(all_done)
    stop.set()
    await asyncio.gather(*tasks)
    assert runs == dict.fromkeys(ids, 1)


async def test_a_killed_worker_s_job_is_reclaimed_after_its_lease(runtime):
    job = await enqueue(runtime)
    _, abandoned = await runtime.store.jobs.claim("killed-worker", utcnow(), 0.3)  # then the worker "dies"
    ran = []

    async def handler(j):
        ran.append(j["workerId"])
        return {"ok": True}

    rescuer = runner(runtime, {"work": handler}, worker_id="rescuer", lease=0.3)
    assert await rescuer.run_once() is False  # the lease still holds
    await asyncio.sleep(0.35)
    assert await rescuer.run_once() is True
    stored = await runtime.store.jobs.get(job["_id"])
    assert ran == ["rescuer"] and stored["status"] == "done" and stored["attempts"] == 2
    assert stored["result"] == {"ok": True}
    assert [e["type"] for e in stored["errors"]] == ["LeaseExpired"]
    assert stored["errors"][0]["workerId"] == "killed-worker" and stored["errors"][0]["attempt"] == 1
    # the dead worker's late writes are fenced off
    assert await runtime.store.jobs.complete(abandoned, utcnow()) is False
    assert await runtime.store.jobs.renew(abandoned, utcnow(), 10) is False


async def test_a_job_whose_lease_ran_out_on_its_last_attempt_is_dead_with_the_lease_error(runtime):
    job = await enqueue(runtime, max_attempts=2)
    jobs = runtime.store.jobs
    _, first = await jobs.claim("crashed-1", utcnow(), 60)
    await jobs.fail(first, utcnow(), {"attempt": 1, "type": "ValueError", "message": "boom"}, utcnow())
    _, last = await jobs.claim("crashed-2", utcnow(), 0.1)  # the last attempt, then this worker dies too
    assert last["attempts"] == 2
    await asyncio.sleep(0.15)
    ran = []
    rescuer = runner(runtime, {"work": lambda j: ran.append(j)}, worker_id="rescuer")
    assert await rescuer.run_once() is True
    stored = await jobs.get(job["_id"])
    assert ran == [] and stored["status"] == "dead" and stored["finishedAt"] is not None
    assert [e["type"] for e in stored["errors"]] == ["ValueError", "LeaseExpired"]
    assert stored["lastError"] == stored["errors"][-1]
    assert stored["lastError"]["workerId"] == "crashed-2" and stored["lastError"]["attempt"] == 2
    assert "crashed-2" in stored["lastError"]["message"]
    assert await rescuer.run_once() is False  # dead: never claimed again


async def test_lease_renewal_keeps_a_long_job_with_its_worker(runtime):
    job = await enqueue(runtime)
    ran = []

    def handler_for(name):
        async def handler(j):
            ran.append(name)
            await asyncio.sleep(1.2)  # four times the lease

        return handler

    slow = runner(runtime, {"work": handler_for("a")}, worker_id="a", lease=0.3)
    other = runner(runtime, {"work": handler_for("b")}, worker_id="b", lease=0.3)
    stop = asyncio.Event()
    first = asyncio.create_task(slow.run_once())
    await asyncio.sleep(0.05)
    second = asyncio.create_task(other.run(stop))  # polls all along, but the lease is always renewed
    await first
    stop.set()
    await second
    stored = await runtime.store.jobs.get(job["_id"])
    assert ran == ["a"] and stored["status"] == "done" and stored["attempts"] == 1 and stored["errors"] == []


async def test_a_worker_that_lost_its_lease_stops_its_handler(runtime):
    job = await enqueue(runtime)
    cancelled = asyncio.Event()

    async def handler(j):
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    stalled = runner(runtime, {"work": handler}, worker_id="stalled", lease=0.3)
    task = asyncio.create_task(stalled.run_once())
    await asyncio.sleep(0.05)
    # another worker takes the job over as if the lease had run out (e.g. the first one's clock stalled)
    taken = await runtime.store.jobs.claim("thief", utcnow() + timedelta(seconds=10), 60)
    assert taken is not None
    await asyncio.wait_for(task, 2)
    assert cancelled.is_set()
    stored = await runtime.store.jobs.get(job["_id"])
    assert stored["workerId"] == "thief" and stored["status"] == "running"


class FailingRenewals:
    """The real jobs collection, except that the first `failures` renewals raise (MongoDB unreachable)."""

    def __init__(self, jobs, failures=10**9):
        self._jobs, self.failures, self.attempts = jobs, failures, 0

    def __getattr__(self, name):
        return getattr(self._jobs, name)

    async def renew(self, job, now, lease):
        self.attempts += 1
        if self.attempts <= self.failures:
            raise ConnectionError("mongo blip")
        return await self._jobs.renew(job, now, lease)


async def test_a_worker_whose_renewals_keep_failing_stops_its_handler_when_the_lease_runs_out(runtime):
    job = await enqueue(runtime)
    running, ran, cancelled = set(), [], []
    loop = asyncio.get_running_loop()

    def handler_for(name):
        async def handler(j):
            assert not running, f"{name} started while {running} still ran the job"
            running.add(name)
            ran.append(name)
            started = loop.time()
            try:
                await asyncio.sleep(1.0)
            except asyncio.CancelledError:
                cancelled.append((name, loop.time() - started))
                raise
            finally:
                running.discard(name)

        return handler

    renewals = FailingRenewals(runtime.store.jobs)
    cut_off = Runner(renewals, {"work": handler_for("a")}, worker_id="a", lease=0.3, backoff=FAST, poll=0.01)
    other = runner(runtime, {"work": handler_for("b")}, worker_id="b", lease=0.3)
    first = asyncio.create_task(cut_off.run_once())
    await asyncio.sleep(0.05)
    _, claimed = await runtime.store.jobs.claim("probe", utcnow(), 0.3) or (None, None)
    assert claimed is None  # the lease still holds
    stop = asyncio.Event()
    second = asyncio.create_task(other.run(stop))
    await asyncio.wait_for(first, 2)
    [(name, after)] = cancelled
    assert name == "a" and 0.25 <= after < 0.9  # a gave up when its lease ran out, not before
    assert renewals.attempts >= 2  # it kept trying while the lease held

    async def done():
        return (await runtime.store.jobs.get(job["_id"]))["status"] == "done"

    await until(done)
    stop.set()
    await second
    stored = await runtime.store.jobs.get(job["_id"])
    assert ran == ["a", "b"] and stored["workerId"] == "b" and stored["attempts"] == 2
    assert [e["type"] for e in stored["errors"]] == ["LeaseExpired"]


async def test_a_renewal_that_fails_once_does_not_stop_the_handler(runtime):
    job = await enqueue(runtime)

    async def handler(j):
        await asyncio.sleep(0.8)  # renewed at 0.1, 0.2, ...: the first one raises
        return {"ok": True}

    renewals = FailingRenewals(runtime.store.jobs, failures=1)
    await Runner(renewals, {"work": handler}, worker_id="a", lease=0.3, backoff=FAST, poll=0.01).run_once()
    stored = await runtime.store.jobs.get(job["_id"])
    assert stored["status"] == "done" and stored["result"] == {"ok": True} and renewals.attempts >= 4


def test_backoff_grows_exponentially_with_jitter():
    backoff = Backoff(base=1.0, cap=10_000, jitter=0.5, rng=random.Random(7))
    delays = [backoff.delay(n) for n in range(1, 9)]
    for n, delay in enumerate(delays, start=1):
        assert 2 ** (n - 1) <= delay < 1.5 * 2 ** (n - 1)
    assert delays == sorted(delays) and len(set(delays)) == len(delays)
    samples = {backoff.delay(3) for _ in range(20)}
    assert len(samples) > 15, "jitter spreads retries of the same attempt"
    capped = Backoff(base=1.0, cap=60, jitter=0.5, rng=random.Random(1))
    assert all(60 <= capped.delay(20) < 90 for _ in range(10))


async def test_failures_retry_with_backoff_then_the_job_is_dead_with_every_error(runtime):
    job = await enqueue(runtime, max_attempts=3)

    async def handler(j):
        raise ValueError(f"boom {j['attempts']}")

    r = runner(runtime, {"work": handler})
    assert await r.run_once()
    failed = await runtime.store.jobs.get(job["_id"])
    assert failed["status"] == "failed" and failed["lastError"]["message"] == "boom 1"
    wait = (failed["runAt"] - failed["updatedAt"]).total_seconds()
    assert 0.005 <= wait <= 0.02  # base 0.01 s, jitter up to +50 %, millisecond precision

    async def dead():
        await r.run_once()
        return (await runtime.store.jobs.get(job["_id"]))["status"] == "dead"

    await until(dead)
    stored = await runtime.store.jobs.get(job["_id"])
    assert [e["message"] for e in stored["errors"]] == ["boom 1", "boom 2", "boom 3"]
    assert [e["attempt"] for e in stored["errors"]] == [1, 2, 3]
    assert all(e["type"] == "ValueError" and "Traceback" in e["traceback"] for e in stored["errors"])
    assert stored["lastError"] == stored["errors"][-1] and stored["attempts"] == 3 and stored["finishedAt"]
    assert await r.run_once() is False  # dead jobs are never claimed


async def test_a_permanent_error_kills_the_job_at_once(runtime):
    job = await enqueue(runtime, max_attempts=5)

    async def handler(j):
        raise Permanent("this payload can never work")

    await runner(runtime, {"work": handler}).run_once()
    stored = await runtime.store.jobs.get(job["_id"])
    assert stored["status"] == "dead" and stored["attempts"] == 1 and stored["lastError"]["type"] == "Permanent"


async def test_retrying_a_dead_job_gives_it_one_more_attempt(runtime):
    job = await enqueue(runtime, max_attempts=1)
    outcomes = iter([RuntimeError("down"), None])

    async def handler(j):
        error = next(outcomes)
        if error:
            raise error
        return {"fine": True}

    r = runner(runtime, {"work": handler})
    await r.run_once()
    assert (await runtime.store.jobs.get(job["_id"]))["status"] == "dead"
    out = io.StringIO()
    assert await commands.jobs_retry(runtime, job["_id"], out) == 0 and "queued again" in out.getvalue()
    assert await r.run_once()
    stored = await runtime.store.jobs.get(job["_id"])
    assert stored["status"] == "done" and stored["attempts"] == 2 and len(stored["errors"]) == 1
    assert await commands.jobs_retry(runtime, job["_id"], io.StringIO()) == 1  # done jobs are not retried


async def test_unknown_kinds_are_left_for_a_worker_that_knows_them(runtime):
    job = await enqueue(runtime, kind="from-a-newer-version")
    assert await runner(runtime, {"work": lambda j: None}).run_once() is False
    assert (await runtime.store.jobs.get(job["_id"]))["status"] == "queued"


async def test_cleanup_deletes_only_old_finished_jobs(runtime):
    now = utcnow()
    jobs = runtime.store.jobs
    for status in ("done", "dead", "queued"):
        await enqueue(runtime, payload={"s": status}, now=now)
        _, claimed = await jobs.claim("w", now, 60)
        if status == "done":
            await jobs.complete(claimed, now - timedelta(days=8))
        elif status == "dead":
            await jobs.fail(claimed, now - timedelta(days=8), {"message": "x"}, None)
        else:
            await jobs.release(claimed, now)
    recent = await enqueue(runtime, now=now)
    _, claimed = await jobs.claim("w", now + timedelta(seconds=1), 60)
    await jobs.complete(claimed, now)
    assert await jobs.cleanup(now - timedelta(days=7)) == 2
    assert {j["status"] for j in await jobs.list()} == {"queued", "done"} and await jobs.get(recent["_id"])


async def test_a_worker_stopping_releases_its_unfinished_job_and_finishes_a_quick_one(runtime):
    class SlowProvider:
        name, model = "slow", "slow"

        async def complete(self, task):
            await asyncio.sleep(30)

        async def aclose(self):
            pass

    await runtime.engine.run(
        "createCollaboration", user("o@example.com"), None, {"title": "T"}, actor_email="o@example.com"
    )
    job = await enqueue(runtime, kind="checkin", payload={"day": "2026-11-23"}, unique_key="checkin:2026-11-23")
    worker = Worker(runtime, SlowProvider(), worker_id="w-stop", poll=0.01, schedule=False)
    await worker.start()

    async def running():
        return (await runtime.store.jobs.get(job["_id"]))["status"] == "running"

    await until(running)
    await worker.stop(grace=0.2)
    stored = await runtime.store.jobs.get(job["_id"])
    assert stored["status"] == "queued" and stored["attempts"] == 0 and stored["workerId"] is None
    beat = (await runtime.store.workers.list())[0]
    assert beat["_id"] == "w-stop" and beat["status"] == "stopped" and beat["currentJob"] is None

    expire = await enqueue(runtime, kind="approvals.expire")
    quick = Worker(runtime, SlowProvider(), worker_id="w-quick", poll=0.01, schedule=False)
    quick.runner.handlers.pop("checkin")  # only the quick job kind
    await quick.start()

    async def expired_done():
        return (await runtime.store.jobs.get(expire["_id"]))["status"] == "done"

    await until(expired_done)
    await quick.stop(grace=1)
    assert (await runtime.store.jobs.get(expire["_id"]))["result"] == {"expired": 0, "recovered": 0}


SIGTERM_CHILD = """
import asyncio, json, sys
from backend import logs
from backend.ai.provider import Completion
from backend.clock import utcnow
from backend.runtime import Runtime
from backend.settings import test_settings
from tests.support import user
from worker.main import Worker, run_until_signalled

class Slow:  # the AI call of the check-in takes DELAY seconds
    name = model = "slow"
    async def complete(self, task):
        await asyncio.sleep(float(sys.argv[1]))
        return Completion('{"actions": []}')
    async def aclose(self):
        pass

async def main():
    logs.configure()
    rt = await Runtime.open(test_settings(worker_grace=float(sys.argv[2])))
    await rt.engine.run("createCollaboration", user("o@example.com"), None, {"title": "T"}, actor_email="o@example.com")
    job, _ = await rt.store.jobs.enqueue("checkin", {"day": "2026-11-23"}, now=utcnow(), unique_key="checkin:2026-11-23")

    async def say_when_running():
        while (await rt.store.jobs.get(job["_id"]))["status"] != "running":
            await asyncio.sleep(0.01)
        print("running", flush=True)

    asyncio.create_task(say_when_running())
    rc = await run_until_signalled(Worker(rt, Slow(), worker_id="w-sigterm"))
    stored = await rt.store.jobs.get(job["_id"])
    [beat] = await rt.store.workers.list()
    print(json.dumps({"rc": rc, "job": {k: stored[k] for k in ("status", "attempts", "workerId", "errors")},
                      "worker": {k: beat[k] for k in ("status", "currentJob", "processed", "failed")}}), flush=True)
    await rt.close()

asyncio.run(main())
"""


@pytest.mark.parametrize(
    "delay, grace, job",
    [
        (60, 0.3, {"status": "queued", "attempts": 0, "workerId": None, "errors": []}),  # released unfinished
        (0.4, 10, {"status": "done", "attempts": 1, "workerId": "w-sigterm", "errors": []}),  # finished within grace
    ],
)
def test_sigterm_stops_the_worker_process_gracefully(delay, grace, job):
    """`tandem worker`'s signal wiring, in a process of its own on the embedded store."""
    env = {k: v for k, v in os.environ.items() if k != "MONGODB_URI"}
    child = subprocess.Popen(
        [sys.executable, "-c", SIGTERM_CHILD, str(delay), str(grace)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        ready, _, _ = select.select([child.stdout], [], [], 30)  # a child that never gets there fails, not hangs
        assert ready, "the worker process did not start its job within 30 s"
        assert child.stdout.readline() == "running\n", child.stderr.read() if child.poll() is not None else ""
        child.send_signal(signal.SIGTERM)
        out, err = child.communicate(timeout=20)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == 0, err
    report = json.loads(out)
    assert report["rc"] == 0 and report["job"] == job
    assert report["worker"]["status"] == "stopped" and report["worker"]["currentJob"] is None
    assert "worker: signal received, stopping" in err and "worker stopped" in err


async def test_the_worker_takes_its_backoff_and_grace_from_the_settings():
    rt = await Runtime.open(test_settings(job_backoff=30, job_backoff_max=600, worker_grace=0))
    try:
        worker = Worker(rt, make_provider(rt.settings), worker_id="w-settings", poll=0.01, schedule=False)
        assert (worker.runner.backoff.base, worker.runner.backoff.cap) == (30, 600)
        assert 30 <= worker.runner.backoff.delay(1) < 45 and worker.runner.backoff.delay(12) < 900
        await worker.start()
        await worker.stop()  # WORKER_GRACE=0: returns at once with nothing running
        assert (await rt.store.workers.list())[0]["status"] == "stopped"
    finally:
        await rt.close()


async def test_the_scheduler_only_enqueues_with_one_key_per_period(runtime):
    at = datetime(2026, 11, 23, 1, 30, tzinfo=timezone.utc)
    assert checkin_day(at, "Europe/Berlin") == "2026-11-23" and checkin_day(at, "America/New_York") == "2026-11-22"
    settings = test_settings(checkin_tz="America/New_York", checkin_cron="0 2 * * *")
    one, two = Scheduler(runtime.store, settings, lambda: at), Scheduler(runtime.store, settings, lambda: at)
    (a, created_a), (b, created_b) = await one.enqueue_checkin(), await two.enqueue_checkin()
    assert created_a and not created_b and a["_id"] == b["_id"] and a["uniqueKey"] == "checkin:2026-11-22"
    assert a["payload"] == {"day": "2026-11-22", "trigger": "schedule"} and a["maxAttempts"] == 5
    (e1, _), (_e2, made) = await one.enqueue_expiry(), await two.enqueue_expiry()
    assert e1["uniqueKey"] == "approvals.expire:2026-11-23T01" and not made
    assert (await one.enqueue_cleanup())[0]["uniqueKey"] == "cleanup:2026-11-22"
    assert {j["status"] for j in await runtime.store.jobs.list()} == {"queued"}  # nothing ran
    assert await runtime.store.checkin_runs.recent() == []
    one.start()
    try:
        nxt = one.next_runs()
        local = nxt["checkin"].astimezone(ZoneInfo("America/New_York"))
        assert (local.hour, local.minute) == (2, 0) and set(nxt) == {"checkin", "approvals.expire", "cleanup"}
    finally:
        one.shutdown()


def test_last_fire_looks_back_at_most_a_day():
    daily = CronTrigger.from_crontab("0 2 * * *", timezone=ZoneInfo("Europe/Berlin"))
    at = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)  # 10:00 in Berlin
    assert last_fire(daily, at) == datetime(2026, 11, 23, 2, 0, tzinfo=ZoneInfo("Europe/Berlin"))
    early = datetime(2026, 11, 23, 0, 30, tzinfo=timezone.utc)  # 01:30 in Berlin: yesterday's
    assert last_fire(daily, early) == datetime(2026, 11, 22, 2, 0, tzinfo=ZoneInfo("Europe/Berlin"))
    weekly = CronTrigger.from_crontab("0 2 * * mon", timezone=timezone.utc)  # 2026-11-23 is a Monday
    assert last_fire(weekly, datetime(2026, 11, 25, 9, 0, tzinfo=timezone.utc)) is None
    every_minute = CronTrigger.from_crontab("* * * * *", timezone=timezone.utc)
    assert last_fire(every_minute, at) == at


async def test_a_missed_checkin_is_caught_up_once(runtime):
    at = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)
    settings = test_settings(checkin_tz="UTC", checkin_cron="0 2 * * *")
    one, two = Scheduler(runtime.store, settings, lambda: at), Scheduler(runtime.store, settings, lambda: at)
    (job, created), (again, created_again) = await one.catch_up(), await two.catch_up()
    assert created and not created_again and job["_id"] == again["_id"]
    assert job["uniqueKey"] == "checkin:2026-11-23" and job["payload"] == {"day": "2026-11-23", "trigger": "catch-up"}
    # The night's own job already ran: starting later enqueues nothing new.
    _, claimed = await runtime.store.jobs.claim("w-night", at, 60, ["checkin"])
    assert await runtime.store.jobs.complete(claimed, at, {"ok": True})
    _, created_later = await Scheduler(runtime.store, settings, lambda: at + timedelta(hours=5)).catch_up()
    assert not created_later and len(await runtime.store.jobs.list()) == 1


async def test_a_worker_catches_up_on_start_only_on_a_persistent_store(runtime):
    at = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)
    for embedded, expected in ((True, []), (False, ["checkin:2026-11-23"])):
        runtime.store.embedded = embedded  # the embedded store starts empty: every start would be "missed"
        worker = Worker(
            runtime, make_provider(runtime.settings), worker_id=f"w-{embedded}", poll=3600, clock=lambda: at
        )
        await worker.start()
        await worker.stop(grace=0)
        assert [j["uniqueKey"] for j in await runtime.store.jobs.list() if j["kind"] == "checkin"] == expected
    runtime.store.embedded = True


async def test_jobs_list_shows_jobs_and_totals(runtime):
    job = await enqueue(runtime, kind="checkin", unique_key="checkin:2026-11-23")
    out = io.StringIO()
    assert await commands.jobs_list(runtime, None, None, 10, out) == 0
    text = out.getvalue()
    assert job["_id"] in text and "checkin:2026-11-23" in text and "queued 1" in text


@pytest.mark.parametrize("argv", [["worker"], ["jobs", "list"], ["jobs", "retry", "job_x"], ["checkin", "--now"]])
def test_worker_commands_refuse_the_embedded_store_clearly(argv):
    env = {k: v for k, v in os.environ.items() if k != "MONGODB_URI"}
    env.update(AUTH_MODE="dev")
    result = subprocess.run(
        [sys.executable, "-m", "backend.cli", *argv], cwd=ROOT, env=env, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2
    assert "needs MONGODB_URI" in result.stderr and "tandem dev" in result.stderr
