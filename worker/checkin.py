"""The AI check-in: batches of active collaborations, one AI call per batch,
every proposal validated and run through the action engine as the AI.

A run is recorded in `checkin_runs` with its batches. A batch is asked once:
its answer (the validated proposals) is stored before any of them runs, and
each proposal's outcome is stored as soon as it is known. So a retry — the
queue re-delivering the job after a failure, a crash or a lost lease — asks
again only for batches that have no answer yet, runs only proposals that have
no outcome yet, and never repeats a successful batch. (A crash between running
a proposal and storing its outcome can still repeat that one proposal: at-least-once.)

A protected proposal must apply to the collaboration as it is now before it
becomes an approval, and one that matches an approval still pending (same
action and payload, reason aside) is skipped, so nightly runs do not pile up
the same approval.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, Callable

from backend.ai import prompt
from backend.ai.proposals import KINDS, screen_checkin
from backend.ai.provider import Provider
from backend.clock import utcnow
from backend.domain.models import Actor
from backend.engine import Applied, NeedsApproval
from backend.errors import TandemError
from backend.ids import new_id

log = logging.getLogger("tandem.checkin")

Progress = Callable[[dict[str, Any]], None]
PAGE = 500


class BatchesFailed(Exception):
    """Some batches failed; the job is retried and resumes them (the others are not run again)."""

    def __init__(self, summary: dict[str, Any]):
        self.summary = summary
        failed = [b["index"] for b in summary["batchesFailed"]]
        super().__init__(f"{len(failed)} of {summary['batchCount']} batches failed: {summary['lastErrors']}")


def run_id_for(key: str) -> str:
    """The run of a scheduled job: one per unique key (`checkin:2026-11-23` → `run_checkin_2026-11-23`)."""
    return "run_" + key.replace(":", "_")


class Checkin:
    def __init__(self, store: Any, engine: Any, settings: Any, provider: Provider,
                 clock: Callable[[], datetime] = utcnow):
        self.store = store
        self.engine = engine
        self.settings = settings
        self.provider = provider
        self.clock = clock

    async def run(self, *, key: str | None = None, day: str | None = None, trigger: str = "manual",
                  collaboration_ids: list[str] | None = None, progress: Progress | None = None) -> dict[str, Any]:
        """Run (or resume) a check-in; returns its summary. With `key`, one run per key ever."""
        run = await self._open(key, day, trigger, collaboration_ids)
        if run["status"] == "done":
            return summary(run)
        for batch in run["batches"]:
            if batch["status"] != "done":
                await self._batch(run["_id"], batch)
            if progress is not None:
                progress(_batch_summary(batch, len(run["batches"])))
        failed = any(b["status"] != "done" for b in run["batches"])
        run = await self.store.checkin_runs.update(run["_id"], {
            "status": "failed" if failed else "done", "finishedAt": self.clock(), **_totals(run["batches"])})
        result = summary(run)
        log.info("check-in run finished", extra={k: result[k] for k in (
            "id", "status", "collaborations", "actionsRun", "approvalsMade", "invalidProposals")})
        return result

    async def run_job(self, job: dict[str, Any]) -> dict[str, Any]:
        """The queue's `checkin` handler: raises BatchesFailed so the job retries the failed batches."""
        payload = job.get("payload") or {}
        key = job.get("uniqueKey") or f"checkin:{payload.get('day') or job['_id']}"
        result = await self.run(key=key, day=payload.get("day"), trigger=payload.get("trigger", "schedule"),
                                collaboration_ids=payload.get("collaborationIds"))
        if result["status"] != "done":
            raise BatchesFailed(result)
        return {"runId": result["id"], "actionsRun": result["actionsRun"], "approvalsMade": result["approvalsMade"]}

    # -- the run and its batches

    async def _open(self, key: str | None, day: str | None, trigger: str,
                    collaboration_ids: list[str] | None) -> dict[str, Any]:
        now = self.clock()
        run_id = run_id_for(key) if key else new_id("run")
        existing = await self.store.checkin_runs.get(run_id)
        if existing is not None:
            if existing["status"] != "done":
                existing = await self.store.checkin_runs.update(run_id, {"status": "running", "resumedAt": now})
            return existing
        ids = await self._collaborations(collaboration_ids)
        size = self.settings.checkin_batch_size
        run = {
            "_id": run_id, "key": key, "day": day or now.date().isoformat(), "trigger": trigger,
            "status": "running", "provider": self.provider.name, "model": self.provider.model,
            "startedAt": now, "finishedAt": None, "collaborations": len(ids),
            "batches": [{"index": i, "collaborationIds": ids[start:start + size], "status": "pending",
                         "attempts": 0, "errors": []} for i, start in enumerate(range(0, len(ids), size))],
            **_totals([]),
        }
        run, _ = await self.store.checkin_runs.open(run)
        return run

    async def _collaborations(self, wanted: list[str] | None) -> list[str]:
        if wanted is not None:
            docs = [await self.store.collaborations.get(cid) for cid in wanted]
            return [d["_id"] for d in docs if d is not None and d.get("status") == "active"]
        ids: list[str] = []
        after = None
        while page := await self.store.collaborations.active(after, limit=PAGE):
            ids += [d["_id"] for d in page]
            after = page[-1]["_id"]
            if len(page) < PAGE:
                break
        return ids

    async def _batch(self, run_id: str, batch: dict[str, Any]) -> None:
        batch["attempts"] += 1
        batch["status"] = "running"
        try:
            if batch.get("proposals") is None:
                await self._ask(run_id, batch)
            for proposal in batch["proposals"]:
                if proposal.get("outcome") is None:
                    proposal["outcome"] = await self._carry_out(run_id, proposal)
                    await self.store.checkin_runs.set_batch(run_id, batch["index"], batch)
            batch["status"] = "done"
        except Exception as exc:  # noqa: BLE001 - a failed batch is recorded; the others still run
            batch["status"] = "failed"
            batch["errors"].append({"attempt": batch["attempts"], "at": self.clock(),
                                    "code": getattr(exc, "code", type(exc).__name__), "message": str(exc)[:1000]})
            log.warning("check-in batch failed", extra={"runId": run_id, "batch": batch["index"], "error": str(exc)})
        await self.store.checkin_runs.set_batch(run_id, batch["index"], batch)

    async def _ask(self, run_id: str, batch: dict[str, Any]) -> None:
        docs = [d for d in [await self.store.collaborations.get(cid) for cid in batch["collaborationIds"]]
                if d is not None and d.get("status") == "active"]
        if not docs:
            batch.update(proposals=[], invalid=dict.fromkeys(KINDS, 0), problems=[], tokens=_tokens())
            return
        completion = await self.provider.complete(prompt.checkin_task(docs, self.clock()))
        screened = screen_checkin(completion.text, [d["_id"] for d in docs], self.settings.max_message_chars)
        batch.update(
            proposals=[{"collaborationId": p.collaborationId, "action": p.action, "payload": p.payload,
                        "reason": p.reason, "outcome": None} for p in screened.accepted],
            invalid=screened.invalid, problems=screened.problems,
            tokens=_tokens(completion.usage.prompt, completion.usage.completion))
        await self.store.checkin_runs.set_batch(run_id, batch["index"], batch)  # the answer is kept: never asked twice

    async def _carry_out(self, run_id: str, proposal: dict[str, Any]) -> dict[str, Any]:
        cid, action, payload = proposal["collaborationId"], proposal["action"], proposal["payload"]
        pending = await self._pending_twin(cid, action, payload)
        if pending is not None:
            return {"status": "duplicate", "approvalId": pending}
        try:
            outcome = await self.engine.run(action, Actor.ai(run_id), cid, payload, reason=proposal["reason"])
        except TandemError as exc:
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
                return approval["_id"]
        return None


