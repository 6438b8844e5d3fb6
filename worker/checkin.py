"""The AI check-in: one model request per active collaboration, every proposal
validated and run through the action engine as the AI.

(Over 300 lines: the run's record and its summary, the last third, are read by
the API, the CLI and the logs alike and stay beside the code that writes them;
the batch half is worker/checkin_batch.py.)

Tenant isolation. A prompt carries ONE collaboration's content, never two, and
an answer can only act on the collaboration its prompt carried:
`screen_checkin` is given that collaboration's id, binds every accepted
proposal to it, and refuses one that names another ("targets another
collaboration", counted with its reason in the run). So text planted in one
collaboration can neither read nor change another through the model.

Requests are batched, tenants are not. With a provider that has a batch API
(Groq) and CHECKIN_MODE=batch, the check-in submits one batch job (one request
per collaboration, `custom_id` = its id) and polls it through the queue: that
half is worker/checkin_batch.py (`BatchCheckin`, a base of `Checkin`).
Otherwise (CHECKIN_MODE=sync, ollama, offline, a run started by hand) each
collaboration is asked on its own, CHECKIN_CONCURRENCY at a time.

Failure is per collaboration: a bad answer is counted invalid, an error (the
model, a date it cannot read, the store) fails that collaboration alone; the
others go on. A run with a failed collaboration fails its job, and the queue's
retry asks again only for what failed.

Idempotency under at-least-once delivery. The run (`checkin_runs`) keeps each
collaboration's answer (the screened proposals) before any of them runs, each
proposal's outcome as soon as it is known, and the batch's id (after a
`submitting` mark, so an interrupted submission is found again by its tag, not
repeated). A re-delivered job asks only collaborations with no answer, runs
only proposals with no outcome, and never submits a second batch. (A crash
between running a proposal and storing its outcome can still repeat that one.)

A protected proposal must apply to the collaboration as it is now before it
becomes an approval, and one that matches an approval still pending (same
action and payload, reason aside) is skipped. A reminder (a sendMessage naming
the activities it `reminds` of) is posted at most once per activity per day
(the day in CHECKIN_TZ): it claims those activities in `checkin_reminders`
first, and one already claimed by another run is skipped (`remindersSkipped`).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any, Callable, Protocol
from zoneinfo import ZoneInfo

from backend.ai import prompt
from backend.ai.proposals import KINDS, screen_checkin
from backend.ai.provider import Completion, Provider, Task
from backend.clock import utcnow
from backend.domain.models import Actor
from backend.engine import Applied, NeedsApproval
from backend.errors import TandemError
from backend.ids import new_id
from worker.checkin_batch import CANCEL_GRACE, BatchCheckin
from worker.checkin_batch import POLL as POLL  # re-exported: the tests import the poll job's kind from here

if TYPE_CHECKING:
    from backend.settings import Settings
    from backend.store.store import Store

log = logging.getLogger("tandem.checkin")


class RunsActions(Protocol):
    """What the check-in needs of the action engine (backend/engine.py `ActionEngine`; tests wrap it)."""

    async def run(
        self, name: str, actor: Actor, collaboration_id: str | None, payload: Any, *, reason: str | None = None
    ) -> Applied | NeedsApproval: ...


Progress = Callable[[dict[str, Any]], None]
PAGE = 500


class CheckinFailed(Exception):
    """Some collaborations failed; the job is retried and asks only those again."""

    def __init__(self, summary: dict[str, Any]):
        self.summary = summary
        failed = summary["collaborationsFailed"]
        super().__init__(f"{len(failed)} of {summary['collaborations']} collaborations failed: {summary['lastErrors']}")


def run_id_for(key: str) -> str:
    """The run of a scheduled job: one per unique key (`checkin:2026-11-23` → `run_checkin_2026-11-23`)."""
    return "run_" + key.replace(":", "_")


def local_day(now: datetime, tz: str) -> str:
    """The date of `now` in CHECKIN_TZ: the check-in's day."""
    return now.astimezone(ZoneInfo(tz)).date().isoformat()


