"""The action engine: one path for every action, whoever runs it.

(Over 300 lines: the chain of checks below and the helpers each check calls, audit entry,
rules, follow-ups and proposals, read top to bottom as one path; each action's own I/O is in
backend/preparations.py, its pure step in backend/domain/effects.py.)

A user's REST call, the AI's proposal, a rule's follow-up and an approval
being carried out all come through `ActionEngine.run`, which reads as a chain
of checks: the action exists → it was not applied already → its payload is valid
→ the collaboration exists and the actor may see it → the actor's role suffices
→ the version is the expected one → it may run in the collaboration's status →
the owner's rules and AI protection (either may make it an approval) → apply
(pure) → one atomic write: the document at version + 1 (or the message) and its audit entry.

Follow-ups survive a crash after that write: the audit entry, written with the
action, lists the follow-ups its rules asked for (`followupsDue`, with
`followupsOpen: true`); each runs with a key of its own (`<audit id>:<index>`),
written with its effect (its audit entry's or its approval's unique
`followupKey`), so it applies at most once however often it is tried. They run
at once in this process; `recover_followups` (the worker's hourly recovery job)
runs those of entries still open after RECOVER_AFTER, and the keys make a run
that had happened before the crash a no-op.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Callable

import msgspec

from backend import rules as rule_engine
from backend.clock import utcnow
from backend.domain import effects, payloads
from backend.domain.catalogue import CATALOGUE, ActionSpec
from backend.domain.diff import build_update, set_whole
from backend.domain.models import Actor, Collaboration, read_collaboration, to_doc
from backend.domain.roles import at_least
from backend.errors import Forbidden, InvalidTransition, NotFound, ValidationFailed, VersionConflict
from backend.ids import new_id
from backend.preparations import Preparing
from backend.settings import Settings
from backend.store.failures import AlreadyApplied
from backend.store.idempotency import Claim

if TYPE_CHECKING:
    from backend.auth.directory import MemberDirectory
    from backend.store.store import Store

MAX_RETRIES = 8
RECOVER_AFTER = timedelta(minutes=10)
"""Follow-ups still not noted as run this long after their trigger were cut short by a crash."""


class Applied(msgspec.Struct):
    collaborationId: str
    version: int
    result: dict[str, Any]
    action: str = ""
    collaboration: dict[str, Any] | None = None  # the stored document after the action
    followups: list[dict[str, Any]] = []


class FollowupChain:
    """The follow-ups one root action may still run, shared by every follow-up it leads to
    (rules/limits.py FOLLOWUP_LIMIT): the depth limit bounds a chain's depth, this its breadth."""

    def __init__(self, limit: int = rule_engine.FOLLOWUP_LIMIT):
        self.left = limit

    def take(self) -> bool:
        if self.left <= 0:
            return False
        self.left -= 1
        return True


class NeedsApproval(msgspec.Struct):
    approval: dict[str, Any]  # the stored approval document


Outcome = Applied | NeedsApproval


