"""Threat: a member (or the AI) slips past an owner's guard rule by making its condition error.

An owner's `deny` or `require_approval` rule is a security boundary. A member chooses the input the
condition reads: a missing optional field (a type error), a date that overflows `+ days(n)`, text
crafted to exhaust the step or time budget (Unicode case mapping), data that crashes the
interpreter. Had any error meant "the rule does not match", each would dodge the rule. So guards
fail closed: whatever a guard's condition raises, the guard counts as matched (deny refuses with
403 rule_denied and `details.error`; require_approval makes an approval), and the error is kept
in `ruleErrors` (the outcome, the audit entry of what is applied). A follow-up rule that errors is
skipped, its error recorded the same way.

Also: a stored rule left malformed (by an older Tandem, an edit in MongoDB, a bug) must not be a
way past a guard. Every stored rule that applies is checked as when saved (without the size
limits); one that may be a guard holds the action back, one that certainly is not is skipped,
and either way its `invalid_rule` error is recorded. Members can still leave.
"""

from __future__ import annotations

import copy
from datetime import datetime, timezone
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from backend.composition import build_api
from backend.deciding import ApprovalService
from backend.errors import RuleDenied, ValidationFailed
from backend.rules import MAX_RULES, Outcome, evaluate, validate_rule
from backend.rules import outcome as rule_outcome
from backend.rules.limits import MAX_STEPS
from backend.runtime import Runtime
from backend.settings import test_settings
from tests.support import EDITOR, OWNER, VIEWER, LiveServer, team, token, user
from tests.test_rules import ECHO, NOW_VAR, collaboration, rule, run, ticking_clock
from tests.test_rules import EDITOR as EDITOR_ACTOR
from tests.test_rules_properties import PROPERTY, actions, actors, effects, expressions, payloads

# -- the interpreter ---------------------------------------------------------------


def test_a_deny_rule_that_errors_on_its_values_fails_closed():
    """The classic dodge: the rule compares an optional field the member simply leaves out."""
    stored = rule(
        name="No rush", when={"action": "proposeActivity"}, **{"if": {"<": [{"var": "payload.dueAt"}, NOW_VAR]}}
    )
    outcome = run([stored], "proposeActivity", EDITOR_ACTOR, {"title": "Hike"})
    assert outcome.deny == {
        "ruleId": stored["id"],
        "error": "type_error",
        "message": "Rule “No rush” could not be evaluated (< cannot take (null, date)), so it refuses the action.",
    }
    assert outcome.fired == [stored["id"]]
    assert outcome.for_audit()["ruleErrors"] == [
        {"ruleId": stored["id"], "code": "type_error", "error": "< cannot take (null, date)"}
    ]


@pytest.mark.parametrize("when", ["9999-12-31T12:00:00Z", "0001-01-01T00:00:00Z"])
def test_a_date_that_overflows_fails_closed(when: str):
    """`scheduledFor + 1 day` (or − 1 day) past the years 1 to 9999: an OverflowError, not a dodge."""
    shifted = {"+": [{"var": "payload.scheduledFor"}, {"days": 1}]}
    back = {"-": [{"var": "payload.scheduledFor"}, {"days": 1}]}
    stored = rule(
        when={"action": "scheduleActivity"},
        **{"if": {"or": [{"in": [{"weekday": shifted}, [6, 7]]}, {"in": [{"weekday": back}, [6, 7]]}]}},
    )
    outcome = run([stored], "scheduleActivity", EDITOR_ACTOR, {"activityId": "act_1", "scheduledFor": when})
    assert outcome.deny is not None and outcome.deny["error"] == "type_error"
    assert "out of range" in outcome.errors[0]["error"]
    approval = {**stored, "then": {"require_approval": {}}}
    outcome = run([approval], "scheduleActivity", EDITOR_ACTOR, {"activityId": "act_1", "scheduledFor": when})
    assert outcome.require_approval == [stored["id"]] and "could not be evaluated" in outcome.approval_reason


def test_a_follow_up_rule_that_errors_is_skipped_and_recorded():
    stored = rule(when={"action": "proposeActivity"}, then=ECHO, **{"if": {"<": [{"var": "payload.dueAt"}, NOW_VAR]}})
    outcome = run([stored], "proposeActivity", EDITOR_ACTOR, {"title": "Hike"})
    assert outcome.deny is None and outcome.followups == [] and outcome.fired == []
    assert [e["code"] for e in outcome.errors] == ["type_error"]


