"""Where every action a request runs is rate limited and counted, whichever route runs it.

`run_action` (`POST /api/actions/{name}`, and the AI chat's question) and `decide` (approving or
rejecting an approval) take the caller's action tokens (`runtime.limits`, backend/api/ratelimit.py)
before anything runs, and label `tandem_actions_total` one way: {action, outcome} where outcome is
`applied`, `approval` (it waits for an owner) or the error code; an action not in the catalogue is
counted as `unknown`. Rejecting runs no action: it takes a token and counts nothing.
"""

from __future__ import annotations

from typing import Any

from backend.api.ratelimit import Limits
from backend.auth.tokens import Principal
from backend.deciding import ApprovalService
from backend.domain.catalogue import CATALOGUE
from backend.domain.models import Actor
from backend.engine import Applied, NeedsApproval
from backend.errors import TandemError
from backend.metrics import Metrics
from backend.runtime import Runtime
from backend.store.idempotency import Claim


def limits(runtime: Runtime) -> Limits:
    """The process's limits (create_app's lifespan makes them)."""
    if runtime.limits is None:
        raise RuntimeError("runtime.limits is set by create_app's lifespan; this runtime has not started the API")
    return runtime.limits


def count(metrics: Metrics, action: str, outcome: str) -> None:
    metrics.count_action(action if action in CATALOGUE else "unknown", outcome)


async def run_action(
    runtime: Runtime,
    who: Principal,
    name: str,
    collaboration_id: Any,
    payload: Any,
    expected_version: Any,
    idempotency: Claim | None = None,
) -> Applied | NeedsApproval:
    limits(runtime).action(who.id, name)
    try:
        outcome = await runtime.engine.run(
            name,
            Actor.user(who.id),
            collaboration_id,
            payload,
            expected_version=expected_version,
            actor_email=who.email,
            idempotency=idempotency,
        )
    except TandemError as exc:
        count(runtime.metrics, name, exc.code)
        raise
    count(runtime.metrics, name, "approval" if isinstance(outcome, NeedsApproval) else "applied")
    return outcome


async def decide(
    runtime: Runtime, who: Principal, approval_id: str, *, approve: bool, idempotency: Claim | None = None
) -> dict[str, Any]:
    """Approve (the action runs, and is counted by its outcome) or reject an approval as `who`."""
    limits(runtime).action(who.id)
    service = ApprovalService(runtime.store, runtime.engine)
    if not approve:
        return await service.reject(approval_id, who.id, idempotency)
    decided = await service.approve(approval_id, who.id, idempotency)
    count(
        runtime.metrics,
        decided["action"],
        "applied" if decided["status"] == "approved" else (decided.get("error") or {}).get("code", "failed"),
    )
    return decided
