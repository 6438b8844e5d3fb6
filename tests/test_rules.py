"""The rule language: operators, effects, validation with exact paths, and the limits."""

from __future__ import annotations

import itertools
import json
import re
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from backend.errors import RuleDenied, ValidationFailed
from backend.rules import (
    FOLLOWUP_DEPTH_LIMIT,
    MAX_RULES,
    Outcome,
    evaluate,
    validate_rule,
    validate_rule_set,
)
from backend.rules.context import build_env
from backend.rules.interpreter import Budget, evaluate_expression
from backend.rules.language import OPERATORS, RuleError
from backend.rules.limits import (
    MAX_DEPTH,
    MAX_NODES,
    MAX_RULE_BYTES,
    MAX_STEPS,
    STEP_CASE_CHARS,
    STEP_ITEMS,
    TIME_BUDGET_SECONDS,
)

NOW = datetime(2026, 11, 18, 12, 0, tzinfo=timezone.utc)  # a Wednesday
OWNER = {"type": "user", "id": "u-owner"}
EDITOR = {"type": "user", "id": "u-editor"}
AI = {"type": "ai"}


def collaboration(**changes: Any) -> dict[str, Any]:
    doc = {
        "_id": "col_1",
        "title": "Climbing club",
        "status": "active",
        "version": 7,
        "members": [
            {"userId": "u-owner", "email": "o@example.com", "role": "owner"},
            {"userId": "u-editor", "email": "e@example.com", "role": "editor"},
            {"userId": "u-viewer", "email": "v@example.com", "role": "viewer"},
        ],
        "activities": [
            {
                "id": "act_1",
                "title": "Bouldering",
                "status": "scheduled",
                "createdBy": "u-editor",
                "dueAt": datetime(2026, 11, 20, 18, 0),
                "scheduledFor": "2026-11-20T17:00:00Z",
                "assigneeId": None,
            },
        ],
        "settings": {"protectedActions": [], "timezone": None},
        "rules": [],
    }
    doc.update(changes)
    return doc


def rule(**fields: Any) -> dict[str, Any]:
    return validate_rule({"name": "test rule", "when": {"action": "*"}, "then": {"deny": {"message": "No."}}, **fields})


def run(
    rules: list[dict[str, Any]],
    action: str = "sendMessage",
    actor: dict[str, Any] = EDITOR,
    payload: dict[str, Any] | None = None,
    doc: dict[str, Any] | None = None,
    depth: int = 0,
    **kwargs: Any,
) -> Outcome:
    return evaluate(
        rules,
        action=action,
        actor=actor,
        payload={"text": "hi"} if payload is None else payload,
        collaboration=doc or collaboration(),
        now=NOW,
        depth=depth,
        **kwargs,
    )


def value(
    expr: Any,
    action: str = "scheduleActivity",
    payload: dict[str, Any] | None = None,
    actor: dict[str, Any] = EDITOR,
    doc: dict[str, Any] | None = None,
) -> Any:
    payload = {"activityId": "act_1", "scheduledFor": "2026-11-21T10:00:00Z"} if payload is None else payload
    env = build_env(action=action, actor=actor, payload=payload, collaboration=doc or collaboration(), now=NOW)
    return evaluate_expression(expr, env, Budget())


def refused(raw: Any, **kwargs: Any) -> list[dict[str, str]]:
    with pytest.raises(ValidationFailed) as caught:
        validate_rule(raw, **kwargs)
    assert caught.value.code == "validation_failed" and caught.value.status == 422
    return caught.value.fields


def only_error(raw: Any) -> tuple[str, str]:
    fields = refused(raw)
    assert len(fields) == 1, fields
    return fields[0]["path"], fields[0]["message"]


NOW_VAR = {"var": "now"}
DAY = timedelta(days=1)

# -- the examples of docs/rules.md ----------------------------------------------

EDITOR_CANCEL_NEEDS_APPROVAL = {
    "name": "Editors' cancellations need my approval",
    "when": {"action": "cancelActivity", "actor": "user"},
    "if": {"==": [{"var": "actor.role"}, "editor"]},
    "then": {"require_approval": {"reason": "Editors cancel only with an owner's approval."}},
}
NO_WEEKENDS = {
    "name": "Nobody schedules on weekends",
    "when": {"action": "scheduleActivity"},
    "if": {"in": [{"weekday": {"var": "payload.scheduledFor"}}, [6, 7]]},
    "then": {"deny": {"message": "We do not schedule on weekends."}},
}
THANK_YOU = {
    "name": "Thank whoever completes an activity",
    "when": {"action": "completeActivity"},
    "then": {
        "action": {
            "name": "sendMessage",
            "payload": {
                "text": {
                    "cat": [
                        "Thanks ",
                        {"var": "actor.id"},
                        " for finishing ",
                        {"var": "collaboration.activity.title"},
                        "!",
                    ]
                }
            },
        }
    },
}


def test_an_editors_cancellation_needs_approval_but_an_owners_does_not():
    stored = validate_rule(EDITOR_CANCEL_NEEDS_APPROVAL)
    by_editor = run([stored], "cancelActivity", EDITOR, {"activityId": "act_1"})
    assert by_editor.require_approval == [stored["id"]]
    assert by_editor.approval_reason == "Editors cancel only with an owner's approval."
    assert by_editor.fired == [stored["id"]] and by_editor.deny is None
    assert run([stored], "cancelActivity", OWNER, {"activityId": "act_1"}).require_approval == []
    assert run([stored], "cancelActivity", AI, {"activityId": "act_1"}).require_approval == []  # actor: user


