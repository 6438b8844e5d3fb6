"""Running a collaboration's rules for one action, and the Outcome the action engine acts on."""

from __future__ import annotations

import logging
import time
from datetime import datetime
from typing import Any, TypeGuard, cast

import msgspec

from backend.errors import RuleDenied
from backend.rules.context import Env, build_env
from backend.rules.interpreter import Budget, Clock, condition_holds, render_payload
from backend.rules.language import RuleError
from backend.rules.limits import FOLLOWUP_DEPTH_LIMIT, MAX_NAME_CHARS, TIME_BUDGET_SECONDS
from backend.rules.schema import ACTIONS, EXEMPT_ACTIONS, FOLLOWUP_ACTIONS, WHEN_ACTORS
from backend.rules.validate import check_stored

log = logging.getLogger(__name__)


# Guards, the effects that hold an action back (deny, require_approval): their rules run before
# follow-up rules, and they fail closed: a guard whose condition raises anything at all (a type error,
# an overflow, an exhausted budget, a defect) counts as matched, so no input a member chooses can slip
# past an owner's rule. So does a stored rule that is not sound (`check_stored`: written by an older
# Tandem, edited in MongoDB, or by a bug) unless its `then` shows it is certainly a follow-up rule.


class Outcome(msgspec.Struct, kw_only=True):
    """What the rules decided about one action. Deny wins over everything else."""

    deny: dict[str, str] | None = None
    """`{"ruleId", "message"}` of the first rule that denied, with `"error"` (the error's code)
    when the rule could not be evaluated and so denied; the action answers 403 rule_denied."""
    require_approval: list[str] = []
    """Ids of the rules that ask for an owner's approval: the action becomes an approval."""
    approval_reason: str | None = None
    """Their reasons, joined: the approval's `reason`."""
    followups: list[dict[str, Any]] = []
    """`{"ruleId", "action", "payload"}` to run after the action, as the rule, at depth + 1."""
    fired: list[str] = []
    """Ids of the rules whose effect applies (their condition held, or a guard failed closed):
    for the audit entry."""
    errors: list[dict[str, str]] = []
    """`{"ruleId", "code", "error"}` of rules that could not be evaluated.
    Codes: type_error, step_limit, time_budget, followup_depth, invalid_rule, internal."""

    def raise_if_denied(self) -> None:
        if self.deny is not None:
            denied = RuleDenied(self.deny["ruleId"], self.deny["message"])
            if "error" in self.deny:
                denied.details["error"] = self.deny["error"]
            raise denied

    def for_audit(self) -> dict[str, Any]:
        """`{"rulesFired", "ruleErrors"}` for the audit entry of the applied action, each only
        when not empty (docs/data-model.md)."""
        entry: dict[str, Any] = {}
        if self.fired:
            entry["rulesFired"] = list(self.fired)
        if self.errors:
            entry["ruleErrors"] = list(self.errors)
        return entry