class ActionEngine:
    def __init__(
        self, store: Store, settings: Settings, directory: MemberDirectory, clock: Callable[[], datetime] = utcnow
    ):
        self.clock = clock
        self.store = store
        self.settings = settings
        self.directory = directory

    async def run(
        self,
        name: str,
        actor: Actor,
        collaboration_id: str | None,
        payload: Any,
        *,
        expected_version: int | None = None,
        actor_email: str | None = None,
        approval_id: str | None = None,
        reason: str | None = None,
        depth: int = 0,
        chain: FollowupChain | None = None,
        followup_key: str | None = None,
        idempotency: Claim | None = None,
    ) -> Outcome:
        """Run one action. `depth`, `chain` and `followup_key` are for follow-ups: a root action
        starts a new chain. AlreadyApplied when the action with this `approval_id` or
        `followup_key` has been applied already (nothing is applied again). `idempotency` (an
        Idempotency-Key's Claim, store/idempotency.py) gets the answer to what is about to be
        applied, and the store writes that answer with it."""
        spec = _spec(name)
        chain = chain if chain is not None else FollowupChain()
        await self._not_applied_yet(approval_id, followup_key)
        decoded = payloads.decode(spec.payload, payload, max_message_chars=self.settings.max_message_chars)
        if spec.kind == "create":
            return await self._create(spec, actor, decoded, actor_email, idempotency)
        if not isinstance(collaboration_id, str) or not collaboration_id:
            raise ValidationFailed.at("collaborationId", "Required")
        looked_up: dict[str, Any] = {}  # addMember's directory answer, kept across retries: asked once per run
        for _ in range(MAX_RETRIES):
            outcome = await self._attempt(
                spec,
                actor,
                collaboration_id,
                decoded,
                expected_version,
                actor_email,
                approval_id,
                reason,
                depth,
                chain,
                looked_up,
                followup_key,
                idempotency,
            )
            if outcome is not None:
                return outcome
        raise VersionConflict("The collaboration kept changing; try again.")

    async def _attempt(
        self,
        spec: ActionSpec,
        actor: Actor,
        collaboration_id: str,
        payload: Any,
        expected_version: int | None,
        actor_email: str | None,
        approval_id: str | None,
        reason: str | None,
        depth: int,
        chain: FollowupChain,
        looked_up: dict[str, Any],
        followup_key: str | None = None,
        idempotency: Claim | None = None,
    ) -> Outcome | None:
        # shared, not copied (embedded store): the run changes nothing in it (build_update copies)
        doc = await self.store.collaborations.get_shared(collaboration_id)
        if doc is None:
            raise NotFound("No such collaboration.", {"collaborationId": collaboration_id})
        collab = read_collaboration(doc)  # its members converted as they are read (models.Members)
        _authorize(spec, collab, actor)
        _check_version(collab, expected_version)
        _check_status(spec, collab)
        now = self.clock()
        verdict = self._rules(spec, collab, actor, payload, now, depth)
        ctx = effects.Context(actor=actor, now=now, new_id=new_id, actor_email=actor_email)
        proposing = approval_id is None and bool(verdict.require_approval or _protected(spec, collab, actor))
        await self._prepare(spec, collab, payload, ctx, proposing, approval_id, looked_up)
        effect = effects.apply(spec.name, collab, payload, ctx)  # pure: refuses what cannot run now
        if proposing:
            # Only an action that could run now becomes an approval: no owner is asked to approve
            # what can never happen. It is checked again when it is carried out.
            why = reason or (verdict.reason if verdict.require_approval else None)
            return await self._propose(
                spec, collab, actor, payload, why, verdict.require_approval, followup_key, idempotency
            )
        audit = _audit(spec, collab, actor, payload, now, approval_id, verdict, followup_key, depth)
        if effect.message is not None:
            # The store checks again, inside the write, that the collaboration is active and the
            # author still a member: if not (removed or archived meanwhile) the next attempt says why.
            applied = Applied(collab.id, collab.version, effect.result, spec.name, None)
            if not await self.store.messages.insert(
                to_doc(effect.message),
                audit,
                poster=actor.id if actor.is_user else None,
                idempotency=_answering(idempotency, applied),
            ):
                return None
            applied.followups = await self._followups(audit, chain)
            return applied
        # The new document and its update from the paths the action changed (not a diff of all of it)
        # lastAction is one value, set whole (not leaf by leaf): the change stream reports it whole
        last_action = {"name": spec.name, "actor": msgspec.to_builtins(actor), "at": now}
        new_doc, update = build_update(doc, {**effect.changes, "lastAction": last_action})
        update = set_whole(update, "lastAction", last_action)
        audit["version"], audit["versioned"] = collab.version + 1, True
        applied = Applied(collab.id, collab.version + 1, effect.result, spec.name, new_doc)
        if not await self.store.collaborations.apply(
            collab.id, collab.version, new_doc, update, audit, before=doc, idempotency=_answering(idempotency, applied)
        ):
            if expected_version is not None:  # lost the race: say where the document is now
                current = await self.store.collaborations.get(collab.id)
                raise VersionConflict(
                    "The collaboration changed meanwhile.",
                    {"expectedVersion": expected_version, "currentVersion": current["version"] if current else None},
                )
            return None
        if spec.after is not None:  # e.g. addMember's new invitation mark (preparations.member_added)
            spec.after(self, effect.result)
        applied.followups = await self._followups(audit, chain)
        return applied

    async def _create(
        self, spec: ActionSpec, actor: Actor, payload: Any, actor_email: str | None, idempotency: Claim | None = None
    ) -> Applied:
        if not actor.is_user:
            raise Forbidden("Only a signed-in user can create a collaboration.")
        now = self.clock()
        ctx = effects.Context(actor=actor, now=now, new_id=new_id, actor_email=actor_email)
        effect = effects.apply(spec.name, None, payload, ctx)
        assert effect.collaboration is not None
        doc = to_doc(effect.collaboration)
        doc["lastAction"] = {"name": spec.name, "actor": msgspec.to_builtins(actor), "at": now}
        audit = _audit(spec, effect.collaboration, actor, payload, now, None, Verdict())
        audit["version"], audit["versioned"] = 1, True
        applied = Applied(doc["_id"], 1, effect.result, spec.name, doc)
        await self.store.collaborations.insert(doc, audit, idempotency=_answering(idempotency, applied))
        return applied

    async def _prepare(
        self,
        spec: ActionSpec,
        collab: Collaboration,
        payload: Any,
        ctx: effects.Context,
        proposing: bool,
        approval_id: str | None,
        looked_up: dict[str, Any],
    ) -> None:
        """The I/O an action needs before its pure step: its catalogue `prepare` hook (preparations.py)."""
        if spec.prepare is not None:
            await spec.prepare(self, Preparing(spec.name, collab, payload, ctx, proposing, approval_id, looked_up))

    def _rules(
        self, spec: ActionSpec, collab: Collaboration, actor: Actor, payload: Any, now: datetime, depth: int
    ) -> "Verdict":
        """The owner's rules: deny (raises rule_denied), ask for approval, or queue follow-ups."""
        if not collab.rules or spec.rule_exempt is not None:
            return Verdict()
        outcome = rule_engine.evaluate(
            collab.rules,
            action=spec.name,
            actor=_actor_for_rules(actor),
            payload=msgspec.to_builtins(payload, builtin_types=(type(now),)),
            collaboration=to_doc(collab),
            now=now,
            depth=depth,
        )
        outcome.raise_if_denied()
        return Verdict(
            require_approval=list(outcome.require_approval),
            reason=outcome.approval_reason,
            followups=list(outcome.followups),
            audit=outcome.for_audit(),
        )

    async def _propose(
        self,
        spec: ActionSpec,
        collab: Collaboration,
        actor: Actor,
        payload: Any,
        reason: str | None,
        rule_ids: list[str],
        followup_key: str | None = None,
        idempotency: Claim | None = None,
    ) -> NeedsApproval:
        now = self.clock()
        # Times stay datetimes (UTC after decoding), as in the audit: stored as BSON dates, sent with `Z`,
        # and decoded again when the approval is carried out.
        approval: dict[str, Any] = {
            "_id": new_id("apr"),
            "collaborationId": collab.id,
            "action": spec.name,
            "payload": msgspec.to_builtins(payload, builtin_types=(type(now),)),
            "reason": reason,
            "proposedBy": msgspec.to_builtins(actor),
            "status": "pending",
            "createdAt": now,
            "expiresAt": now + timedelta(seconds=self.settings.approval_ttl),
        }
        if rule_ids:
            approval["rules"] = rule_ids
        if followup_key is not None:
            approval["followupKey"] = followup_key
        existing = await self.store.approvals.insert(
            approval, idempotency=_answering(idempotency, NeedsApproval(approval))
        )
        if existing is not None:  # this follow-up became an approval before
            raise AlreadyApplied(existing, approval=True)
        return NeedsApproval(approval)

    async def _followups(self, entry: dict[str, Any], chain: FollowupChain) -> list[dict[str, Any]]:
        """Run the follow-ups the trigger's audit `entry` lists (`followupsDue`) as their rules, then
        note how each went in that entry, which closes it. A failed follow-up never undoes its trigger."""
        due = entry.get("followupsDue") or []
        ran = [
            await self._followup(
                item, f"{entry['_id']}:{index}", entry["collaborationId"], entry.get("followupDepth", 1), chain
            )
            for index, item in enumerate(due)
        ]
        if due:
            await self.store.audit.note_followups(entry["_id"], ran)
        return ran

    async def _followup(
        self, item: dict[str, Any], key: str, collaboration_id: str, depth: int, chain: FollowupChain
    ) -> dict[str, Any]:
        """`{ruleId, action, ok, approval?, error?}`: error `followup_limit` when the chain has run
        all the follow-ups it may, else the code of the error the follow-up ran into. One that was
        applied before (its `key` is taken: a recovery after a crash) counts as ok."""
        done = {"ruleId": item["ruleId"], "action": item["action"]}
        if not chain.take():
            return {**done, "ok": False, "error": "followup_limit"}
        actor = Actor(type="rule", ruleId=item["ruleId"])
        try:
            outcome = await self.run(
                item["action"], actor, collaboration_id, item["payload"], depth=depth, chain=chain, followup_key=key
            )
        except AlreadyApplied as already:
            return {**done, "ok": True, "approval": already.approval}
        except Exception as exc:  # noqa: BLE001 - reported, never fatal to the trigger
            return {**done, "ok": False, "error": getattr(exc, "code", "internal")}
        return {**done, "ok": True, "approval": isinstance(outcome, NeedsApproval)}

    async def _not_applied_yet(self, approval_id: str | None, key: str | None) -> None:
        """An approval carried out or a follow-up run before (its effect carries the id or key) is
        not applied again; this read says so before the checks (which might refuse it now: a done
        activity cannot be done twice). The check inside the atomic write (store/writes.py
        check_once) is what guarantees it."""
        if approval_id is not None and (entry := await self.store.audit.for_approval(approval_id)) is not None:
            raise AlreadyApplied(entry)
        if key is None:
            return
        if (entry := await self.store.audit.for_followup(key)) is not None:
            raise AlreadyApplied(entry)
        if (approval := await self.store.approvals.for_followup(key)) is not None:
            raise AlreadyApplied(approval, approval=True)

    async def recover_followups(self, older_than: timedelta = RECOVER_AFTER) -> int:
        """Run the follow-ups of audit entries still open `older_than` after their action (the
        process stopped between the action's commit and noting its follow-ups). Each runs at most
        once: one that had run before is recognised by its key. Returns how many entries."""
        recovered = 0
        while entries := await self.store.audit.open_followups(self.clock() - older_than):
            for entry in entries:
                await self._followups(entry, FollowupChain())
                recovered += 1
        return recovered