def test_a_guard_whose_evaluation_crashes_fails_closed(monkeypatch):
    """Any exception at all, not only the interpreter's own RuleError: a defect must not open the door."""

    def crash(rule: Any, env: Any, budget: Any, depth: int) -> Any:
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(rule_outcome, "_run", crash)
    deny, approval, echo = rule(), rule(then={"require_approval": {}}), rule(then=ECHO)
    outcome = run([echo, approval, deny])
    assert outcome.deny is not None and outcome.deny["ruleId"] == deny["id"] and outcome.deny["error"] == "internal"
    outcome = run([echo, approval])
    assert outcome.require_approval == [approval["id"]] and outcome.followups == []
    assert [e["code"] for e in outcome.errors] == ["internal", "internal"]


def test_a_guard_whose_soundness_check_crashes_fails_closed(monkeypatch):
    def crash(rule: Any, *, path: str) -> Any:
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(rule_outcome, "check_stored", crash)
    deny, echo = rule(), rule(then=ECHO)
    outcome = run([echo, deny])
    assert outcome.deny is not None and outcome.deny["ruleId"] == deny["id"] and outcome.deny["error"] == "internal"
    outcome = run([echo])
    assert outcome.followups == [] and [e["code"] for e in outcome.errors] == ["internal"]


def test_invalid_stored_data_in_a_guard_fails_closed():
    condition: Any = True
    for _ in range(5000):
        condition = {"not": condition}
    outcome = run([{**rule(), "if": condition}])
    assert outcome.deny is not None and outcome.deny["error"] == "invalid_rule"
    outcome = run([{**rule(), "if": {"nope": 1}}])
    assert outcome.deny is not None and outcome.deny["error"] == "invalid_rule"


@PROPERTY
@given(effect=effects, condition=expressions, action=actions, actor=actors, payload=payloads)
def test_a_guard_that_errors_always_holds_the_action_back(
    effect: Any, condition: Any, action: str, actor: Any, payload: Any
):
    """Whatever the condition and the input: a guard with an error in `errors` has applied."""
    stored = {
        "id": "rul_guard",
        "name": "guard",
        "enabled": True,
        "when": {"action": "*", "actor": "any"},
        "if": condition,
        "then": effect,
    }
    kind = next(iter(effect)) if isinstance(effect, dict) and len(effect) == 1 else None
    outcome = evaluate(
        [stored],
        action=action,
        actor=actor,
        payload=payload,
        collaboration=collaboration(),
        now=datetime(2026, 11, 18, tzinfo=timezone.utc),
    )
    if not outcome.errors or action in (
        "createCollaboration",
        "addRule",
        "updateRule",
        "removeRule",
        "leaveCollaboration",
    ):
        return
    if kind == "deny":
        assert outcome.deny is not None and outcome.deny["error"] == outcome.errors[0]["code"]
    elif kind == "require_approval":
        assert outcome.require_approval == ["rul_guard"]
    elif _only_followups(effect):
        assert outcome.deny is None and outcome.require_approval == [] and outcome.followups == []
    else:  # junk: it may have been a guard (was: skipped, the action let through)
        assert outcome.deny is not None and outcome.deny["error"] == "invalid_rule" and outcome.followups == []


def _only_followups(effect: Any) -> bool:
    """Whether a stored `then` names follow-ups (`action`) and nothing else: certainly not a guard."""
    if isinstance(effect, list):
        return bool(effect) and all(_only_followups(item) for item in effect)
    return effect == "action" or isinstance(effect, dict) and set(effect) == {"action"}


# -- stored rules that are not sound ------------------------------------------------
# Rules are validated when saved; stored ones may still be malformed: written by an older Tandem,
# edited directly in MongoDB, or by a bug. A malformed rule that may be a guard holds the action
# back (deny if it names deny or anything unknown or nothing readable; approval if require_approval
# is the only guard it names); one that certainly is not (its `then` names only `action`) is skipped.
# Either way its error is in `errors` (and so in the audit's `ruleErrors`), code invalid_rule.

