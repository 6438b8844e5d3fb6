"""Approvals: owners decide what the AI (or a rule) proposed.

Deciding reads as a chain of checks: the approval exists → the caller is a
member of its collaboration (else not_found: existence does not leak) → an
owner (else forbidden) → still pending (else invalid_transition) → not expired (else it
is marked expired and refused). Approving then claims the decision atomically
(pending and not expired → approved: one that expires between the check and the
claim is refused and marked expired too), so the action runs at most once however many owners click
(with an Idempotency-Key, the claim also stores the key's answer: the approval, approved),
and runs it through the engine as its proposer with `approval_id`; if the action
is no longer valid the approval ends `failed` with the error. If the process
stops between the claim and recording the outcome, the hourly job
(`recover_interrupted`) finishes it: the audit entry carries the approval id,
so it knows whether the action ran.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Callable

import msgspec

from backend.clock import utcnow
from backend.domain.models import Actor
from backend.engine import ActionEngine, Applied
from backend.errors import AlreadyDecided, Forbidden, Internal, NotFound, TandemError
from backend.store.failures import AlreadyApplied
from backend.store.idempotency import Claim

if TYPE_CHECKING:
    from backend.store.store import Store

STATUSES = ("pending", "approved", "rejected", "expired", "failed")
RECOVER_AFTER = timedelta(minutes=10)  # an action takes milliseconds: one still unrecorded after this was cut short
RECOVERY_LEASE = timedelta(minutes=10)  # how long one recovery holds an approval before another may take it


class ApprovalService:
    def __init__(self, store: Store, engine: ActionEngine, clock: Callable[[], datetime] = utcnow):
        self.store = store
        self.engine = engine
        self.clock = clock

    async def for_owner(self, user_id: str, status: str | None = None) -> list[dict[str, Any]]:
        """Approvals of the collaborations `user_id` owns, newest first."""
        owned = await self.store.collaborations.owned_by(user_id)
        if not owned:
            return []
        return await self.store.approvals.for_collaborations(owned, status)

    async def approve(self, approval_id: str, user_id: str, idempotency: Claim | None = None) -> dict[str, Any]:
        """Approve and carry out. `idempotency` (an Idempotency-Key's Claim, store/idempotency.py):
        the decision stores the answer rendered from the approval as approved (being carried
        out), in the same atomic write, so the key is answered from then on however the rest goes
        (a request slower than its lease, a process that stops); recording the outcome then
        updates that answer to the approval with its outcome (store/approvals.py record_outcome)."""
        claimed = await self._decide(approval_id, user_id, "approved", idempotency)
        return await self._run_approved_action(claimed, idempotency=idempotency)

    async def _run_approved_action(
        self, claimed: dict[str, Any], recovering: bool = False, idempotency: Claim | None = None
    ) -> dict[str, Any]:
        try:
            outcome = await self.engine.run(
                claimed["action"],
                msgspec.convert(claimed["proposedBy"], Actor),
                claimed["collaborationId"],
                claimed["payload"],
                approval_id=claimed["_id"],
                reason=claimed.get("reason"),
            )
        except AlreadyApplied as already:  # carried out before (a recovery racing a slow approve)
            return await self._record(claimed, _ran_before(already.entry), recovering, idempotency)
        except TandemError as exc:
            return await self._failed(claimed, exc, recovering, idempotency)
        except Exception:
            entry = await self.store.audit.for_approval(claimed["_id"])
            if entry is not None:  # it failed after the action committed (its follow-ups): it ran
                await self._record(claimed, _ran_before(entry), recovering, idempotency)
            else:
                await self._failed(claimed, Internal("The action failed unexpectedly."), recovering, idempotency)
            raise
        assert isinstance(outcome, Applied)
        result = {"collaborationId": outcome.collaborationId, "version": outcome.version, "result": outcome.result}
        return await self._record(claimed, result, recovering, idempotency)

    async def _record(
        self, approval: dict[str, Any], result: dict[str, Any], recovering: bool, idempotency: Claim | None = None
    ) -> dict[str, Any]:
        changes: dict[str, Any] = {"result": result}
        if recovering:
            changes["recoveredAt"] = self.clock()
        return await self._store_outcome(approval, changes, idempotency)

    async def _store_outcome(
        self, approval: dict[str, Any], changes: dict[str, Any], idempotency: Claim | None = None
    ) -> dict[str, Any]:
        """The first outcome stored stays: a second carrying-out (which found the action applied,
        or refused now that it is) does not overwrite it; the answer is the approval with the
        outcome stored, whichever stored it."""
        extra = {"idempotency": idempotency} if idempotency is not None else {}
        stored = await self.store.approvals.record_outcome(approval["_id"], changes, **extra)
        return stored or await self.store.approvals.get(approval["_id"]) or approval

    async def recover_interrupted(self, older_than: timedelta = RECOVER_AFTER) -> int:
        """Finish approvals whose carrying-out was cut short (the process stopped between claiming
        the decision and recording its outcome). The audit says whether the action ran: if it did,
        record that; if not, carry it out now, with the same checks as approve. Each is leased
        while it is recovered and marked `recoveredAt` with its outcome. Returns how many."""
        now, recovered = self.clock(), 0
        while approval := await self.store.approvals.claim_interrupted(now - older_than, now, now + RECOVERY_LEASE):
            recovered += 1
            entry = await self.store.audit.for_approval(approval["_id"])
            if entry is not None:
                await self._record(approval, _ran_before(entry), recovering=True)
                continue
            await self._run_approved_action(approval, recovering=True)
        return recovered

    async def reject(self, approval_id: str, user_id: str, idempotency: Claim | None = None) -> dict[str, Any]:
        """Reject; with `idempotency`, the answer rendered from the rejected approval is written with it."""
        return await self._decide(approval_id, user_id, "rejected", idempotency)

    async def _decide(self, approval_id: str, user_id: str, status: str, idempotency: Claim | None) -> dict[str, Any]:
        """Move a pending, unexpired approval the user may decide to `status` in one atomic write
        (with `idempotency`'s answer); the approval as decided, or why it could not be."""
        approval = await self._decidable(approval_id, user_id)
        now = self.clock()
        decided = await self.store.approvals.transition(
            approval["_id"],
            "pending",
            {"status": status, "decidedBy": user_id, "decidedAt": now},
            unexpired_at=now,
            idempotency=idempotency,
        )
        if decided is None:
            raise await self._not_claimed(approval["_id"], now)
        return decided

    async def expire_due(self) -> int:
        """Mark every pending approval past its `expiresAt` as expired; returns how many."""
        now, expired = self.clock(), 0
        while due := await self.store.approvals.due_to_expire(now):
            for approval in due:
                if await self.store.approvals.transition(
                    approval["_id"], "pending", {"status": "expired", "decidedAt": now}
                ):
                    expired += 1
        return expired

    # -- the chain of checks

    async def _decidable(self, approval_id: str, user_id: str) -> dict[str, Any]:
        approval = await self.store.approvals.get(approval_id)
        if approval is None:
            raise NotFound("No such approval.", {"approvalId": approval_id})
        _owner(await self.store.collaborations.get(approval["collaborationId"]), approval, user_id)
        if approval["status"] != "pending":
            raise _conflict(approval)
        now = self.clock()
        if approval["expiresAt"] <= now:
            raise await self._expired(approval, now)
        return approval

    async def _not_claimed(self, approval_id: str, now: datetime) -> AlreadyDecided:
        """Why the decision could not be claimed: someone else decided, or it expired since it was checked."""
        current = await self.store.approvals.get(approval_id) or {"_id": approval_id, "status": "unknown"}
        if current["status"] == "pending" and current["expiresAt"] <= now:
            return await self._expired(current, now)
        return _conflict(current)

    async def _expired(self, approval: dict[str, Any], now: datetime) -> AlreadyDecided:
        expired = await self.store.approvals.transition(
            approval["_id"], "pending", {"status": "expired", "decidedAt": now}
        )
        return _conflict(expired or await self.store.approvals.get(approval["_id"]) or approval)

    async def _failed(
        self, approval: dict[str, Any], exc: TandemError, recovering: bool = False, idempotency: Claim | None = None
    ) -> dict[str, Any]:
        error: dict[str, Any] = {"code": exc.code, "message": exc.message}
        if exc.details:
            error["details"] = exc.details
        changes: dict[str, Any] = {"status": "failed", "error": error}
        if recovering:
            changes["recoveredAt"] = self.clock()
        return await self._store_outcome(approval, changes, idempotency)


def _owner(collaboration: dict[str, Any] | None, approval: dict[str, Any], user_id: str) -> None:
    member = next((m for m in (collaboration or {}).get("members", []) if m["userId"] == user_id), None)
    if member is None:
        raise NotFound("No such approval.", {"approvalId": approval["_id"]})
    if member["role"] != "owner":
        raise Forbidden("Only an owner of the collaboration may decide.", {"role": member["role"], "needs": "owner"})


def _ran_before(entry: dict[str, Any]) -> dict[str, Any]:
    """The result of an approval whose action had run (its audit `entry`) when its outcome was not recorded."""
    return {
        "collaborationId": entry.get("collaborationId"),
        "version": entry.get("version"),
        "result": None,
        "recovered": True,
    }


def _conflict(approval: dict[str, Any]) -> AlreadyDecided:
    status = approval.get("status")
    message = "This approval expired." if status == "expired" else f"This approval was already decided ({status})."
    return AlreadyDecided(message, {"status": status})