class Verdict(msgspec.Struct):
    require_approval: list[str] = []
    reason: str | None = None
    followups: list[dict[str, Any]] = []
    audit: dict[str, Any] = {}
    """`Outcome.for_audit()`: rulesFired and ruleErrors for the audit entry."""


def _answering(idempotency: Claim | None, outcome: Outcome) -> Claim | None:
    """An Idempotency-Key's claim with its answer to `outcome` built, for the store to write with it."""
    return idempotency.prepare(outcome) if idempotency is not None else None


def _spec(name: str) -> ActionSpec:
    spec = CATALOGUE.get(name) if isinstance(name, str) else None
    if spec is None:
        raise NotFound(f"Unknown action {name!r}.", {"action": name, "known": sorted(CATALOGUE)})
    return spec


def _authorize(spec: ActionSpec, collab: Collaboration, actor: Actor) -> None:
    if actor.is_user:
        member = collab.member(actor.id)
        if member is None:
            raise NotFound("No such collaboration.", {"collaborationId": collab.id})
        if spec.role and not at_least(member.role, spec.role):
            raise Forbidden(
                f"{spec.name} needs the {spec.role} role; you are {member.role}.",
                {"action": spec.name, "role": member.role, "needs": spec.role},
            )
        return
    if spec.ai == "never":
        raise Forbidden(f"{spec.name} can only be run by a member.", {"action": spec.name})