NO_HI = {
    "id": "rul_nohi",
    "name": "No hi",
    "enabled": True,
    "when": {"action": "sendMessage", "actor": "any"},
    "if": {"==": [{"var": "payload.text"}, "hi"]},
    "then": {"deny": {"message": "Say hello."}},
}
LOOK = {**NO_HI, "id": "rul_look", "name": "Look first", "then": {"require_approval": {"reason": "Look."}}}
ECHO_BODY = ECHO["action"]
MISSING = object()


def corrupt(intact: dict[str, Any], path: str, value: Any) -> Any:
    """`intact` with the part at dotted `path` replaced by `value` (MISSING: left out; "": the whole rule)."""
    if not path:
        return value
    rule = copy.deepcopy(intact)
    *parents, last = path.split(".")
    target = rule
    for part in parents:
        target = target[part]
    if value is MISSING:
        target.pop(last, None)
    else:
        target[last] = value
    return rule


HELD = [  # (guard, part, stored value, how it holds)
    (NO_HI, "then.extra", 1, "deny"),  # the reviewer's case: was skipped, the message let through
    (NO_HI, "then.action", ECHO_BODY, "deny"),
    (NO_HI, "then.deny.message", 5, "deny"),
    (NO_HI, "then.deny.message", MISSING, "deny"),
    (NO_HI, "then.deny", "Say hello.", "deny"),
    (NO_HI, "then", {"Deny": {"message": "x"}}, "deny"),  # an unknown effect name may be a guard's
    (NO_HI, "then", {"requireApproval": {}}, "deny"),
    (NO_HI, "then", {}, "deny"),
    (NO_HI, "then", MISSING, "deny"),
    (NO_HI, "then", "deny", "deny"),
    (NO_HI, "then", [{"deny": {"message": "x"}}], "deny"),
    (NO_HI, "then", None, "deny"),
    (NO_HI, "when", "always", "deny"),
    (NO_HI, "when", MISSING, "deny"),
    (NO_HI, "when", {}, "deny"),
    (NO_HI, "when.action", "send_message", "deny"),  # an unknown action name: applies to every action
    (NO_HI, "when.action", ["sendMessage"], "deny"),
    (NO_HI, "when.actor", "editor", "deny"),
    (NO_HI, "when.role", "editor", "deny"),
    (NO_HI, "enabled", "false", "deny"),  # was: anything but true disabled the rule
    (NO_HI, "enabled", 1, "deny"),
    (NO_HI, "enabled", None, "deny"),
    (NO_HI, "id", MISSING, "deny"),
    (NO_HI, "id", 7, "deny"),
    (NO_HI, "name", MISSING, "deny"),
    (NO_HI, "condition", {"==": [1, 2]}, "deny"),  # a field this Tandem does not know
    (NO_HI, "if", {"nope": 1}, "deny"),
    (NO_HI, "if", {"==": [{"var": "payload.text"}, 5]}, "deny"),  # refused when saved, false when run
    (NO_HI, "if", {"==": [{"var": "actor.role"}, "admin"]}, "deny"),
    (NO_HI, "", "junk", "deny"),
    (NO_HI, "", ["a", "rule", "in", "a", "list"], "deny"),
    (LOOK, "then.require_approval.reason", 5, "require_approval"),
    (LOOK, "then.action", ECHO_BODY, "require_approval"),
    (LOOK, "then.extra", 1, "deny"),  # an unknown effect next to it may be a deny
    (LOOK, "then", "require_approval", "require_approval"),
    (LOOK, "when", "always", "require_approval"),
    (LOOK, "enabled", "yes", "require_approval"),
    (LOOK, "id", MISSING, "require_approval"),
]


