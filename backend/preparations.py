"""The I/O an action needs before its pure step: a catalogue spec's `prepare` hook.

The engine calls `spec.prepare(engine, Preparing(...))` after the checks and
before the action's pure effect (backend/domain/effects.py); a hook fills in the
effect's `Context` (a directory answer, checked suggestions, the validated rule
set) or refuses the action with the project's errors. `spec.after(engine,
result)` runs once the action is committed. Hooks reach the store, the
directory and the settings through the engine they are given.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Awaitable, Callable, TypeAlias

import msgspec

from backend.domain import effects
from backend.domain.models import Actor, Collaboration
from backend.errors import NotFound, ValidationFailed

if TYPE_CHECKING:
    from backend.engine import ActionEngine  # (the engine imports the catalogue, which imports this)


class Preparing(msgspec.Struct):
    action: str
    collab: Collaboration
    payload: Any
    ctx: effects.Context
    proposing: bool
    """The action becomes an approval instead of running (nothing irreversible may happen)."""
    approval_id: str | None
    looked_up: dict[str, Any]
    """Kept across the engine's retries of one run: what a hook must ask only once."""


Prepare: TypeAlias = "Callable[[ActionEngine, Preparing], Awaitable[None]]"
"""A spec's `prepare` hook: the I/O its effect needs."""
After: TypeAlias = "Callable[[ActionEngine, dict[str, Any]], None]"
"""A spec's `after` hook: what follows the action's commit, given its result."""


async def prepare_add_member(engine: ActionEngine, prep: Preparing) -> None:
    """addMember: the directory's answer (which may send an invitation), asked once per run, only
    for an action about to be applied: a proposal invites no one until it is approved."""
    if prep.proposing:
        prep.ctx.resolved_user = None
        return
    effects.already_member_by_email(prep.collab, prep.payload.email)  # no directory call for a member
    if "invitee" not in prep.looked_up:
        invitee = await engine.directory.find_or_invite(prep.payload.email)
        inviter = prep.ctx.actor.id if prep.ctx.actor.is_user else await _approver(engine, prep.approval_id)
        # Marked invited whether or not the account existed (the entry must not tell); dev mode,
        # where anyone signs in as anyone, marks only people who never signed in (docs/auth.md).
        invited = invitee.invited or not engine.settings.dev
        prep.looked_up["invitee"] = {"id": invitee.id, "email": invitee.email, "invited": invited, "invitedBy": inviter}
    prep.ctx.resolved_user = prep.looked_up["invitee"]


def member_added(engine: ActionEngine, result: dict[str, Any]) -> None:
    """A new invitation mark: this process checks that user again (invitations.py)."""
    engine.directory.member_added(result["userId"])


async def _approver(engine: ActionEngine, approval_id: str | None) -> str | None:
    """The owner who approved the proposal being carried out: the inviter of an AI's addMember."""
    approval = await engine.store.approvals.get(approval_id) if approval_id else None
    return approval.get("decidedBy") if approval else None


async def prepare_send_message(engine: ActionEngine, prep: Preparing) -> None:
    """sendMessage: the AI answer's suggestions, checked; `replyTo` a message of this collaboration."""
    payload, collab = prep.payload, prep.collab
    if payload.suggestions is not None:
        prep.ctx.suggestions = _suggestions(payload, prep.ctx.actor, engine.settings.max_message_chars)
    if payload.replyTo is not None and await engine.store.messages.get(collab.id, payload.replyTo) is None:
        raise ValidationFailed.at("payload.replyTo", "No such message in this collaboration")


def _suggestions(payload: Any, actor: Actor, max_message_chars: int) -> list[dict[str, Any]]:
    """Only the AI's answer to a message carries suggestions, checked and bounded as stored."""
    from backend.domain import suggestions  # (it reads the catalogue, which imports this module)

    if not actor.is_ai:
        raise ValidationFailed.at("payload.suggestions", "Only the AI's answers carry suggestions")
    if payload.replyTo is None:
        raise ValidationFailed.at("payload.suggestions", "Suggestions come with an answer: give replyTo")
    return suggestions.normalise(payload.suggestions, max_message_chars=max_message_chars)


async def prepare_rules(engine: ActionEngine, prep: Preparing) -> None:
    """addRule / updateRule / removeRule: the rule set after the change, validated."""
    prep.ctx.rules = rules_after(prep.action, prep.collab, prep.payload, engine.settings.max_message_chars)


def rules_after(name: str, collab: Collaboration, payload: Any, max_message_chars: int) -> list[dict[str, Any]]:
    from backend import rules as rule_engine  # (the rules schema is derived from the catalogue, which imports this)

    # An owner's rule change starts from the readable stored rules: a `rules` field that is not a
    # list, or an entry that is not an object (stored by a bug or by hand), holds every action
    # (rules/outcome.py) until the owner's next rule change drops it here.
    current = [r for r in collab.rules if isinstance(r, dict)] if isinstance(collab.rules, list) else []
    if name == "addRule":
        rule = rule_engine.validate_rule(payload.rule, path="payload.rule", max_message_chars=max_message_chars)
        if any(r.get("id") == rule["id"] for r in current):
            raise ValidationFailed.at("payload.rule.id", "A rule with that id exists")
        current.append(rule)
    elif name == "updateRule":
        rule_id = payload.rule.get("id")
        if not isinstance(rule_id, str) or not any(r.get("id") == rule_id for r in current):
            raise NotFound("No such rule.", {"ruleId": rule_id})
        rule = rule_engine.validate_rule(payload.rule, path="payload.rule", max_message_chars=max_message_chars)
        current = [rule if r.get("id") == rule_id else r for r in current]
    else:
        if not any(r.get("id") == payload.ruleId for r in current):
            raise NotFound("No such rule.", {"ruleId": payload.ruleId})
        current = [r for r in current if r.get("id") != payload.ruleId]
    rule_engine.validate_rule_set(current)
    return current