def test_nobody_schedules_on_weekends():
    stored = validate_rule(NO_WEEKENDS)
    saturday = run([stored], "scheduleActivity", OWNER, {"activityId": "act_1", "scheduledFor": "2026-11-21T10:00:00Z"})
    assert saturday.deny == {"ruleId": stored["id"], "message": "We do not schedule on weekends."}
    with pytest.raises(RuleDenied) as caught:
        saturday.raise_if_denied()
    assert caught.value.status == 403 and caught.value.code == "rule_denied"
    assert caught.value.details == {"ruleId": stored["id"], "message": "We do not schedule on weekends."}
    monday = run([stored], "scheduleActivity", OWNER, {"activityId": "act_1", "scheduledFor": "2026-11-23T10:00:00Z"})
    assert monday.deny is None and monday.fired == []
    monday.raise_if_denied()


def test_weekends_are_the_collaborations_weekends_when_it_has_a_time_zone():
    stored = validate_rule(NO_WEEKENDS)
    late_friday_utc = {"activityId": "act_1", "scheduledFor": "2026-11-20T23:30:00Z"}
    assert run([stored], "scheduleActivity", OWNER, late_friday_utc).deny is None
    in_berlin = collaboration(settings={"timezone": "Europe/Berlin"})  # already Saturday there
    assert run([stored], "scheduleActivity", OWNER, late_friday_utc, in_berlin).deny is not None


def test_completing_an_activity_posts_a_thank_you():
    stored = validate_rule(THANK_YOU)
    outcome = run([stored], "completeActivity", EDITOR, {"activityId": "act_1"})
    assert outcome.followups == [
        {
            "ruleId": stored["id"],
            "action": "sendMessage",
            "payload": {"text": "Thanks u-editor for finishing Bouldering!"},
        }
    ]
    assert outcome.fired == [stored["id"]]
    assert outcome.for_audit() == {"rulesFired": [stored["id"]]}


# -- operators -----------------------------------------------------------------

SCHEDULED = {"var": "payload.scheduledFor"}  # 2026-11-21T10:00:00Z, a Saturday


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ({"==": [1, 1.0]}, True),
        ({"==": [1, True]}, False),
        ({"==": ["1", 1]}, False),
        ({"==": [None, None]}, True),
        ({"==": [[1, "a", [True]], [1, "a", [True]]]}, True),
        ({"==": [[1], [True]]}, False),
        ({"==": [{"date": "2026-11-18T13:00:00+01:00"}, NOW_VAR]}, True),
        ({"!=": ["a", "b"]}, True),
        ({"!=": [{"var": "collaboration.status"}, "active"]}, False),
        ({"<": [1, 2]}, True),
        ({"<": ["b", "a"]}, False),
        ({"<=": [2, 2]}, True),
        ({">": [SCHEDULED, NOW_VAR]}, True),
        ({">=": [{"hours": 24}, {"days": 1}]}, True),
        ({"and": [True, True, False]}, False),
        ({"and": [False, {"lower": 1}]}, False),  # stops at the first false
        ({"or": [False, True]}, True),
        ({"or": [True, {"lower": 1}]}, True),  # stops at the first true
        ({"not": True}, False),
        ({"not": [False]}, True),
        ({"in": ["editor", ["owner", "editor"]]}, True),
        ({"in": [3, [1, 2]]}, False),
        ({"in": ["cat", "concatenate"]}, True),
        ({"contains": ["concatenate", "cat"]}, True),
        ({"contains": [[1, 2], 2]}, True),
        ({"+": [1, 2, 3.5]}, 6.5),
        ({"-": [10, 4]}, 6),
        ({"-": [3]}, -3),
        ({"*": [2, 3, 4]}, 24),
        ({"/": [7, 2]}, 3.5),
        ({"%": [7, 3]}, 1),
        ({"+": [NOW_VAR, {"days": 1}]}, NOW + DAY),
        ({"+": [{"hours": 2}, NOW_VAR]}, NOW + timedelta(hours=2)),
        ({"-": [NOW_VAR, {"minutes": 30}]}, NOW - timedelta(minutes=30)),
        ({"-": [SCHEDULED, NOW_VAR]}, timedelta(days=2, hours=22)),
        ({"-": [{"days": 1}]}, -DAY),
        ({"*": [{"days": 1}, 2]}, 2 * DAY),
        ({"/": [{"days": 1}, {"hours": 6}]}, 4.0),
        ({"/": [{"days": 1}, 4]}, timedelta(hours=6)),
        ({"if": [True, "a", "b"]}, "a"),
        ({"if": [False, "a", {"==": [1, 1]}, "b", "c"]}, "b"),
        ({"if": [False, "a", False, "b", "c"]}, "c"),
        ({"date": "2026-11-21T10:00:00Z"}, datetime(2026, 11, 21, 10, tzinfo=timezone.utc)),
        ({"date": "2026-11-21"}, datetime(2026, 11, 21, tzinfo=timezone.utc)),
        ({"weekday": NOW_VAR}, 3),
        ({"weekday": SCHEDULED}, 6),
        ({"hour": NOW_VAR}, 12),
        ({"len": "hello"}, 5),
        ({"len": [[1, 2, 3]]}, 3),
        ({"lower": "HeLLo"}, "hello"),
        ({"cat": ["a", 1, 2.0, 2.5, True, NOW_VAR]}, "a122.5true2026-11-18T12:00:00.000Z"),
        ([1, {"+": [1, 1]}], [1, 2]),
        ({"var": "payload.activityId"}, "act_1"),
        ({"var": "payload.scheduledFor"}, datetime(2026, 11, 21, 10, tzinfo=timezone.utc)),
        ({"var": "payload.nothing"}, None),
        ({"var": ["payload.nothing", "fallback"]}, "fallback"),
        ({"var": "actor.role"}, "editor"),
        ({"var": "actor.type"}, "user"),
        ({"var": "collaboration.memberCount"}, 3),
        ({"var": "collaboration.activityCount"}, 1),
        ({"var": "collaboration.openActivityCount"}, 1),
        ({"var": "collaboration.version"}, 7),
        ({"var": "collaboration.activity.title"}, "Bouldering"),
        ({"var": "collaboration.activity.dueAt"}, datetime(2026, 11, 20, 18, tzinfo=timezone.utc)),
        ({"var": "collaboration.activity.scheduledFor"}, datetime(2026, 11, 20, 17, tzinfo=timezone.utc)),
        ({"var": "now"}, NOW),
    ],
)
def test_operator(expr: Any, expected: Any):
    result = value(expr)
    assert result == expected and type(result) is type(expected)