@pytest.mark.parametrize(
    ("guard", "part", "stored", "held"),
    HELD,
    ids=[f"{g['id']}-{p or 'rule'}-{'missing' if v is MISSING else v!r}" for g, p, v, _ in HELD],
)
def test_a_malformed_stored_guard_holds_the_action_with_its_error_recorded(
    guard: dict[str, Any], part: str, stored: Any, held: str
):
    """Even when its condition, read as written, would not hold (the text is not "hi")."""
    malformed = corrupt(guard, part, stored)
    for text in ("hi", "hello"):
        outcome = run([malformed], payload={"text": text})
        rule_id = malformed["id"] if isinstance(malformed, dict) and isinstance(malformed.get("id"), str) else "rules.0"
        assert [(e["ruleId"], e["code"]) for e in outcome.errors] == [(rule_id, "invalid_rule")], outcome
        assert outcome.for_audit()["ruleErrors"] == outcome.errors and outcome.followups == []
        if held == "deny":
            assert outcome.deny == {"ruleId": rule_id, "error": "invalid_rule", "message": outcome.deny["message"]}
            assert "could not be evaluated" in outcome.deny["message"]
        else:
            assert outcome.deny is None and outcome.require_approval == [rule_id] and outcome.fired == [rule_id]
            assert "could not be evaluated" in outcome.approval_reason


@pytest.mark.parametrize(
    "stored",
    [
        {"action": {"name": "explode"}},
        {"action": {**ECHO_BODY, "extra": 1}},
        {"action": "sendMessage"},
        [{"action": ECHO_BODY}],
    ],
)
def test_a_malformed_follow_up_rule_is_skipped_with_its_error_recorded(stored: Any):
    """Its `then` names only `action`: certainly not a guard, so it does not hold the action."""
    for malformed in (corrupt(NO_HI, "then", stored), corrupt(corrupt(NO_HI, "then", stored), "id", MISSING)):
        outcome = run([malformed], payload={"text": "hi"})
        assert outcome.deny is None and outcome.require_approval == [] and outcome.followups == []
        assert [e["code"] for e in outcome.errors] == ["invalid_rule"] and outcome.fired == []
    sound = corrupt(NO_HI, "then", ECHO)
    for part, value in (("id", MISSING), ("enabled", "yes"), ("when", "always"), ("name", 3)):
        outcome = run([corrupt(sound, part, value)], payload={"text": "hi"})
        assert outcome.followups == [] and [e["code"] for e in outcome.errors] == ["invalid_rule"]


@pytest.mark.parametrize("rules", [{"0": NO_HI}, NO_HI, "junk", 5])
def test_stored_rules_that_are_not_a_list_hold_every_action(rules: Any):
    outcome = run(rules)
    assert outcome.deny is not None and outcome.deny["ruleId"] == "rules" and outcome.deny["error"] == "invalid_rule"
    assert outcome.errors == [
        {"ruleId": "rules", "code": "invalid_rule", "error": "the collaboration's rules are not a list"}
    ]
    assert run(None) == Outcome() and run(rules, "leaveCollaboration", payload={}) == Outcome()


def test_what_a_stored_rule_may_still_say_without_failing_closed():
    """A disabled rule is left alone however it is stored (an owner's choice); a readable `when` on
    another action leaves it out; an id in an older form and a text over today's limits are kept."""
    assert (
        run(
            [corrupt(NO_HI, "enabled", False), corrupt(corrupt(NO_HI, "enabled", False), "then", "junk")],
            payload={"text": "hi"},
        )
        == Outcome()
    )
    assert (
        run([corrupt(corrupt(NO_HI, "when.action", "proposeActivity"), "then", "junk")], payload={"text": "hi"})
        == Outcome()
    )
    older = {**corrupt(NO_HI, "id", "rul_Old-Form"), "name": "N" * 300}
    assert run([older], payload={"text": "hi"}).deny == {"ruleId": "rul_Old-Form", "message": "Say hello."}
    assert run([older], payload={"text": "hello"}) == Outcome()
    sparse = corrupt(corrupt(corrupt(NO_HI, "enabled", MISSING), "when.actor", MISSING), "if", MISSING)  # defaults
    assert run([sparse], payload={"text": "hello"}).deny == {"ruleId": "rul_nohi", "message": "Say hello."}
    bare = corrupt(LOOK, "then.require_approval", None)
    assert run([bare], payload={"text": "hi"}).approval_reason == "Rule “Look first” asks for an owner's approval."
    on_leaving = corrupt(corrupt(NO_HI, "when.action", "leaveCollaboration"), "if", True)  # before it was exempt
    assert run([on_leaving, corrupt(on_leaving, "when.action", "*")], "leaveCollaboration", payload={}) == Outcome()