def _check_version(collab: Collaboration, expected: int | None) -> None:
    if expected is not None and expected != collab.version:
        raise VersionConflict(
            "The collaboration changed meanwhile.", {"expectedVersion": expected, "currentVersion": collab.version}
        )


def _check_status(spec: ActionSpec, collab: Collaboration) -> None:
    if collab.status == "archived" and not spec.archived:
        raise InvalidTransition("The collaboration is archived.", {"status": "archived"})


def _protected(spec: ActionSpec, collab: Collaboration, actor: Actor) -> bool:
    return actor.is_ai and spec.name in collab.settings.protectedActions


def _actor_for_rules(actor: Actor) -> dict[str, Any]:
    out: dict[str, Any] = {"type": actor.type}
    if actor.id or actor.ruleId:
        out["id"] = actor.id or actor.ruleId
    return out


def _audit(
    spec: ActionSpec,
    collab: Collaboration,
    actor: Actor,
    payload: Any,
    now: datetime,
    approval_id: str | None,
    verdict: "Verdict",
    followup_key: str | None = None,
    depth: int = 0,
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "_id": new_id("aud"),
        "collaborationId": collab.id,
        "version": collab.version,
        "versioned": False,
        "actor": msgspec.to_builtins(actor),
        "action": spec.name,
        "payload": msgspec.to_builtins(payload, builtin_types=(type(now),)),
        "at": now,
    }
    if approval_id:
        entry["approvalId"] = approval_id
    if followup_key is not None:
        entry["followupKey"] = followup_key
    entry.update(verdict.audit)
    if verdict.followups:  # written with the action: run after it, even after a crash (recover_followups)
        entry.update(followupsDue=list(verdict.followups), followupDepth=depth + 1, followupsOpen=True)
    return entry