def test_weekday_and_hour_follow_the_collaborations_time_zone():
    tokyo = collaboration(settings={"timezone": "Asia/Tokyo"})
    assert value({"hour": NOW_VAR}, doc=tokyo) == 21
    assert value({"weekday": {"date": "2026-11-18T20:00:00Z"}}, doc=tokyo) == 4
    nowhere = collaboration(settings={"timezone": "Not/AZone"})  # unknown zone: UTC
    assert value({"hour": NOW_VAR}, doc=nowhere) == 12


def test_actor_variables_for_the_ai_and_for_non_members():
    assert value({"var": "actor.role"}, actor=AI) is None
    assert value({"var": "actor.type"}, actor=AI) == "ai"
    assert value({"var": "actor.role"}, actor={"type": "user", "id": "stranger"}) is None


def test_activity_counts_count_every_activity_and_the_open_ones():
    """Open: proposed or scheduled (still to do); done and cancelled ones count only in activityCount."""
    doc = collaboration(
        activities=[
            {"id": f"act_{i}", "status": status}
            for i, status in enumerate(["proposed", "scheduled", "done", "cancelled", "proposed"])
        ]
        + ["not an activity", {"id": "act_odd"}]
    )
    assert value({"var": "collaboration.activityCount"}, doc=doc) == 7
    assert value({"var": "collaboration.openActivityCount"}, doc=doc) == 3
    for odd in ({"activities": None}, {"activities": "many"}):
        assert value({"var": "collaboration.activityCount"}, doc=collaboration(**odd)) == 0
        assert value({"var": "collaboration.openActivityCount"}, doc=collaboration(**odd)) == 0


@pytest.mark.parametrize("action", ["proposeActivity", "sendMessage", "updateDetails", "*"])
def test_the_activity_counts_are_known_on_every_action(action: str):
    """Unlike collaboration.activity (only on actions that name an activity), the counts are
    the collaboration's: a cap on proposals is a proposeActivity rule."""
    for name in ("collaboration.activityCount", "collaboration.openActivityCount"):
        saved = validate_rule(
            {
                "name": "cap",
                "when": {"action": action},
                "if": {">=": [{"var": name}, 20]},
                "then": {"deny": {"message": "No."}},
            }
        )
        assert saved["if"] == {">=": [{"var": name}, 20]}


def test_the_activity_is_null_when_the_payload_names_none_or_an_unknown_one():
    assert value({"var": "collaboration.activity.title"}, payload={"activityId": "act_404"}) is None
    assert value({"var": "collaboration.activity"}, action="sendMessage", payload={"text": "x"}) is None


@pytest.mark.parametrize(
    ("expr", "error"),
    [
        ({"lower": 1}, "lower cannot take (number)"),
        ({"<": [1, "a"]}, "< cannot take (number, string)"),
        ({"+": [NOW_VAR, 1]}, "+ cannot take (date, number)"),
        ({"/": [1, 0]}, "/: division by zero"),
        ({"%": [1, 0]}, "%: division by zero"),
        ({"/": [{"days": 1}, 0]}, "/: division by zero"),
        ({"/": [{"days": 1}, {"minutes": 0}]}, "/: division by zero"),
        ({"minutes": 2**53}, "minutes: result out of range (durations reach 999999999 days"),
        ({"*": [{"days": 100_000}, 100_000]}, "*: result out of range"),
        ({"/": [{"days": 1}, 1e-300]}, "/: result out of range"),
        ({"date": "next tuesday"}, "not an ISO 8601 date"),
        ({"+": [9007199254740992, 1]}, "number out of range"),
        ({"*": [{"days": 1}, 1e15]}, "*: result out of range"),
        ({"days": 1e300}, "number out of range"),
        (
            {"+": [NOW_VAR, {"days": 3_000_000}]},
            "+: result out of range (durations reach 999999999 days, dates the years",
        ),
        ({"not": "yes"}, "not cannot take (string)"),
        ({"and": [True, 1]}, "and cannot take number"),
        ({"if": [1, 2, 3]}, "if cannot take number"),
        ({"cat": [[1]]}, "cat cannot take list"),
        ({"len": {"var": "payload.nothing"}}, "len cannot take (null)"),
        ({"nope": 1}, "unknown operator 'nope'"),
        ({"==": [1]}, "== cannot take 1 arguments"),
        ({"a": 1, "b": 2}, "not an expression"),
    ],
)
def test_a_runtime_error_is_a_rule_error(expr: Any, error: str):
    with pytest.raises(RuleError) as caught:
        value(expr)
    assert error in str(caught.value)