json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**53), 2**53),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=12),
        st.sampled_from(
            ["deny", "require_approval", "action", "*", "sendMessage", "any", "user", "hi", "payload.text"]
        ),
    ),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.one_of(
                st.text(max_size=8),
                st.sampled_from(
                    ["deny", "require_approval", "action", "message", "reason", "==", "var", "not", "action", "actor"]
                ),
            ),
            inner,
            max_size=3,
        )
    ),
    max_leaves=10,
)
PARTS = [
    "",
    "id",
    "name",
    "enabled",
    "when",
    "when.action",
    "when.actor",
    "when.extra",
    "if",
    "then",
    "then.deny",
    "then.deny.message",
    "then.extra",
    "extra",
]


@PROPERTY
@given(part=st.sampled_from(PARTS), stored=st.one_of(json_values, st.just(MISSING)), approval=st.booleans())
def test_any_json_in_place_of_a_stored_guards_part_never_silently_lets_the_action_through(
    part: str, stored: Any, approval: bool
):
    """The intact guard holds "hi" back. With any JSON value in place of one of its parts, the action
    is still held back, unless the result is a sound rule (one `validate_rule` accepts, with an id)
    that says otherwise, or its `then` names only follow-ups (then the error is recorded)."""
    guard = LOOK if approval else NO_HI
    if approval and part.startswith("then.deny"):
        part = part.replace("then.deny", "then.require_approval").replace(".message", ".reason")
    if stored is MISSING and not part:
        return
    malformed = corrupt(guard, part, stored)
    outcome = run([malformed], payload={"text": "hi"})
    if _sound(malformed):
        return
    if not part or part == "then":
        held = outcome.deny is not None or len(outcome.require_approval) == 1
        assert held or (_only_followups(malformed.get("then")) and outcome.errors), outcome
    elif approval and part.startswith("then."):  # {} or an unknown effect beside it: it may be a deny
        assert outcome.deny is not None or len(outcome.require_approval) == 1, outcome
    elif approval:  # its effect is intact: it asks, as it would have
        assert outcome.deny is None and len(outcome.require_approval) == 1, outcome
    else:
        assert outcome.deny is not None, outcome


def _sound(rule: Any) -> bool:
    try:
        return isinstance(rule, dict) and isinstance(rule.get("id"), str) and validate_rule(rule) is not None
    except ValidationFailed:
        return False


async def test_a_malformed_stored_guard_holds_members_back_who_can_still_leave_and_the_owner_can_remove_it():
    """Over the engine, with the rule written straight into the store (as an older Tandem or an
    edit in MongoDB would leave it): members are held, leaving and the rule actions are not."""
    rt = await Runtime.open(test_settings())
    try:
        cid = await team(rt)
        look = corrupt(corrupt(LOOK, "then.action", ECHO_BODY), "if", True)
        await rt.store.db["collaborations"].update_one(
            {"_id": cid}, {"$set": {"rules": [corrupt(NO_HI, "then.extra", 1), look]}}
        )
        with pytest.raises(RuleDenied) as denied:
            await rt.engine.run("sendMessage", user(EDITOR), cid, {"text": "hello"})
        assert denied.value.details["ruleId"] == "rul_nohi" and denied.value.details["error"] == "invalid_rule"
        await rt.engine.run("leaveCollaboration", user(VIEWER), cid, {})  # a member can always leave
        assert [m["role"] for m in (await rt.store.collaborations.get(cid))["members"]] == ["owner", "editor"]
        await rt.engine.run("removeRule", user(OWNER), cid, {"ruleId": "rul_nohi"})  # the owner can mend it
        asked = await rt.engine.run("sendMessage", user(EDITOR), cid, {"text": "hello"})
        assert asked.approval["rules"] == ["rul_look"] and "could not be evaluated" in asked.approval["reason"]
        await ApprovalService(rt.store, rt.engine).approve(asked.approval["_id"], user(OWNER).id)
        entry = next(e for e in await rt.store.audit.page(cid) if e.get("approvalId") == asked.approval["_id"])
        assert entry["rulesFired"] == ["rul_look"]
        assert [(e["ruleId"], e["code"]) for e in entry["ruleErrors"]] == [("rul_look", "invalid_rule")]
        await rt.engine.run("removeRule", user(OWNER), cid, {"ruleId": "rul_look"})
        assert not hasattr(await rt.engine.run("sendMessage", user(EDITOR), cid, {"text": "hi"}), "approval")
    finally:
        await rt.close()