def evaluate(
    rules: list[dict[str, Any]],
    *,
    action: str,
    actor: dict[str, Any],
    payload: dict[str, Any],
    collaboration: dict[str, Any],
    now: datetime,
    depth: int = 0,
    clock: Clock = time.thread_time,
    budget_seconds: float = TIME_BUDGET_SECONDS,
) -> Outcome:
    """Run `rules` (the collaboration's stored `rules`) for `action` by `actor`, before it is applied.

    `collaboration` is the stored document; `depth` is 0 for a user's or the AI's action and one
    more for each follow-up. Guards (deny, require_approval) run first, then follow-up rules, each
    in stored order. Never raises: a rule that cannot be evaluated is in `Outcome.errors`.
    """
    outcome = Outcome()
    if action in EXEMPT_ACTIONS or rules is None:
        return outcome
    if not isinstance(rules, list):  # unreadable: it may hold a guard
        return _unreadable_rules()
    actor_type = actor.get("type") if isinstance(actor, dict) else None
    applying = [(index, rule) for index, rule in enumerate(rules) if _applies(rule, action, actor_type)]
    # Whether each stored rule is sound, before the time budget starts: the check is cached, but the
    # first look at 50 large rules takes some 20 ms, which must not make honest actions fail closed.
    problems = {index: _soundness(rule, index) for index, rule in applying}
    budget = Budget(budget_seconds, clock)
    env: Env | None = None
    reasons: list[str] = []
    for index, rule in sorted(applying, key=lambda pair: _followup_last(pair[1])):
        rule_id = _rule_id(rule, index)
        try:
            budget.start_rule()
            problem = problems[index]
            if problem is not None:
                raise RuleError(*problem)
            env = env or build_env(action=action, actor=actor, payload=payload, collaboration=collaboration, now=now)
            effect = _run(rule, env, budget, depth)
        except RuleError as exc:
            outcome.errors.append({"ruleId": rule_id, "code": exc.code, "error": str(exc)})
            effect = _fail_closed(rule, exc.code, str(exc), rule_id)
        except Exception:
            log.exception("rule %s crashed", rule_id)
            outcome.errors.append({"ruleId": rule_id, "code": "internal", "error": "internal error"})
            effect = _fail_closed(rule, "internal", "internal error", rule_id)
        if effect is None:
            continue
        kind, value = effect
        if kind == "deny":
            return Outcome(deny={"ruleId": rule_id, **value}, fired=[rule_id], errors=outcome.errors)
        outcome.fired.append(rule_id)
        if kind == "require_approval":
            outcome.require_approval.append(rule_id)
            reasons.append(value or f"Rule “{_name(rule, rule_id)}” asks for an owner's approval.")
        else:
            outcome.followups.append({"ruleId": rule_id, **value})
    outcome.approval_reason = " ".join(reasons) or None
    return outcome


def _soundness(rule: Any, index: int) -> tuple[str, str] | None:
    """`(problem, code)` when the stored rule is not sound, else None."""
    try:
        problem = check_stored(rule, path=f"rules.{index}")
    except Exception:
        log.exception("checking stored rule %s crashed", index)
        return "internal error", "internal"
    return None if problem is None else (problem, "invalid_rule")


WHOLE_LIST = "rules"
"""The `ruleId` of a deny when the stored `rules` are not a list at all."""


def _unreadable_rules() -> Outcome:
    error = "the collaboration's rules are not a list"
    message = f"The rules could not be read ({error}), so they refuse the action."
    return Outcome(
        deny={"ruleId": WHOLE_LIST, "message": message, "error": "invalid_rule"},
        fired=[WHOLE_LIST],
        errors=[{"ruleId": WHOLE_LIST, "code": "invalid_rule", "error": error}],
    )


def _rule_id(rule: Any, index: int) -> str:
    """The rule's id; a stored rule without one is named by its place, `rules.<index>`."""
    rule_id = rule.get("id") if isinstance(rule, dict) else None
    return rule_id if isinstance(rule_id, str) and rule_id else f"rules.{index}"


def _applies(rule: Any, action: str, actor_type: Any) -> bool:
    """Whether `rule` is to be run for this action by this kind of actor. Only two things leave a
    rule out: `enabled` is false, or its `when` can be read (an object with a known `action` or
    "*", an `actor` of user, ai or any, nothing else) and names another action or kind of actor.
    A rule that cannot be read that far applies to every action, so that if it may be a guard it
    holds the action back, and in any case its error is reported rather than silently skipped."""
    if not isinstance(rule, dict):
        return True
    if rule.get("enabled") is False:
        return False
    when = rule.get("when")
    if not _readable_when(when):
        return True
    return when["action"] in (action, "*") and when.get("actor", "any") in ("any", actor_type)