# -- effects -------------------------------------------------------------------


def test_a_follow_up_rule_that_errors_does_not_fire_and_is_reported():
    stored = rule(when={"action": "proposeActivity"}, then=ECHO, **{"if": {"<": [{"var": "payload.dueAt"}, NOW_VAR]}})
    outcome = run([stored], "proposeActivity", EDITOR, {"title": "Hike"})  # no dueAt: null
    assert outcome.deny is None and outcome.fired == []
    assert outcome.errors == [{"ruleId": stored["id"], "code": "type_error", "error": "< cannot take (null, date)"}]
    assert outcome.for_audit() == {"ruleErrors": outcome.errors}


def test_deny_wins_and_stops_evaluation():
    approval = rule(then={"require_approval": {}})
    followup = rule(then={"action": {"name": "sendMessage", "payload": {"text": "later"}}})
    deny = rule()
    after = rule(then={"deny": {"message": "Not reached."}})
    outcome = run([approval, followup, deny, after])
    assert outcome.deny == {"ruleId": deny["id"], "message": "No."}
    assert outcome.fired == [deny["id"]]
    assert outcome.require_approval == [] and outcome.followups == []


def test_approval_reasons_are_joined_and_default_to_the_rules_name():
    first = rule(name="Big changes", then={"require_approval": {}})
    second = rule(then={"require_approval": {"reason": "Weekend plans need a look."}})
    outcome = run([first, second], actor=OWNER)
    assert outcome.require_approval == [first["id"], second["id"]]
    assert outcome.approval_reason == "Rule “Big changes” asks for an owner's approval. Weekend plans need a look."


def test_a_followup_payload_is_rendered_with_dates_as_iso_and_null_optionals_left_out():
    stored = validate_rule(
        {
            "name": "Propose a retro the day after",
            "when": {"action": "completeActivity"},
            "then": {
                "action": {
                    "name": "proposeActivity",
                    "payload": {
                        "title": {"cat": ["Retro: ", {"var": "collaboration.activity.title"}]},
                        "dueAt": {"+": [NOW_VAR, {"days": 1}]},
                        "assigneeId": {"var": "collaboration.activity.assigneeId"},
                    },
                }
            },
        }
    )
    outcome = run([stored], "completeActivity", EDITOR, {"activityId": "act_1"})
    assert outcome.followups == [
        {
            "ruleId": stored["id"],
            "action": "proposeActivity",
            "payload": {"title": "Retro: Bouldering", "dueAt": "2026-11-19T12:00:00.000Z"},
        }
    ]


def test_a_followup_missing_a_required_value_at_run_time_is_an_error():
    stored = rule(
        when={"action": "cancelActivity"},
        then={"action": {"name": "sendMessage", "payload": {"text": {"var": "payload.reason"}}}},
    )
    outcome = run([stored], "cancelActivity", OWNER, {"activityId": "act_1"})
    assert outcome.followups == []
    assert outcome.errors == [
        {"ruleId": stored["id"], "code": "type_error", "error": "sendMessage.text must be string, not null"}
    ]


def test_followups_stop_at_the_depth_limit():
    loop = rule(when={"action": "sendMessage"}, then={"action": {"name": "sendMessage", "payload": {"text": "echo"}}})
    for depth in range(FOLLOWUP_DEPTH_LIMIT):
        assert run([loop], actor={"type": "rule", "id": loop["id"]}, depth=depth).followups != []
    stopped = run([loop], actor={"type": "rule", "id": loop["id"]}, depth=FOLLOWUP_DEPTH_LIMIT)
    assert stopped.followups == [] and stopped.fired == []
    assert [e["code"] for e in stopped.errors] == ["followup_depth"]
    assert FOLLOWUP_DEPTH_LIMIT == 3


def test_when_selects_the_action_and_the_kind_of_actor():
    on_ai = rule(when={"action": "sendMessage", "actor": "ai"})
    on_users = rule(when={"action": "sendMessage", "actor": "user"})
    on_proposals = rule(when={"action": "proposeActivity"})
    on_anything = rule(when={"action": "*", "actor": "any"})
    rules = [on_ai, on_users, on_proposals, on_anything]
    assert run(rules, actor=AI).deny["ruleId"] == on_ai["id"]
    assert run(rules, actor=EDITOR).deny["ruleId"] == on_users["id"]
    assert run(rules, actor={"type": "rule", "id": "rul_x"}).deny["ruleId"] == on_anything["id"]
    assert run(rules[:2], "proposeActivity", AI, {"title": "x"}).deny is None


def test_disabled_rules_and_rule_actions_are_left_alone():
    assert run([rule(enabled=False)]).deny is None
    for action in ("addRule", "updateRule", "removeRule", "createCollaboration", "leaveCollaboration"):
        assert run([rule()], action, OWNER, {}) == Outcome()


def test_no_rules_no_outcome():
    outcome = run([])
    assert outcome == Outcome() and outcome.for_audit() == {}