@pytest.mark.parametrize("stored", ["junk", {"a": 1}, 7, ["junk", 3]], ids=["text", "object", "number", "entries"])
async def test_a_rules_field_that_cannot_be_read_holds_members_who_can_still_leave_and_the_owner_can_mend_it(stored):
    """A `rules` field that is not a list of rules (a bug, an edit in MongoDB) used to fail the reading
    of the collaboration, so every action answered 500, leaving included. It reaches the rules engine
    instead: members are held (fail closed), a member can leave, and the owner's next rule change
    starts again from the readable rules."""
    rt = await Runtime.open(test_settings())
    try:
        cid = await team(rt)
        await rt.store.db["collaborations"].update_one({"_id": cid}, {"$set": {"rules": stored}})
        with pytest.raises(RuleDenied) as denied:
            await rt.engine.run("sendMessage", user(EDITOR), cid, {"text": "hello"})
        assert denied.value.details["error"] == "invalid_rule"
        await rt.engine.run("leaveCollaboration", user(VIEWER), cid, {})  # a member can always leave
        await rt.engine.run("addRule", user(OWNER), cid, {"rule": NO_HI})  # the owner mends it
        assert [r["id"] for r in (await rt.store.collaborations.get(cid))["rules"]] == ["rul_nohi"]
        await rt.engine.run("sendMessage", user(EDITOR), cid, {"text": "hello"})
    finally:
        await rt.close()


# -- budgets (gathered from test_rules.py) --------------------------------------------


def test_a_deny_rule_that_runs_out_of_steps_fails_closed():
    stored = {**rule(name="Keep it short"), "if": {"or": [False] * (MAX_STEPS + 10)}}
    outcome = run([stored])
    assert outcome.deny == {
        "ruleId": stored["id"],
        "error": "step_limit",
        "message": "Rule “Keep it short” could not be evaluated (took more than 1000 steps), so it refuses the action.",
    }
    assert outcome.fired == [stored["id"]] and [e["code"] for e in outcome.errors] == ["step_limit"]
    with pytest.raises(RuleDenied) as caught:
        outcome.raise_if_denied()
    assert caught.value.details == {"ruleId": stored["id"], "message": outcome.deny["message"], "error": "step_limit"}


def test_an_approval_rule_that_runs_out_of_steps_still_asks_for_approval():
    stored = {**rule(name="Look first", then={"require_approval": {}}), "if": {"or": [False] * (MAX_STEPS + 10)}}
    outcome = run([stored])
    assert outcome.require_approval == [stored["id"]] and outcome.deny is None
    assert outcome.approval_reason == (
        "Rule “Look first” could not be evaluated (took more than 1000 steps), so the action needs an owner's approval."
    )


def test_guards_that_run_out_of_time_fail_closed():
    approval = rule(name="Look first", then={"require_approval": {}}, **{"if": {"and": [True, True, True, True]}})
    deny = rule(name="Never")
    outcome = run([approval, deny], clock=ticking_clock(), budget_seconds=0.003)
    assert outcome.deny["ruleId"] == deny["id"] and outcome.deny["error"] == "time_budget"
    assert "could not be evaluated (rules took longer than 3 ms)" in outcome.deny["message"]
    assert [e["code"] for e in outcome.errors] == ["time_budget", "time_budget"]


def test_guards_run_before_follow_up_rules_whatever_the_stored_order():
    slow = rule(then=ECHO, **{"if": {"and": [True, True, True, True, True]}})
    deny = rule(when={"action": "sendMessage"}, then={"deny": {"message": "Not today."}})
    outcome = run([slow, slow, deny], clock=ticking_clock(), budget_seconds=0.003)
    assert outcome.deny == {"ruleId": deny["id"], "message": "Not today."}  # evaluated first, in time
    approval = rule(then={"require_approval": {}})
    outcome = run([slow, approval], clock=ticking_clock(), budget_seconds=0.003)
    assert outcome.require_approval == [approval["id"]] and outcome.errors[0]["ruleId"] == slow["id"]


