"""The worker's commands for `tandem`: worker, checkin, jobs (docs/worker.md).

On the embedded store (MONGODB_URI unset) they refuse with a clear message and
exit 2: a separate process would only see an empty store of its own.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import IO, TYPE_CHECKING, Any, Awaitable, Callable

from backend.clock import iso, utcnow
from backend.settings import Settings
from backend.store.jobs import STATUSES

if TYPE_CHECKING:
    from backend.runtime import Runtime

EXIT_EMBEDDED = 2


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    w = sub.add_parser("worker", help="run the worker: job queue, scheduler, nightly AI check-in")
    w.add_argument(
        "--grace",
        type=float,
        default=None,
        help="seconds a running job may finish after SIGTERM (default: WORKER_GRACE, 8)",
    )
    c = sub.add_parser("checkin", help="enqueue today's AI check-in, or run one at once with --now")
    c.add_argument("--now", action="store_true", help="run a check-in in this process now, printing each batch")
    c.add_argument("--collaboration", action="append", metavar="ID", help="only this collaboration (repeatable)")
    j = sub.add_parser("jobs", help="inspect and retry jobs")
    jsub = j.add_subparsers(dest="jobs_command", required=True)
    ls = jsub.add_parser("list", help="list jobs, newest first")
    ls.add_argument("--status", choices=STATUSES)
    ls.add_argument("--kind")
    ls.add_argument("--limit", type=int, default=50)
    retry = jsub.add_parser("retry", help="run a dead or failed job again now")
    retry.add_argument("job_id")
    jsub.add_parser("workers", help="workers and their last heartbeat")


def _refuse_embedded(settings: Settings, command: str) -> bool:
    if settings.embedded:
        from worker.main import EMBEDDED_REFUSAL

        print(EMBEDDED_REFUSAL.format(command=command), file=sys.stderr)
        return True
    return False


def worker(args: argparse.Namespace, settings: Settings) -> int:
    if _refuse_embedded(settings, "worker"):
        return EXIT_EMBEDDED
    from worker.main import run_worker

    return asyncio.run(run_worker(settings, args.grace))


def checkin(args: argparse.Namespace, settings: Settings) -> int:
    if _refuse_embedded(settings, "checkin"):
        return EXIT_EMBEDDED
    return asyncio.run(_with_runtime(settings, lambda rt: checkin_command(rt, args.now, args.collaboration)))


def jobs(args: argparse.Namespace, settings: Settings) -> int:
    if _refuse_embedded(settings, "jobs"):
        return EXIT_EMBEDDED
    commands = {
        "list": lambda rt: jobs_list(rt, args.status, args.kind, args.limit),
        "retry": lambda rt: jobs_retry(rt, args.job_id),
        "workers": lambda rt: workers_list(rt),
    }
    return asyncio.run(_with_runtime(settings, commands[args.jobs_command]))


COMMANDS: dict[str, Callable[[argparse.Namespace, Settings], int]] = {
    "worker": worker,
    "checkin": checkin,
    "jobs": jobs,
}


async def _with_runtime(settings: Settings, work: Callable[[Runtime], Awaitable[int]]) -> int:
    from backend.ai import close_shared_provider
    from backend.runtime import Runtime

    runtime = await Runtime.open(settings)
    try:
        return await work(runtime)
    finally:
        await close_shared_provider(runtime)
        await runtime.close()


# -- the commands, on an open runtime (tests call these on the embedded store) ----------------------


async def checkin_command(
    runtime: Runtime,
    now: bool,
    collaboration_ids: list[str] | None,
    out: IO[str] = sys.stdout,
    err: IO[str] = sys.stderr,
) -> int:
    if collaboration_ids is not None and not now:
        print("--collaboration needs --now: the nightly check-in covers every active collaboration", file=err)
        return 1
    if collaboration_ids is not None:
        collaboration_ids, skipped = await _active_only(runtime, collaboration_ids)
        for cid, why in skipped:
            print(f"skipped {cid}: {why}", file=err)
        if not collaboration_ids:
            print("check-in not run: none of the collaborations asked for is active", file=err)
            return 1
    if not now:
        from worker.scheduler import Scheduler

        job, created = await Scheduler(runtime.store, runtime.settings).enqueue_checkin()
        state = "enqueued" if created else f"already enqueued ({job['status']})"
        print(f"check-in {job['uniqueKey']} {state}: job {job['_id']}", file=out)
        return 0
    from backend.ai import shared_provider
    from worker.checkin import Checkin

    def progress(check: dict[str, Any]) -> None:
        line = (
            f"collaboration {check['index'] + 1}/{check['of']} {check['collaborationId']}: {check['status']}, "
            f"{check['actionsRun']} actions run, {check['approvalsMade']} approvals, "
            f"{check['invalidProposals']} invalid"
        )
        print(line + (f" — {check['error']}" if check["error"] else ""), file=out, flush=True)

    checker = Checkin(runtime.store, runtime.engine, runtime.settings, shared_provider(runtime))
    result = await checker.run(trigger="manual", collaboration_ids=collaboration_ids, progress=progress)
    print(
        f"check-in {result['id']} {result['status']}: {result['collaborations']} collaborations, "
        f"{result['actionsRun']} actions run, {result['approvalsMade']} approvals made, "
        f"{result['invalidProposals']} invalid proposals, {result['tokens']['total']} tokens",
        file=out,
    )
    return 0 if result["status"] == "done" else 1


async def _active_only(runtime: Runtime, wanted: list[str]) -> tuple[list[str], list[tuple[str, str]]]:
    """The ids of active collaborations among `wanted` (in order, once each), and why the others are skipped."""
    active: list[str] = []
    skipped: list[tuple[str, str]] = []
    for cid in dict.fromkeys(wanted):
        doc = await runtime.store.collaborations.get(cid)
        if doc is None:
            skipped.append((cid, "no such collaboration"))
        elif doc.get("status") != "active":
            skipped.append((cid, f"it is {doc.get('status')}, not active"))
        else:
            active.append(cid)
    return active, skipped


async def jobs_list(
    runtime: Runtime, status: str | None, kind: str | None, limit: int, out: IO[str] = sys.stdout
) -> int:
    found = await runtime.store.jobs.list(status, kind, limit)
    print(f"{'id':32} {'kind':18} {'status':8} {'tries':>5} {'run at':24} {'key / last error'}", file=out)
    for job in found:
        error = (job.get("lastError") or {}).get("message", "")
        note = job.get("uniqueKey") or ""
        if error:
            note = f"{note} {error}".strip()
        print(
            f"{job['_id']:32} {job['kind']:18} {job['status']:8} {job['attempts']:>2}/{job['maxAttempts']:<2} "
            f"{iso(job['runAt']):24} {note[:100]}",
            file=out,
        )
    counts = await runtime.store.jobs.counts()
    print("totals: " + ", ".join(f"{k} {v}" for k, v in counts.items()), file=out)
    return 0


async def jobs_retry(runtime: Runtime, job_id: str, out: IO[str] = sys.stdout) -> int:
    job = await runtime.store.jobs.retry(job_id, utcnow())
    if job is None:
        current = await runtime.store.jobs.get(job_id)
        why = "no such job" if current is None else f"it is {current['status']}, not dead or failed"
        print(f"cannot retry {job_id}: {why}", file=sys.stderr)
        return 1
    print(f"job {job_id} queued again (attempt {job['attempts'] + 1} of at most {job['maxAttempts']})", file=out)
    return 0


async def workers_list(runtime: Runtime, out: IO[str] = sys.stdout) -> int:
    for w in await runtime.store.workers.list():
        current = w.get("currentJob") or {}
        print(
            json.dumps(
                {
                    "id": w["_id"],
                    "status": w.get("status"),
                    "lastSeen": iso(w["lastSeen"]),
                    "processed": w.get("processed"),
                    "failed": w.get("failed"),
                    "currentJob": current.get("id"),
                }
            ),
            file=out,
        )
    return 0