def test_malformed_stored_rules_are_reported_not_raised():
    """Each in `errors`; a rule without an id is named by its place. Malformed rules that may be
    guards hold the action back (tests/test_security_rules.py): the first of these denies."""
    outcome = run(
        ["junk", {"id": "rul_x", "when": {"action": "*"}, "then": {"explode": {}}}, {"id": "rul_y", "when": "always"}]
    )
    assert [(e["ruleId"], e["code"]) for e in outcome.errors] == [("rules.0", "invalid_rule")]
    assert outcome.deny["ruleId"] == "rules.0"
    followup = {"id": "rul_x", "name": "echo", "when": {"action": "*"}, "then": {"action": {"name": "explode"}}}
    outcome = run([followup, {**followup, "id": "rul_y", "when": "always"}, {**followup, "id": None}])
    assert [(e["ruleId"], e["code"]) for e in outcome.errors] == [
        ("rul_x", "invalid_rule"),
        ("rul_y", "invalid_rule"),
        ("rules.2", "invalid_rule"),
    ]
    assert outcome.deny is None and outcome.followups == [] and outcome.fired == []


# -- validation ----------------------------------------------------------------

BASE = {"name": "r", "when": {"action": "scheduleActivity"}, "then": {"deny": {"message": "No."}}}


def with_if(condition: Any, **changes: Any) -> dict[str, Any]:
    return {**BASE, "if": condition, **changes}


def test_a_valid_rule_is_normalised():
    stored = validate_rule(
        {"name": "  Weekend guard ", "when": {"action": "sendMessage"}, "then": {"require_approval": None}}
    )
    assert stored["id"].startswith("rul_") and len(stored["id"]) == 30
    assert stored == {
        "id": stored["id"],
        "name": "Weekend guard",
        "enabled": True,
        "when": {"action": "sendMessage", "actor": "any"},
        "if": True,
        "then": {"require_approval": {}},
    }
    assert validate_rule({**stored, "enabled": False}) == {**stored, "enabled": False}  # id kept


def test_the_normalised_rule_is_a_copy():
    raw = with_if({"==": [{"var": "payload.activityId"}, "act_1"]})
    stored = validate_rule(raw)
    raw["if"]["=="][1] = "act_2"
    assert stored["if"] == {"==": [{"var": "payload.activityId"}, "act_1"]}