class Checkin(BatchCheckin):
    def __init__(
        self,
        store: Store,
        engine: RunsActions,
        settings: Settings,
        provider: Provider,
        clock: Callable[[], datetime] = utcnow,
        *,
        poll_first: float = 30.0,
        poll_max: float = 600.0,
        cancel_grace: float = CANCEL_GRACE,
    ):
        self.store = store
        self.engine = engine
        self.settings = settings
        self.provider = provider
        self.clock = clock
        self.poll_first = poll_first  # seconds before the first poll of a batch; doubles up to poll_max
        self.poll_max = poll_max
        self.cancel_grace = cancel_grace  # seconds past the deadline a `cancelling` batch is waited for

    # -- entry points

    async def run(
        self,
        *,
        key: str | None = None,
        day: str | None = None,
        trigger: str = "manual",
        collaboration_ids: list[str] | None = None,
        progress: Progress | None = None,
    ) -> dict[str, Any]:
        """Run (or resume) a check-in synchronously; returns its summary. With `key`, one run per key ever."""
        run = await self._open(key, day, trigger, collaboration_ids, "sync")
        if run["status"] == "done" or "checks" not in run:
            return summary(run)
        await self._check_all(run, progress)
        return await self._finish(run)

    async def run_job(self, job: dict[str, Any]) -> dict[str, Any]:
        """The queue's `checkin` handler: in batch mode submits the batch and enqueues its first poll;
        else runs the check-in. Raises CheckinFailed so the job retries the failed collaborations."""
        payload = job.get("payload") or {}
        key = job.get("uniqueKey") or f"checkin:{payload.get('day') or job['_id']}"
        args = {
            "key": key,
            "day": payload.get("day"),
            "trigger": payload.get("trigger", "schedule"),
            "collaboration_ids": payload.get("collaborationIds"),
        }
        if not self._batching():
            return _job_result(await self.run(**args))
        run = await self._open(args["key"], args["day"], args["trigger"], args["collaboration_ids"], "batch")
        if run["status"] == "done" or "checks" not in run:
            return _job_result(summary(run))
        return await self._batch_job(run)

    def _batching(self) -> bool:
        return self.settings.checkin_mode == "batch" and getattr(self.provider, "batches", None) is not None

    # -- the run

    async def _open(
        self, key: str | None, day: str | None, trigger: str, collaboration_ids: list[str] | None, mode: str
    ) -> dict[str, Any]:
        now = self.clock()
        run_id = run_id_for(key) if key else new_id("run")
        existing = await self.store.checkin_runs.get(run_id)
        if existing is not None:
            if existing["status"] != "done":
                existing = await self._updated(run_id, {"resumedAt": now})
            return existing
        ids = await self._collaborations(collaboration_ids)
        run = {
            "_id": run_id,
            "key": key,
            "day": day or local_day(now, self.settings.checkin_tz),
            "trigger": trigger,
            "status": "running",
            "mode": mode,
            "provider": self.provider.name,
            "model": self.provider.model,
            "startedAt": now,
            "finishedAt": None,
            "collaborations": len(ids),
            "checks": [
                {"collaborationId": cid, "status": "pending", "attempts": 0, "requests": 0, "errors": []} for cid in ids
            ],
            "batch": None,
            **_totals([]),
        }
        run, _ = await self.store.checkin_runs.open(run)
        return run

    async def _collaborations(self, wanted: list[str] | None) -> list[str]:
        if wanted is not None:
            docs = [await self.store.collaborations.get(cid) for cid in dict.fromkeys(wanted)]
            return [d["_id"] for d in docs if d is not None and d.get("status") == "active"]
        ids: list[str] = []
        after = None
        while page := await self.store.collaborations.active(after, limit=PAGE):
            ids += [d["_id"] for d in page]
            after = page[-1]["_id"]
            if len(page) < PAGE:
                break
        return ids

    async def _task(self, run: dict[str, Any], cid: str) -> Task | None:
        """The prompt about one collaboration (None when it is gone or archived)."""
        doc = await self.store.collaborations.get(cid)
        if doc is None or doc.get("status") != "active":
            return None
        reminded = await self.store.reminders.reminded(run["day"], cid)
        return prompt.checkin_task(doc, self.clock(), reminded)

    async def _updated(self, run_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        """The run after `changes`. It was read before, and runs are never deleted (retention
        aside), so a run gone meanwhile is a fault: the job fails and is retried."""
        run = await self.store.checkin_runs.update(run_id, changes)
        if run is None:
            raise LookupError(f"check-in run {run_id} is gone")
        return run

    async def _finish(self, run: dict[str, Any]) -> dict[str, Any]:
        failed = any(c["status"] != "done" for c in run["checks"])
        run = await self._updated(
            run["_id"], {"status": "failed" if failed else "done", "finishedAt": self.clock(), **_totals(run["checks"])}
        )
        result = summary(run)
        log.info(
            "check-in run finished",
            extra={
                k: result[k]
                for k in (
                    "id",
                    "status",
                    "collaborations",
                    "requests",
                    "actionsRun",
                    "approvalsMade",
                    "invalidProposals",
                    "remindersSkipped",
                )
            },
        )
        return result

    # -- one collaboration

    async def _check_all(self, run: dict[str, Any], progress: Progress | None) -> None:
        """Every collaboration not done yet, CHECKIN_CONCURRENCY at a time; each failure stays its own."""
        gate = asyncio.Semaphore(self.settings.checkin_concurrency)
        total = len(run["checks"])

        async def one(index: int, check: dict[str, Any]) -> None:
            async with gate:
                if check["status"] != "done":
                    await self._check(run, index, check)
                if progress is not None:
                    progress(_check_summary(index, check, total))

        await asyncio.gather(*(one(i, c) for i, c in enumerate(run["checks"])))

    async def _check(self, run: dict[str, Any], index: int, check: dict[str, Any]) -> None:
        check["attempts"] += 1
        check["status"] = "running"
        try:
            if check.get("proposals") is None:
                await self._ask(run, index, check)
            for proposal in check["proposals"]:
                if proposal.get("outcome") is None:
                    proposal["outcome"] = await self._act_on_proposal(run, proposal)
                    await self.store.checkin_runs.set_check(run["_id"], index, check)
            check["status"] = "done"
        except Exception as exc:  # noqa: BLE001 - one collaboration's failure is recorded; the others go on
            check["status"] = "failed"
            _note_error(check, exc, self.clock())
            log.warning(
                "check-in of a collaboration failed",
                extra={"runId": run["_id"], "collaborationId": check["collaborationId"], "error": str(exc)[:500]},
            )
        await self.store.checkin_runs.set_check(run["_id"], index, check)

    async def _ask(self, run: dict[str, Any], index: int, check: dict[str, Any]) -> None:
        task = await self._task(run, check["collaborationId"])
        if task is None:
            _answer(check, None, self.settings.max_message_chars)
        else:
            check["requests"] += 1
            check["via"] = "sync"
            _answer(check, await self.provider.complete(task), self.settings.max_message_chars)
        await self.store.checkin_runs.set_check(run["_id"], index, check)  # the answer is kept: never asked twice

    async def _act_on_proposal(self, run: dict[str, Any], proposal: dict[str, Any]) -> dict[str, Any]:
        cid, action, payload = proposal["collaborationId"], proposal["action"], proposal["payload"]
        reminds = proposal.get("reminds") or []
        if reminds:
            taken = await self.store.reminders.claim(run["day"], cid, reminds, run["_id"], self.clock())
            if taken:
                return {"status": "skipped", "reason": "already reminded today", "activityIds": taken}
        pending = await self._pending_twin(cid, action, payload)
        if pending is not None:
            return {"status": "duplicate", "approvalId": pending}
        try:
            outcome = await self.engine.run(action, Actor.ai(run["_id"]), cid, payload, reason=proposal["reason"])
        except TandemError as exc:
            if reminds:
                await self.store.reminders.release(run["day"], cid, reminds, run["_id"])
            return {"status": "rejected", "code": exc.code, "message": exc.message[:500]}
        if isinstance(outcome, NeedsApproval):
            return {"status": "approval", "approvalId": outcome.approval["_id"]}
        assert isinstance(outcome, Applied)
        return {"status": "applied", "version": outcome.version, "result": outcome.result}

    async def _pending_twin(self, cid: str, action: str, payload: Any) -> str | None:
        if not isinstance(payload, dict):
            return None
        same = {k: v for k, v in payload.items() if k != "reason"}
        for approval in await self.store.approvals.for_collaborations([cid], "pending"):
            theirs = {k: v for k, v in approval.get("payload", {}).items() if k != "reason"}
            if approval["action"] == action and theirs == same:
                twin: str = approval["_id"]
                return twin
        return None

    # -- what the batch half (worker/checkin_batch.py) uses of its host

    async def _finish_job(self, run: dict[str, Any]) -> dict[str, Any]:
        return _job_result(await self._finish(run))

    def _keep_answer(self, check: dict[str, Any], completion: Completion | None) -> None:
        _answer(check, completion, self.settings.max_message_chars)

    @staticmethod
    def _record_error(check: dict[str, Any], exc: BaseException, now: datetime) -> None:
        _note_error(check, exc, now)


# -- answers, summaries ------------------------------------------------------------------------


def _answer(check: dict[str, Any], completion: Completion | None, max_message_chars: int) -> None:
    """Keep a screened answer on the check (None: nothing to ask, the collaboration is gone)."""
    if completion is None:
        check.update(proposals=[], invalid=dict.fromkeys(KINDS, 0), problems=[], tokens=_tokens())
        return
    screened = screen_checkin(completion.text, check["collaborationId"], max_message_chars)
    check.update(
        proposals=[
            {
                "collaborationId": p.collaborationId,
                "action": p.action,
                "payload": p.payload,
                "reason": p.reason,
                "reminds": p.reminds,
                "outcome": None,
            }
            for p in screened.accepted
        ],
        invalid=screened.invalid,
        problems=screened.problems,
        tokens=_tokens(completion.usage.prompt, completion.usage.completion),
    )


def _note_error(check: dict[str, Any], exc: BaseException, now: datetime) -> None:
    check["errors"].append(
        {
            "attempt": check["attempts"],
            "at": now,
            "code": getattr(exc, "code", type(exc).__name__),
            "message": str(exc)[:1000],
        }
    )


def _job_result(result: dict[str, Any]) -> dict[str, Any]:
    if result["status"] != "done":
        raise CheckinFailed(result)
    return {"runId": result["id"], "actionsRun": result["actionsRun"], "approvalsMade": result["approvalsMade"]}


def _tokens(prompt_tokens: int = 0, completion_tokens: int = 0) -> dict[str, int]:
    return {"prompt": prompt_tokens, "completion": completion_tokens, "total": prompt_tokens + completion_tokens}


OUTCOMES = ("applied", "approval", "rejected", "duplicate", "skipped")


def _outcomes(check: dict[str, Any]) -> dict[str, int]:
    counts = dict.fromkeys(OUTCOMES, 0)
    for proposal in check.get("proposals") or []:
        status = (proposal.get("outcome") or {}).get("status")
        if status in counts:
            counts[status] += 1
    return counts


def _totals(checks: list[dict[str, Any]]) -> dict[str, Any]:
    invalid = dict.fromkeys((*KINDS, "rejected"), 0)
    tokens = _tokens()
    counts = dict.fromkeys(OUTCOMES, 0)
    requests = 0
    errors: list[dict[str, Any]] = []
    problems: list[dict[str, Any]] = []
    for check in checks:
        for status, n in _outcomes(check).items():
            counts[status] += n
        requests += check.get("requests", 0)
        for kind, n in (check.get("invalid") or {}).items():
            invalid[kind] = invalid.get(kind, 0) + n
        for key in tokens:
            tokens[key] += (check.get("tokens") or {}).get(key, 0)
        errors += [{"collaborationId": check["collaborationId"], **e} for e in check.get("errors", [])]
        problems += [{"collaborationId": check["collaborationId"], **p} for p in check.get("problems") or []]
    invalid["rejected"] = counts["rejected"]
    return {
        "requests": requests,
        "actionsRun": counts["applied"],
        "approvalsMade": counts["approval"],
        "duplicatesSkipped": counts["duplicate"],
        "remindersSkipped": counts["skipped"],
        "invalidProposals": sum(invalid.values()),
        "invalid": invalid,
        "problems": problems[:50],
        "tokens": tokens,
        "errors": errors[-50:],
    }


def _check_summary(index: int, check: dict[str, Any], count: int) -> dict[str, Any]:
    totals = _totals([check])
    return {
        "index": index,
        "of": count,
        "collaborationId": check["collaborationId"],
        "status": check["status"],
        "attempts": check["attempts"],
        "actionsRun": totals["actionsRun"],
        "approvalsMade": totals["approvalsMade"],
        "invalidProposals": totals["invalidProposals"],
        "remindersSkipped": totals["remindersSkipped"],
        "error": check["errors"][-1]["message"] if check["status"] == "failed" and check["errors"] else None,
    }


def _batch_summary(batch: dict[str, Any] | None) -> dict[str, Any] | None:
    if not batch or not batch.get("id"):
        return None
    return {
        k: batch.get(k)
        for k in ("id", "status", "requests", "requestCounts", "submittedAt", "deadline", "polls", "collected")
    }


def summary(run: dict[str, Any]) -> dict[str, Any]:
    """What a run did, for the API, the CLI and logs."""
    checks = run.get("checks") or []
    failed = [c for c in checks if c["status"] == "failed"]
    totals = _totals(checks) if checks else {k: run.get(k) for k in _totals([])}
    return {
        "id": run["_id"],
        "key": run.get("key"),
        "day": run.get("day"),
        "trigger": run.get("trigger"),
        "status": run["status"],
        "mode": run.get("mode"),
        "provider": run.get("provider"),
        "model": run.get("model"),
        "startedAt": run.get("startedAt"),
        "finishedAt": run.get("finishedAt"),
        "collaborations": run.get("collaborations", len(checks)),
        "batch": _batch_summary(run.get("batch")),
        "collaborationsFailed": [{"collaborationId": c["collaborationId"], "attempts": c["attempts"]} for c in failed],
        "lastErrors": [c["errors"][-1]["message"] for c in failed if c.get("errors")][:5],
        **totals,
    }