# -- summaries ---------------------------------------------------------------------------------

def _tokens(prompt_tokens: int = 0, completion_tokens: int = 0) -> dict[str, int]:
    return {"prompt": prompt_tokens, "completion": completion_tokens, "total": prompt_tokens + completion_tokens}


def _outcomes(batch: dict[str, Any]) -> dict[str, int]:
    counts = {"applied": 0, "approval": 0, "rejected": 0, "duplicate": 0}
    for proposal in batch.get("proposals") or []:
        status = (proposal.get("outcome") or {}).get("status")
        if status in counts:
            counts[status] += 1
    return counts


def _totals(batches: list[dict[str, Any]]) -> dict[str, Any]:
    invalid = dict.fromkeys((*KINDS, "rejected"), 0)
    tokens = _tokens()
    applied = approvals = duplicates = 0
    errors = []
    for batch in batches:
        outcomes = _outcomes(batch)
        applied += outcomes["applied"]
        approvals += outcomes["approval"]
        duplicates += outcomes["duplicate"]
        invalid["rejected"] += outcomes["rejected"]
        for kind, n in (batch.get("invalid") or {}).items():
            invalid[kind] = invalid.get(kind, 0) + n
        for key in tokens:
            tokens[key] += (batch.get("tokens") or {}).get(key, 0)
        errors += [{"batch": batch["index"], **e} for e in batch.get("errors", [])]
    return {"actionsRun": applied, "approvalsMade": approvals, "duplicatesSkipped": duplicates,
            "invalidProposals": sum(invalid.values()), "invalid": invalid, "tokens": tokens, "errors": errors}


def _batch_summary(batch: dict[str, Any], count: int) -> dict[str, Any]:
    totals = _totals([batch])
    return {"index": batch["index"], "of": count, "status": batch["status"], "attempts": batch["attempts"],
            "collaborations": len(batch["collaborationIds"]), "actionsRun": totals["actionsRun"],
            "approvalsMade": totals["approvalsMade"], "invalidProposals": totals["invalidProposals"],
            "error": batch["errors"][-1]["message"] if batch["status"] == "failed" and batch["errors"] else None}


def summary(run: dict[str, Any]) -> dict[str, Any]:
    """What a run did, for the API, the CLI and logs."""
    totals = _totals(run["batches"])
    failed = [b for b in run["batches"] if b["status"] != "done"]
    return {"id": run["_id"], "key": run.get("key"), "day": run.get("day"), "trigger": run.get("trigger"),
            "status": run["status"], "provider": run.get("provider"), "model": run.get("model"),
            "startedAt": run.get("startedAt"), "finishedAt": run.get("finishedAt"),
            "collaborations": run["collaborations"], "batchCount": len(run["batches"]),
            "batchesFailed": [{"index": b["index"], "attempts": b["attempts"]} for b in failed],
            "lastErrors": [b["errors"][-1]["message"] for b in failed if b.get("errors")][:5],
            **totals}