@pytest.mark.parametrize(
    ("raw", "path", "message"),
    [
        ("a rule", "rule", "must be an object"),
        ({**BASE, "colour": "red"}, "rule.colour", "unknown field"),
        ({**BASE, "id": "act_1"}, "rule.id", "must be a rule id"),
        ({"when": {"action": "*"}, "then": {"deny": {"message": "x"}}}, "rule.name", "is required"),
        ({**BASE, "name": "   "}, "rule.name", "non-empty"),
        ({**BASE, "name": "n" * 101}, "rule.name", "at most 100"),
        ({**BASE, "enabled": "yes"}, "rule.enabled", "true or false"),
        ({**BASE, "when": None}, "rule.when", "is required"),
        ({**BASE, "when": {}}, "rule.when.action", "is required"),
        ({**BASE, "when": {"action": "deleteEverything"}}, "rule.when.action", "unknown action 'deleteEverything'"),
        ({**BASE, "when": {"action": "removeRule"}}, "rule.when.action", "rules do not apply to removeRule"),
        ({**BASE, "when": {"action": "*", "actor": "robot"}}, "rule.when.actor", "user, ai, any"),
        ({**BASE, "when": {"action": "*", "who": "x"}}, "rule.when.who", "unknown field"),
        (with_if("yes"), "rule.if", "must be true or false, not string"),
        (with_if(None), "rule.if", "must be true or false, not null"),
        (with_if({"and": [True, {">=": ["a", 1]}]}), "rule.if.and.1.>=.1", ">= takes string here, not number"),
        (
            with_if({"and": [True, {">=": [True, 1]}]}),
            "rule.if.and.1.>=.0",
            ">= takes number, string, date or duration",
        ),
        (with_if({"and": [{"frobnicate": 1}]}), "rule.if.and.0.frobnicate", "unknown operator 'frobnicate'"),
        (with_if({"==": [1, 1], "!=": [1, 2]}), "rule.if", "one operator object"),
        (with_if({}), "rule.if", "one operator object"),
        (with_if({"not": [True, False]}), "rule.if.not", "takes 1 argument, not 2"),
        (with_if({"and": []}), "rule.if.and", "takes at least 1 argument, not 0"),
        (with_if({"-": [1, 2, 3]}), "rule.if.-", "takes 1 to 2 arguments, not 3"),
        (with_if({"if": [True, True, False, True]}), "rule.if.if", "odd number"),
        (with_if({"if": [1, True, False]}), "rule.if.if.0", "a condition must be true or false, not number"),
        (
            with_if({"==": [{"var": "payload.text"}, "x"]}),
            "rule.if.==.0.var",
            "unknown variable 'payload.text': the payload of scheduleActivity has activityId, scheduledFor",
        ),
        (with_if({"==": [{"var": ["payload.txt", ""]}, "x"]}), "rule.if.==.0.var.0", "unknown variable 'payload.txt'"),
        (
            with_if({"==": [{"var": "secrets.key"}, "x"]}),
            "rule.if.==.0.var",
            "variables start with payload, actor, collaboration or now",
        ),
        (with_if({"==": [{"var": "actor"}, "x"]}), "rule.if.==.0.var", "actor is an object; name one of its fields"),
        (with_if({"==": [{"var": "now.day"}, 1]}), "rule.if.==.0.var", "now is a date; it has no fields"),
        (with_if({"==": [{"var": "actor.id.length"}, 1]}), "rule.if.==.0.var", "actor.id is a string; it has no field"),
        (with_if({"==": [{"var": 3}, 1]}), "rule.if.==.0.var", "must be a variable name"),
        (
            {**with_if({"==": [{"var": "collaboration.activity.title"}, "x"]}), "when": {"action": "sendMessage"}},
            "rule.if.==.0.var",
            "collaboration.activity is only known for actions on an activity",
        ),
        (
            with_if({"==": [{"var": "actor.role"}, "admin"]}),
            "rule.if.==.1",
            "can never be 'admin': the value is one of owner, editor, viewer",
        ),
        (with_if({"==": ["robot", {"var": "actor.type"}]}), "rule.if.==.0", "can never be 'robot'"),
        (with_if({"in": [{"var": "actor.role"}, ["owner", "boss"]]}), "rule.if.in.1.1", "can never be 'boss'"),
        (
            with_if({"==": [{"var": "payload.scheduledFor"}, "tomorrow"]}),
            "rule.if.==.1",
            "compares date with string: never equal",
        ),
        (with_if({"<": [{"date": "someday"}, {"var": "now"}]}), "rule.if.<.0.date", "not an ISO 8601 date"),
        (with_if({">": [{"/": [{"var": "collaboration.version"}, 0]}, 1]}), "rule.if.>.0./.1", "divides by zero"),
        (with_if({">": [1e300, 1]}), "rule.if.>.0", "out of range"),
        (
            with_if({"<": [{"var": "payload.scheduledFor"}, {"+": [{"var": "now"}, 1]}]}),
            "rule.if.<.1.+.1",
            "+ takes duration here, not number",
        ),
        (
            with_if({"<": [{"+": [{"var": "now"}, {"days": 1}, "x"]}, {"var": "now"}]}),
            "rule.if.<.0.+.2",
            "+ takes duration here, not string",
        ),
        (
            with_if({"==": [{"cat": ["a", [1]]}, "a"]}),
            "rule.if.==.0.cat.1",
            "cat takes boolean, number, string or date, not list",
        ),
        (with_if({"or": [True, "maybe"]}), "rule.if.or.1", "or takes boolean, not string"),
        (
            with_if({"==": [{"lower": {"var": "collaboration.version"}}, "x"]}),
            "rule.if.==.0.lower",
            "lower takes string here, not number",
        ),
        ({**BASE, "then": None}, "rule.then", "must be one effect"),
        ({**BASE, "then": {"deny": {"message": "x"}, "require_approval": {}}}, "rule.then", "must be one effect"),
        ({**BASE, "then": {"explode": {}}}, "rule.then.explode", "unknown effect"),
        ({**BASE, "then": {"deny": {}}}, "rule.then.deny.message", "is required"),
        ({**BASE, "then": {"deny": "no"}}, "rule.then.deny", "must be an object with message"),
        ({**BASE, "then": {"deny": {"message": "x", "code": 1}}}, "rule.then.deny.code", "unknown field"),
        ({**BASE, "then": {"deny": {"message": "m" * 501}}}, "rule.then.deny.message", "at most 500"),
        ({**BASE, "then": {"require_approval": {"reason": 5}}}, "rule.then.require_approval.reason", "non-empty"),
        ({**BASE, "then": {"action": {"payload": {}}}}, "rule.then.action.name", "is required"),
        (
            {**BASE, "then": {"action": {"name": "addMember", "payload": {}}}},
            "rule.then.action.name",
            "addMember cannot be a follow-up: a rule may run updateDetails, proposeActivity",
        ),
        ({**BASE, "then": {"action": {"name": "addRule"}}}, "rule.then.action.name", "addRule cannot be a follow-up"),
        ({**BASE, "then": {"action": {"name": "launch"}}}, "rule.then.action.name", "unknown action 'launch'"),
        (
            {**BASE, "then": {"action": {"name": "sendMessage", "payload": {}}}},
            "rule.then.action.payload",
            "sendMessage needs text",
        ),
        (
            {**BASE, "then": {"action": {"name": "sendMessage", "payload": []}}},
            "rule.then.action.payload",
            "must be an object",
        ),
        (
            {**BASE, "then": {"action": {"name": "sendMessage", "payload": {"text": "x", "pin": True}}}},
            "rule.then.action.payload.pin",
            "unknown field: sendMessage has text",
        ),
        (
            {**BASE, "then": {"action": {"name": "sendMessage", "payload": {"text": {"var": "now"}}}}},
            "rule.then.action.payload.text",
            "sendMessage.text takes string, not date",
        ),
        (
            {
                **BASE,
                "then": {
                    "action": {
                        "name": "scheduleActivity",
                        "payload": {"activityId": {"var": "payload.activityId"}, "scheduledFor": {"days": 1}},
                    }
                },
            },
            "rule.then.action.payload.scheduledFor",
            "takes string or date, not duration",
        ),
        (
            {**BASE, "then": {"action": {"name": "sendMessage", "payload": {"text": {"var": "payload.nope"}}}}},
            "rule.then.action.payload.text.var",
            "unknown variable 'payload.nope'",
        ),
        (
            {**BASE, "then": {"action": {"name": "sendMessage", "payload": {"text": ""}}}},
            "rule.then.action.payload.text",
            "sendMessage.text: Must not be blank",
        ),
        (
            {
                **BASE,
                "then": {
                    "action": {
                        "name": "scheduleActivity",
                        "payload": {"activityId": {"var": "payload.activityId"}, "scheduledFor": "next week"},
                    }
                },
            },
            "rule.then.action.payload.scheduledFor",
            "scheduleActivity.scheduledFor: Invalid RFC3339",
        ),
        (
            {**BASE, "then": {"action": {"name": "proposeActivity", "payload": {"title": "t" * 201}}}},
            "rule.then.action.payload.title",
            "proposeActivity.title: Expected `str` of length <= 200",
        ),
        (
            {
                **BASE,
                "then": {
                    "action": {
                        "name": "cancelActivity",
                        "payload": {"activityId": {"var": "payload.activityId"}, "reason": 5},
                    }
                },
            },
            "rule.then.action.payload.reason",
            "cancelActivity.reason takes null or string, not number",
        ),
        (with_if({"<": [{"var": "now."}, NOW_VAR]}), "rule.if.<.0.var", "none of them empty"),
        (with_if({"==": [{"var": "actor..id"}, "x"]}), "rule.if.==.0.var", "none of them empty"),
        ({**BASE, "id": "rul_ ../<script>"}, "rule.id", "rul_ then 1 to 60 lower-case letters and digits"),
        ({**BASE, "id": ["rul_x"]}, "rule.id", "must be a rule id"),
        ({**BASE, "when": {"action": ["scheduleActivity"]}}, "rule.when.action", "must be an action name"),
        ({**BASE, "when": {"action": {"a": 1}}}, "rule.when.action", "must be an action name"),
        (
            {**BASE, "when": {"action": "leaveCollaboration"}},
            "rule.when.action",
            "rules do not apply to leaveCollaboration: a member can always leave",
        ),
        (
            {**BASE, "then": {"action": {"name": ["sendMessage"], "payload": {}}}},
            "rule.then.action.name",
            "must be an action name",
        ),
    ],
)
def test_validation_error_at_its_exact_place(raw: Any, path: str, message: str):
    assert [f["path"] for f in refused(raw)] == [path]
    assert message in refused(raw)[0]["message"]