def test_a_members_crafted_input_cannot_skip_the_owners_deny_rule():
    text = {"var": "payload.text"}
    heavy = {"or": [{"contains": [{"lower": {"cat": [text, text, text]}}, f"zzz{i}"]} for i in range(14)]}
    crafted = {"text": "İ" * 4000}
    for effect in (ECHO, {"deny": {"message": "x"}}, {"require_approval": {}}):
        rules = [rule(name=f"heavy {i}", then=effect, **{"if": heavy}) for i in range(MAX_RULES - 1)]
        deny = rule(when={"action": "sendMessage"}, then={"deny": {"message": "denied"}})
        outcome = run([*rules, deny], payload=crafted)
        assert outcome.deny is not None, effect
        assert outcome.deny["ruleId"] in {deny["id"], rules[0]["id"]}


# -- end to end, over REST ---------------------------------------------------------


NO_RUSH = {
    "name": "No rush jobs",
    "when": {"action": "proposeActivity"},
    "if": {"<": [{"var": "payload.dueAt"}, {"+": [{"var": "now"}, {"hours": 24}]}]},
    "then": {"deny": {"message": "Nothing due within a day."}},
}
FAR_CHECK = {
    "name": "Look at far plans",
    "when": {"action": "scheduleActivity"},
    "if": {"in": [{"weekday": {"+": [{"var": "payload.scheduledFor"}, {"days": 3_000_000}]}}, [6, 7]]},
    "then": {"require_approval": {"reason": "Far plans need a look."}},
}


@pytest.fixture
async def api():
    settings = test_settings(action_rate_limit=1000)
    async with LiveServer(build_api(settings), settings) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
            client.settings = settings
            yield client


async def call(api, email, method, path, body=None):
    headers = {"authorization": f"Bearer {token(api.settings, email)}"}
    return await api.request(method, path, json=body, headers=headers)


async def action(api, email, name, cid, payload):
    return await call(api, email, "POST", f"/api/actions/{name}", {"collaborationId": cid, "payload": payload})


async def test_a_member_cannot_dodge_a_deny_rule_by_leaving_a_field_out(api):
    cid = (await call(api, OWNER, "POST", "/api/collaborations", {"title": "Club"})).json()["id"]
    await action(api, OWNER, "addMember", cid, {"email": EDITOR, "role": "editor"})
    rule_id = (await action(api, OWNER, "addRule", cid, {"rule": NO_RUSH})).json()["result"]["ruleId"]
    r = await action(api, EDITOR, "proposeActivity", cid, {"title": "Hike"})  # no dueAt: the condition errors
    assert r.status_code == 403, r.text
    error = r.json()["error"]
    assert error["code"] == "rule_denied" and error["details"]["ruleId"] == rule_id
    assert error["details"]["error"] == "type_error"
    r = await action(api, EDITOR, "proposeActivity", cid, {"title": "Hike", "dueAt": "2999-01-01T00:00:00Z"})
    assert r.status_code == 200, r.text  # the rule as meant: far enough ahead passes


async def test_an_overflowing_approval_guard_asks_and_its_error_is_in_the_audit(api):
    cid = (await call(api, OWNER, "POST", "/api/collaborations", {"title": "Club"})).json()["id"]
    await action(api, OWNER, "addMember", cid, {"email": EDITOR, "role": "editor"})
    activity = (await action(api, EDITOR, "proposeActivity", cid, {"title": "Hike"})).json()["result"]["activityId"]
    rule_id = (await action(api, OWNER, "addRule", cid, {"rule": FAR_CHECK})).json()["result"]["ruleId"]
    r = await action(
        api, EDITOR, "scheduleActivity", cid, {"activityId": activity, "scheduledFor": "2999-12-31T00:00:00Z"}
    )
    assert r.status_code == 202, r.text
    approval = r.json()["approval"]
    assert approval["rules"] == [rule_id] and "could not be evaluated" in approval["reason"]
    r = await call(api, OWNER, "POST", f"/api/approvals/{approval['id']}/approve")
    assert r.status_code == 200, r.text
    entries = (await call(api, OWNER, "GET", f"/api/collaborations/{cid}/audit")).json()["entries"]
    applied = next(e for e in entries if e.get("approvalId") == approval["id"])
    assert applied["rulesFired"] == [rule_id] and applied["ruleErrors"][0]["ruleId"] == rule_id
    assert "out of range" in applied["ruleErrors"][0]["error"]
