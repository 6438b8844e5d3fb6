"""The batch half of the AI check-in (worker/checkin.py is the rest): Groq's Batch API, polled
through the job queue. `BatchCheckin` is a base of `Checkin`, whose run it works on (it uses the
host's `store`, `settings`, `provider`, `clock`, poll timings, `_task`, `_check_all`,
`_finish_job`, `_keep_answer` and `_record_error`).

(Over 300 lines: submitting, polling, reading the output and error files and the deadline's
synchronous fallback are one protocol with Groq's Batch API, read top to bottom.)

Requests are batched, tenants are not. With a provider that has a batch API
(Groq) and CHECKIN_MODE=batch, the queue's `checkin` job submits one batch job
(one request per collaboration, `custom_id` = its id) and enqueues
`checkin.poll` jobs (keys `checkin.poll:<run>:<n>`, each later than the last,
never past CHECKIN_BATCH_DEADLINE). The poll that finds the batch finished, or
the deadline passed (then it cancels the batch), reads the output and error
files, asks synchronously for every collaboration the batch did not answer,
and carries out the proposals. Otherwise (CHECKIN_MODE=sync, ollama, offline,
a run started by hand) each collaboration is asked on its own,
CHECKIN_CONCURRENCY at a time.

Polling survives Groq's trouble. A poll whose `batches.state` or `results` fails records the error
in the run (`batch.pollErrors`, the last 10) and enqueues the next poll, up to the deadline; past it
the run asks synchronously every collaboration the batch has not answered (and still tells Groq to
cancel). The hourly recovery (`approvals.expire`) calls `repoll_stalled`: a waiting run whose latest
poll job is dead or missing gets a new one. A cancel takes a while at Groq (`cancelling`): the poll
comes back every `poll_first` seconds until the batch is `cancelled`, for at most CANCEL_GRACE past
the deadline, then collects what the batch finished. A result line of any shape fails only its own
request (backend/ai/groq_provider.py), and only the ids this batch sent are read.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Callable

from backend.ai.provider import AIUnavailable, BatchState, Completion, Provider, Task

if TYPE_CHECKING:
    from backend.settings import Settings
    from backend.store.store import Store
    from worker.checkin import Progress

log = logging.getLogger("tandem.checkin")

POLL = "checkin.poll"
CANCEL_GRACE = 600.0  # seconds past the deadline a cancelled batch may stay `cancelling` before it is collected
RECOVERY_RUNS = 50  # the most recent runs the hourly recovery looks at for a lost poll


class BatchCheckin:
    """The batch mode of `Checkin` (see the module's docstring for what it expects of its host)."""

    store: Store
    settings: Settings
    provider: Provider
    clock: Callable[[], datetime]
    poll_first: float  # seconds before the first poll of a batch; doubles up to poll_max
    poll_max: float
    cancel_grace: float  # seconds past the deadline a `cancelling` batch is waited for

    if TYPE_CHECKING:  # the host's (worker/checkin.py `Checkin`), declared for the type checker only

        async def _task(self, run: dict[str, Any], cid: str) -> Task | None: ...
        async def _check_all(self, run: dict[str, Any], progress: Progress | None) -> None: ...
        async def _finish_job(self, run: dict[str, Any]) -> dict[str, Any]: ...
        def _keep_answer(self, check: dict[str, Any], completion: Completion | None) -> None: ...
        @staticmethod
        def _record_error(check: dict[str, Any], exc: BaseException, now: datetime) -> None: ...

    async def _batch_job(self, run: dict[str, Any]) -> dict[str, Any]:
        """The `checkin` job in batch mode: submit the run's batch (once) and enqueue its first poll."""
        if not (run.get("batch") or {}).get("id") and not (run.get("batch") or {}).get("refused"):
            try:
                await self._submit(run)
            except AIUnavailable as exc:
                if not _is_refusal(exc):
                    raise  # network, 5xx, rate limits: the queue retries the job
                await self._ask_synchronously_instead(run, exc)
        batch = run["batch"]
        if batch.get("id") is None:  # nothing to submit, or the batch API refused: finish here
            await self._check_all(run, None)
            return await self._finish_job(run)
        await self._enqueue_poll(run, batch.get("polls", 0))
        return {"runId": run["_id"], "batchId": batch["id"], "status": "waiting"}

    async def poll_job(self, job: dict[str, Any]) -> dict[str, Any]:
        """The queue's `checkin.poll` handler: look at the batch once; when it is finished (or the
        deadline passed), collect its answers, ask the rest synchronously and act. A provider error
        never kills the poll: it is recorded and the next poll enqueued; past the deadline (and the
        cancel's grace) the run asks synchronously instead."""
        run = await self.store.checkin_runs.get(job["payload"]["runId"])
        if run is None or run["status"] == "done":
            return {"runId": job["payload"]["runId"], "status": "done"}
        batch = run["batch"]
        batches = self.provider.batches
        poll = int(job["payload"].get("poll", 0))
        if not batch.get("collected"):
            if batches is None:
                raise AIUnavailable("This provider has no batch API to poll.", {"provider": self.provider.name})
            try:
                state = await batches.state(batch["id"])
                if not state.finished:
                    state, waiting = await self._still_waiting(run, state, poll)
                    if waiting is not None:
                        return waiting
                await self._collect(run, state)
            except AIUnavailable as exc:
                waiting = await self._poll_failed(run, poll, exc)
                if waiting is not None:
                    return waiting
        await self._check_all(run, None)
        return await self._finish_job(run)

    async def _still_waiting(
        self, run: dict[str, Any], state: BatchState, poll: int
    ) -> tuple[BatchState, dict[str, Any] | None]:
        """An unfinished batch: poll again (before the deadline, or while a cancel is under way and
        within CANCEL_GRACE of the deadline); (its latest state, None) when it is time to collect."""
        batch = run["batch"]
        now = self.clock()
        if now < batch["deadline"]:
            run_at = None
        else:
            if not batch.get("cancelledAt"):
                batch["cancelledAt"] = now
                state = await self._stop(state)
                if state.finished:
                    return state, None
            if now >= batch["deadline"] + timedelta(seconds=self.cancel_grace):
                log.warning(
                    "a cancelled check-in batch did not end in time; collecting what it has",
                    extra={"runId": run["_id"], "batchId": state.id, "status": state.status},
                )
                return state, None
            run_at = min(
                now + timedelta(seconds=self.poll_first), batch["deadline"] + timedelta(seconds=self.cancel_grace)
            )
        batch.update(status=state.status, requestCounts=state.request_counts, polls=poll + 1)
        await self.store.checkin_runs.update(run["_id"], {"batch": batch})
        await self._enqueue_poll(run, poll + 1, run_at)
        return state, {"runId": run["_id"], "batchId": batch["id"], "status": state.status}

    async def _poll_failed(self, run: dict[str, Any], poll: int, exc: AIUnavailable) -> dict[str, Any] | None:
        """The batch API failed: note it and poll again; past the time to give up, None (the run
        asks every collaboration the batch has not answered synchronously)."""
        batch = run["batch"]
        now = self.clock()
        noted = {"poll": poll, "at": now, "message": str(exc)[:500]}
        batch["pollErrors"] = [*(batch.get("pollErrors") or []), noted][-10:]
        give_up = batch["deadline"] + timedelta(seconds=self.cancel_grace if batch.get("cancelledAt") else 0)
        log.warning(
            "polling a check-in batch failed",
            extra={"runId": run["_id"], "batchId": batch["id"], "poll": poll, "error": str(exc)[:500]},
        )
        if now < give_up:
            batch["polls"] = poll + 1
            await self.store.checkin_runs.update(run["_id"], {"batch": batch})
            await self._enqueue_poll(
                run,
                poll + 1,
                None if now < batch["deadline"] else min(now + timedelta(seconds=self.poll_first), give_up),
            )
            return {"runId": run["_id"], "batchId": batch["id"], "status": "retrying"}
        if not batch.get("cancelledAt"):
            batch["cancelledAt"] = now
            await self._stop(BatchState(id=batch["id"], status=batch.get("status") or "unknown"))
        for index, check in enumerate(run["checks"]):
            if check.get("via") == "batch" and check.get("proposals") is None:
                _batch_error(check, now, f"batch {batch['id']} could not be read: {exc}")
                await self.store.checkin_runs.set_check(run["_id"], index, check)
        batch.update(collected=True, collectedAt=now, answered=0)
        await self.store.checkin_runs.update(run["_id"], {"batch": batch})
        return None

    async def repoll_stalled(self) -> list[str]:
        """The hourly recovery: a waiting batch run whose latest poll job is dead or missing gets a new
        one (its number one past the dead one's). Returns the runs it re-polled."""
        repolled = []
        for run in await self.store.checkin_runs.recent(RECOVERY_RUNS):
            batch = run.get("batch") or {}
            if run.get("status") != "waiting" or not batch.get("id") or batch.get("collected"):
                continue
            polls = int(batch.get("polls") or 0)
            last = await self.store.jobs.by_key(f"{POLL}:{run['_id']}:{polls}")
            if last is not None and last["status"] != "dead":
                continue
            if last is not None:
                polls += 1
                await self.store.checkin_runs.update(run["_id"], {"batch.polls": polls})
            await self._enqueue_poll(run, polls, self.clock())
            log.warning("re-polling a check-in batch whose poll was lost", extra={"runId": run["_id"], "poll": polls})
            repolled.append(run["_id"])
        return repolled

    async def _submit(self, run: dict[str, Any]) -> None:
        """Submit one batch job for every collaboration still to ask; at most one per run."""
        batches = self.provider.batches
        assert batches is not None
        tag = run["_id"]
        now = self.clock()
        batch_id = await batches.find(tag) if (run.get("batch") or {}).get("submitting") else None
        tasks: dict[str, Task] = {}
        for index, check in enumerate(run["checks"]):
            if check["status"] == "done" or check.get("proposals") is not None:
                continue
            try:
                task = await self._task(run, check["collaborationId"])
            except Exception as exc:  # noqa: BLE001 - e.g. a date it cannot read: this collaboration alone
                check["status"] = "failed"
                self._record_error(check, exc, now)
                await self.store.checkin_runs.set_check(run["_id"], index, check)
                continue
            if task is None:
                self._keep_answer(check, None)
                await self.store.checkin_runs.set_check(run["_id"], index, check)
                continue
            tasks[check["collaborationId"]] = task
        if not tasks and batch_id is None:
            run["batch"] = {"id": None, "collected": True}
            await self.store.checkin_runs.update(run["_id"], {"batch": run["batch"]})
            return
        if batch_id is None:
            await self.store.checkin_runs.update(run["_id"], {"batch": {"submitting": True, "at": now}})
            batch_id = await batches.submit(tasks, tag)
        for check in run["checks"]:
            if check["collaborationId"] in tasks:
                check.update(requests=check["requests"] + 1, via="batch")
        run["batch"] = {
            "id": batch_id,
            "status": "validating",
            "submittedAt": now,
            "requests": len(tasks),
            "deadline": now + timedelta(seconds=self.settings.checkin_batch_deadline),
            "polls": 0,
            "collected": False,
        }
        run = (
            await self.store.checkin_runs.update(
                run["_id"], {"batch": run["batch"], "checks": run["checks"], "status": "waiting"}
            )
            or run
        )
        log.info("check-in batch submitted", extra={"runId": run["_id"], "batchId": batch_id, "requests": len(tasks)})

    async def _ask_synchronously_instead(self, run: dict[str, Any], exc: AIUnavailable) -> None:
        """The batch API said no (e.g. not on this account's plan): this run asks synchronously."""
        log.warning(
            "the batch API refused the check-in's batch; asking synchronously",
            extra={"runId": run["_id"], "error": str(exc)},
        )
        run["batch"] = {"id": None, "refused": True, "error": str(exc)[:500], "status": exc.details.get("status")}
        await self.store.checkin_runs.update(run["_id"], {"batch": run["batch"]})

    async def _enqueue_poll(self, run: dict[str, Any], poll: int, run_at: datetime | None = None) -> None:
        """Poll `poll` of the run's batch, at `run_at` or after the usual back-off (never past the deadline)."""
        now = self.clock()
        delay = min(self.poll_max, self.poll_first * 2**poll)
        run_at = run_at or min(now + timedelta(seconds=delay), run["batch"]["deadline"])
        await self.store.jobs.enqueue(
            POLL,
            {"runId": run["_id"], "poll": poll},
            now=now,
            unique_key=f"{POLL}:{run['_id']}:{poll}",
            run_at=run_at,
            max_attempts=self.settings.job_max_attempts,
        )

    async def _stop(self, state: BatchState) -> BatchState:
        """Past the deadline: cancel the batch (what it finished is still read), then look once more
        (Groq may answer `cancelling` for a while: the poll then comes back until CANCEL_GRACE)."""
        batches = self.provider.batches
        assert batches is not None
        try:
            await batches.cancel(state.id)
            return await batches.state(state.id)
        except AIUnavailable as exc:
            log.warning("cancelling a late check-in batch failed", extra={"batchId": state.id, "error": str(exc)})
            return state

    async def _collect(self, run: dict[str, Any], state: BatchState) -> None:
        """Store the batch's answers by `custom_id` (= collaboration id); the others are asked synchronously."""
        batches = self.provider.batches
        assert batches is not None
        sent = {c["collaborationId"] for c in run["checks"] if c.get("via") == "batch"}
        results = await batches.results(state, sent)
        now = self.clock()
        for index, check in enumerate(run["checks"]):
            if check.get("via") != "batch" or check.get("proposals") is not None:
                continue
            cid = check["collaborationId"]
            if cid in results.answers:
                self._keep_answer(check, results.answers[cid])
            else:
                why = results.errors.get(cid) or f"the batch ended {state.status} without answering it"
                _batch_error(check, now, f"batch {state.id}: {why}")
            await self.store.checkin_runs.set_check(run["_id"], index, check)
        run["batch"].update(
            status=state.status,
            requestCounts=state.request_counts,
            errors=state.errors,
            collected=True,
            collectedAt=now,
            answered=len(results.answers),
        )
        await self.store.checkin_runs.update(run["_id"], {"batch": run["batch"]})


def _batch_error(check: dict[str, Any], now: datetime, message: str) -> None:
    """A check the batch did not answer: an error of code `batch` (as the synchronous half's, in shape)."""
    check["errors"].append({"attempt": check["attempts"], "at": now, "code": "batch", "message": message[:1000]})


def _is_refusal(exc: AIUnavailable) -> bool:
    """A 4xx other than 429 from the batch API: asking again will not help, asking synchronously may."""
    status = exc.details.get("status")
    return isinstance(status, int) and 400 <= status < 500 and status not in (401, 429)