def test_every_problem_is_reported_at_once_under_the_callers_path():
    fields = refused({"name": "", "when": {"action": "nope"}, "if": {"<": [1, "a"]}, "then": {}}, path="payload.rule")
    assert [f["path"] for f in fields] == [
        "payload.rule.name",
        "payload.rule.when.action",
        "payload.rule.if.<.1",
        "payload.rule.then",
    ]


def test_a_rule_on_every_action_sees_every_payload_field_as_possibly_null():
    stored = validate_rule(
        {
            "name": "r",
            "when": {"action": "*"},
            "if": {"contains": [{"lower": {"var": ["payload.text", ""]}}, "urgent"]},
            "then": {"require_approval": {}},
        }
    )
    assert run([stored], payload={"text": "URGENT: read"}).require_approval == [stored["id"]]
    assert run([stored], "completeActivity", payload={"activityId": "act_1"}).require_approval == []


# -- limits --------------------------------------------------------------------


def test_a_rule_too_large_is_refused():
    path, message = only_error(with_if({"in": [{"var": "payload.activityId"}, ["act_" + "x" * 100] * 40]}))
    assert path == "rule" and f"a rule is at most {MAX_RULE_BYTES}" in message


def test_a_rule_nested_too_deeply_is_refused_where_it_gets_too_deep():
    condition: Any = True
    for _ in range(MAX_DEPTH - 1):
        condition = {"not": condition}
    assert validate_rule(with_if(condition))["if"] == condition  # 16 levels, the literal included
    path, message = only_error(with_if({"not": condition}))
    assert path == "rule.if" + ".not" * MAX_DEPTH and "at most 16 levels" in message


def test_json_nested_beyond_what_the_decoder_takes_is_refused_cleanly():
    deep: Any = []
    for _ in range(1200):
        deep = [deep]
    assert only_error(with_if(deep))[0] == "rule"


def test_a_rule_with_too_many_nodes_is_refused():
    path, message = only_error(with_if({"in": [{"var": "collaboration.version"}, [1] * MAX_NODES]}))
    assert path == "rule" and f"has {MAX_NODES + 3} expression nodes; a rule has at most {MAX_NODES}" in message


def test_a_collaboration_has_at_most_fifty_rules_with_distinct_ids():
    rules = [validate_rule(BASE) for _ in range(MAX_RULES)]
    assert validate_rule_set(rules) == rules
    with pytest.raises(ValidationFailed) as too_many:
        validate_rule_set([*rules, validate_rule(BASE)])
    assert too_many.value.fields == [{"path": "rules", "message": "has 51 rules; a collaboration has at most 50"}]
    with pytest.raises(ValidationFailed) as duplicate:
        validate_rule_set([rules[0], rules[1], rules[0]])
    assert duplicate.value.fields == [
        {"path": "rules.2.id", "message": f"{rules[0]['id']} is already the id of rules.0"}
    ]


ECHO = {"action": {"name": "sendMessage", "payload": {"text": "echo"}}}


def test_a_rule_that_takes_too_many_steps_errors():
    stored = {**rule(then=ECHO), "if": {"or": [False] * (MAX_STEPS + 10)}}  # stored data that skipped validation
    outcome = run([stored])
    assert outcome.followups == [] and outcome.fired == []
    assert outcome.errors == [{"ruleId": stored["id"], "code": "step_limit", "error": "took more than 1000 steps"}]


def test_big_inputs_cost_steps_before_the_work_is_done():
    stored = rule(
        when={"action": "sendMessage"}, then=ECHO, **{"if": {"contains": [{"lower": {"var": "payload.text"}}, "x"]}}
    )
    assert run([stored], payload={"text": "X" * 10_000}).followups != []
    huge = run([stored], payload={"text": "X" * 5_000_000})
    assert [e["code"] for e in huge.errors] == ["step_limit"]