def _readable_when(when: Any) -> TypeGuard[dict[str, Any]]:
    if not isinstance(when, dict) or not set(when) <= {"action", "actor"}:
        return False
    named, actor = when.get("action"), when.get("actor", "any")
    return (
        isinstance(named, str)
        and (named == "*" or named in ACTIONS)
        and isinstance(actor, str)
        and actor in WHEN_ACTORS
    )


def _strongest(rule: Any) -> str:
    """The strongest effect a stored rule may have, read from its `then` alone: `action` only when
    every effect it names is `action` (a follow-up, certainly not a guard); else `deny` when it
    names deny, anything unknown, or nothing readable; else `require_approval`."""
    then = rule.get("then") if isinstance(rule, dict) else None
    names = _effect_names(then)
    if names == {"action"}:
        return "action"
    if not names or not names <= {"require_approval", "action"}:
        return "deny"
    return "require_approval"


def _effect_names(then: Any) -> set[Any]:
    """The effect names in a stored `then`: its keys (one, if it is sound), a bare name, or those
    of a list of effects. Anything else names nothing."""
    if isinstance(then, dict):
        return {key if isinstance(key, str) else repr(key) for key in then}
    if isinstance(then, str):
        return {then}
    if isinstance(then, list):
        return set().union(*(_effect_names(item) if isinstance(item, (dict, str)) else {"?"} for item in then))
    return set()


def _followup_last(rule: Any) -> bool:
    """Sort key: follow-up rules after every other, so that they cannot use up a guard's time."""
    return _strongest(rule) == "action"


def _name(rule: Any, rule_id: str) -> str:
    name = rule.get("name") if isinstance(rule, dict) else None
    return name.strip()[:MAX_NAME_CHARS] if isinstance(name, str) and name.strip() else rule_id


def _fail_closed(rule: Any, code: str, error: str, rule_id: str) -> tuple[str, Any] | None:
    """A rule that could not be evaluated, whatever the error, still holds the action back as the
    strongest effect it may have (`_strongest`): a guard, or a rule that cannot be read well enough
    to know it is none. A follow-up rule that errors is skipped (its error is in the outcome's errors)."""
    kind = _strongest(rule)
    if kind == "action":
        return None
    why = f"Rule “{_name(rule, rule_id)}” could not be evaluated ({error})"
    if kind == "deny":
        return "deny", {"message": f"{why}, so it refuses the action.", "error": code}
    return "require_approval", f"{why}, so the action needs an owner's approval."


def _run(rule: Any, env: Env, budget: Budget, depth: int) -> tuple[str, Any] | None:
    """The rule's effect when its condition holds, else None."""
    if not isinstance(rule, dict) or not isinstance(rule.get("when"), dict):
        raise RuleError("not a rule", "invalid_rule")
    if not condition_holds(rule.get("if", True), env, budget):
        return None
    then = rule.get("then")
    if not isinstance(then, dict) or len(then) != 1:
        raise RuleError("the rule has no effect", "invalid_rule")
    [(kind, body)] = then.items()
    body = body if isinstance(body, dict) else {}
    if kind == "deny":
        message = body.get("message")
        return "deny", {"message": message if isinstance(message, str) and message else RuleDenied.default_message}
    if kind == "require_approval":
        reason = body.get("reason")
        return "require_approval", reason if isinstance(reason, str) else None
    if kind == "action":
        if depth >= FOLLOWUP_DEPTH_LIMIT:
            raise RuleError(f"follow-up not run: already {depth} follow-ups deep (the limit)", "followup_depth")
        name = body.get("name")
        if name not in FOLLOWUP_ACTIONS:
            raise RuleError(f"{str(name)[:40]!r} cannot be a follow-up", "invalid_rule")
        action = cast(str, name)  # one of FOLLOWUP_ACTIONS' names
        return "action", {"action": action, "payload": render_payload(action, body.get("payload", {}), env, budget)}
    raise RuleError(f"unknown effect {str(kind)[:40]!r}", "invalid_rule")