def steps(expr: Any, text: str) -> int:
    budget = Budget()
    env = build_env(action="sendMessage", actor=EDITOR, payload={"text": text}, collaboration=collaboration(), now=NOW)
    evaluate_expression(expr, env, budget)
    return MAX_STEPS - budget.steps


def test_string_operations_cost_steps_in_proportion_to_what_they_read_and_write():
    text = {"var": "payload.text"}
    assert steps({"lower": text}, "a" * 4000) == 2 + 2 * (4000 // STEP_ITEMS)  # reads 4000, writes 4000
    assert steps({"cat": [text, text, text]}, "a" * 4000) == 4 + 3 * (4000 // STEP_ITEMS) + 12_000 // STEP_ITEMS
    # Unicode case mapping is some 200 times slower than ASCII's: "İ" becomes two characters
    assert steps({"lower": text}, "İ" * 4000) == 2 + 4000 // STEP_CASE_CHARS + 8000 // STEP_ITEMS
    heavy = rule(
        when={"action": "sendMessage"}, then=ECHO, **{"if": {"or": [{"contains": [{"lower": text}, "zz"]}] * 6}}
    )
    assert run([heavy], payload={"text": "a" * 4000}).errors == []
    assert [e["code"] for e in run([heavy], payload={"text": "İ" * 4000}).errors] == ["step_limit"]


def ticking_clock():
    ticks = itertools.count()
    return lambda: next(ticks) / 1000  # every look at the clock: 1 ms later


def test_the_time_budget_stops_the_remaining_rules():
    stored = [rule(then=ECHO, **{"if": {"and": [True, True, True, True, True]}}), rule(then=ECHO)]
    outcome = run(stored, clock=ticking_clock(), budget_seconds=0.003)
    assert outcome.followups == [] and outcome.fired == []
    assert [e["code"] for e in outcome.errors] == ["time_budget", "time_budget"]
    assert outcome.errors[0]["error"] == "rules took longer than 3 ms"


def test_huge_work_is_stopped_by_the_time_budget_in_cpu_time():
    heavy = rule(then=ECHO, **{"if": {"or": [{"<": [{"+": [1, 2, 3, 4, 5, 6]}, 0]}] * 14}})
    rules = [{**heavy, "id": f"rul_{i}"} for i in range(2000)]  # 2000 × 127 nodes: seconds of work
    started = time.thread_time()  # the budget's own clock: CPU time, which a busy machine does not stretch
    outcome = run(rules)
    elapsed = time.thread_time() - started
    assert elapsed < TIME_BUDGET_SECONDS + 0.2
    codes = [e["code"] for e in outcome.errors]
    assert set(codes) == {"time_budget"} and 1000 < len(codes) < len(rules)  # the first ones did run
    assert [e["ruleId"] for e in outcome.errors][-1] == "rul_1999" and outcome.fired == []


def test_deeply_nested_stored_data_errors_instead_of_recursing():
    condition: Any = True
    for _ in range(5000):
        condition = {"not": condition}
    outcome = run([{**rule(), "if": condition}])
    assert outcome.errors[0]["code"] == "invalid_rule" and "nested deeper than 16" in outcome.errors[0]["error"]


# -- the documentation ---------------------------------------------------------

DOCS = Path(__file__).resolve().parent.parent / "docs" / "rules.md"


def test_every_rule_written_in_the_docs_is_valid_and_every_operator_is_documented():
    blocks = [json.loads(block) for block in re.findall(r"```json\n(.*?)```", DOCS.read_text(), re.S)]
    documented_rules = [block for block in blocks if "name" in block]
    assert [validate_rule(block)["name"] for block in documented_rules] == [
        "Nobody schedules on weekends",
        "Editors' cancellations need my approval",
        "Nobody schedules on weekends",
        "Thank whoever completes an activity",
        "No more than 20 open activities",
    ]
    assert documented_rules[1:4] == [EDITOR_CANCEL_NEEDS_APPROVAL, NO_WEEKENDS, THANK_YOU]
    cap = validate_rule(documented_rules[4])
    many = collaboration(activities=[{"id": f"act_{i}", "status": "proposed"} for i in range(20)])
    assert run([cap], "proposeActivity", EDITOR, {"title": "x"}, doc=many).deny is not None
    assert run([cap], "proposeActivity", EDITOR, {"title": "x"}, doc=collaboration()).deny is None
    table = DOCS.read_text().split("### Operators", 1)[1].split("\n\n", 2)[1]
    assert {name for name in OPERATORS if f"`{name}`" not in table} == set()


def test_the_ai_may_not_propose_anything_due_within_a_day():
    stored = validate_rule(
        {
            "name": "No rush jobs from the AI",
            "when": {"action": "proposeActivity", "actor": "ai"},
            "if": {
                "and": [
                    {"!=": [{"var": "payload.dueAt"}, None]},
                    {"<": [{"var": "payload.dueAt"}, {"+": [{"var": "now"}, {"hours": 24}]}]},
                ]
            },
            "then": {"deny": {"message": "Give people more notice."}},
        }
    )
    assert run([stored], "proposeActivity", AI, {"title": "x", "dueAt": "2026-11-19T08:00:00Z"}).deny is not None
    assert run([stored], "proposeActivity", AI, {"title": "x", "dueAt": "2026-11-20T08:00:00Z"}).deny is None
    assert run([stored], "proposeActivity", AI, {"title": "x"}) == Outcome()  # no dueAt: guarded, no error
    assert run([stored], "proposeActivity", EDITOR, {"title": "x", "dueAt": "2026-11-19T08:00:00Z"}).deny is None
