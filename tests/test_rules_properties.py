"""Random expressions and junk: validation only ever raises ValidationFailed, evaluation never raises."""

from __future__ import annotations

from datetime import datetime, timezone
from functools import cache
from typing import Any

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backend.errors import ValidationFailed
from backend.rules import Outcome, evaluate, validate_rule
from backend.rules.language import OPERATORS
from backend.rules.schema import ACTIONS

PROPERTY = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])

VARIABLES = [
    "payload.text",
    "payload.activityId",
    "payload.scheduledFor",
    "payload.reason",
    "payload.dueAt",
    "payload.title",
    "payload.actions",
    "payload",
    "actor.type",
    "actor.id",
    "actor.role",
    "actor",
    "collaboration.title",
    "collaboration.status",
    "collaboration.memberCount",
    "collaboration.version",
    "collaboration.activityCount",
    "collaboration.openActivityCount",
    "collaboration.timezone",
    "collaboration.activity",
    "collaboration.activity.title",
    "collaboration.activity.dueAt",
    "collaboration.activity.status",
    "now",
    "now.year",
    "nope",
    "",
]
DATES = ["2026-11-21T10:00:00Z", "2026-11-23", "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-05:00", "soon"]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**60), 2**60),
    st.floats(),
    st.sampled_from(DATES),
    st.text(max_size=12),
    st.sampled_from(["owner", "editor", "ai", "user", "", "act_1"]),
)
junk = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
variables = st.one_of(
    st.builds(lambda path: {"var": path}, st.sampled_from(VARIABLES)),
    st.builds(lambda path, default: {"var": [path, default]}, st.sampled_from(VARIABLES), scalars),
)
operator_names = st.sampled_from([*OPERATORS, "eval", "__import__", "lambda", ""])


def _branches(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.builds(lambda op, args: {op: args}, operator_names, st.lists(children, max_size=4)),
        st.builds(lambda op, arg: {op: arg}, operator_names, children),
        st.lists(children, max_size=3),
    )


random_trees = st.recursive(st.one_of(scalars, variables, junk), _branches, max_leaves=25)

# Well-typed expressions, so that valid rules are common and the interpreter is exercised in depth.

LEAVES = {
    "boolean": st.booleans(),
    "number": st.one_of(
        st.integers(-1000, 1000),
        st.floats(-1e6, 1e6, allow_nan=False),
        st.sampled_from(
            [
                {"var": "collaboration.version"},
                {"var": "collaboration.memberCount"},
                {"var": "collaboration.openActivityCount"},
            ]
        ),
    ),
    "string": st.one_of(
        st.text(max_size=8),
        st.sampled_from(
            [
                "owner",
                "editor",
                {"var": "payload.activityId"},
                {"var": "actor.role"},
                {"var": "actor.id"},
                {"var": "collaboration.title"},
                {"var": "collaboration.activity.title"},
                {"var": ["payload.reason", "-"]},
            ]
        ),
    ),
    "date": st.sampled_from(
        [
            {"var": "now"},
            {"var": "payload.scheduledFor"},
            {"var": "collaboration.activity.dueAt"},
            {"date": "2026-11-21T10:00:00Z"},
        ]
    ),
    "duration": st.builds(
        lambda unit, n: {unit: n}, st.sampled_from(["days", "hours", "minutes"]), st.integers(-400, 400)
    ),
}
ORDERED = ["number", "string", "date", "duration"]


def _op(name: str, *args: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.tuples(*args).map(lambda values: {name: list(values)})


@cache
def typed(kind: str, depth: int = 3) -> st.SearchStrategy[Any]:
    if depth == 0:
        return LEAVES[kind]
    sub = lambda k: typed(k, depth - 1)  # noqa: E731 - a one-line helper local to this strategy
    pick = st.sampled_from
    builders = {
        "boolean": [
            pick(ORDERED).flatmap(
                lambda k: pick(["<", "<=", ">", ">=", "==", "!="]).flatmap(lambda op: _op(op, sub(k), sub(k)))
            ),
            pick(["and", "or"]).flatmap(
                lambda op: st.lists(sub("boolean"), min_size=1, max_size=3).map(lambda args: {op: args})
            ),
            sub("boolean").map(lambda a: {"not": a}),
            _op("in", sub("string"), st.lists(sub("string"), max_size=3)),
            _op("in", sub("string"), sub("string")),
            _op("contains", sub("string"), sub("string")),
            _op("if", sub("boolean"), sub("boolean"), sub("boolean")),
        ],
        "number": [
            pick(["+", "-", "*", "/", "%"]).flatmap(lambda op: _op(op, sub("number"), sub("number"))),
            _op("/", sub("duration"), sub("duration")),
            sub("string").map(lambda a: {"len": a}),
            pick(["weekday", "hour"]).flatmap(lambda op: sub("date").map(lambda a: {op: a})),
        ],
        "string": [
            sub("string").map(lambda a: {"lower": a}),
            st.lists(st.one_of(sub("string"), sub("number"), sub("date")), min_size=1, max_size=3).map(
                lambda args: {"cat": args}
            ),
            _op("if", sub("boolean"), sub("string"), sub("string")),
        ],
        "date": [
            pick(["+", "-"]).flatmap(lambda op: _op(op, sub("date"), sub("duration"))),
        ],
        "duration": [
            pick(["days", "hours", "minutes"]).flatmap(lambda op: sub("number").map(lambda a: {op: a})),
            _op("-", sub("date"), sub("date")),
            _op("*", sub("duration"), sub("number")),
        ],
    }[kind]
    return st.one_of(LEAVES[kind], *builders)


expressions = st.one_of(random_trees, typed("boolean"), typed("string"), typed("date"))

effects = st.one_of(
    st.builds(lambda message: {"deny": {"message": message}}, st.one_of(st.text(max_size=10), junk)),
    st.builds(lambda reason: {"require_approval": {"reason": reason}}, st.one_of(st.none(), st.text(max_size=10))),
    st.builds(
        lambda name, payload: {"action": {"name": name, "payload": payload}},
        st.one_of(st.sampled_from(["sendMessage", "proposeActivity", "scheduleActivity", "addMember", "nope"]), junk),
        st.dictionaries(
            st.sampled_from(["text", "title", "activityId", "scheduledFor", "dueAt", "x"]), expressions, max_size=3
        ),
    ),
    junk,
)
whens = st.one_of(
    st.builds(
        lambda action, actor: {"action": action, "actor": actor},
        st.one_of(st.sampled_from([*ACTIONS, "*", "nope"]), junk),
        st.one_of(st.sampled_from(["user", "ai", "any", "robot"]), junk),
    ),
    junk,
)
rules = st.builds(
    lambda rule_id, name, when, condition, then: {**rule_id, "name": name, "when": when, "if": condition, "then": then},
    st.one_of(st.just({}), st.builds(lambda i: {"id": i}, st.one_of(st.sampled_from(["rul_1", "rul_"]), junk))),
    st.one_of(st.just("r"), junk),
    whens,
    st.one_of(typed("boolean"), expressions),
    effects,
)

actors = st.one_of(
    st.sampled_from(
        [
            {"type": "user", "id": "u-owner"},
            {"type": "user", "id": "u-editor"},
            {"type": "ai"},
            {"type": "rule", "id": "rul_x"},
            {"type": "user", "id": "stranger"},
        ]
    ),
    junk,
)
payloads = st.one_of(
    st.fixed_dictionaries(
        {},
        optional={
            "text": st.one_of(st.text(max_size=20), junk),
            "activityId": st.sampled_from(["act_1", "act_404", 3]),
            "scheduledFor": st.one_of(st.sampled_from(DATES), junk),
            "reason": junk,
            "dueAt": junk,
        },
    ),
    junk,
)
DOC = {
    "_id": "col_1",
    "title": "Club",
    "status": "active",
    "version": 4,
    "members": [{"userId": "u-owner", "role": "owner"}, {"userId": "u-editor", "role": "editor"}],
    "activities": [{"id": "act_1", "title": "Hike", "status": "proposed", "dueAt": "2026-11-20T10:00:00Z"}],
    "settings": {"timezone": "Europe/Paris"},
}
documents = st.one_of(
    st.just(DOC),
    st.builds(lambda extra: {**DOC, **extra}, st.dictionaries(st.sampled_from(list(DOC)), junk, max_size=3)),
    junk,
)
now = st.datetimes(timezones=st.just(timezone.utc)) | st.datetimes()
actions = st.sampled_from([*ACTIONS, "nope"])
ERROR_CODES = {"type_error", "step_limit", "time_budget", "followup_depth", "invalid_rule"}


def _check(outcome: Outcome, codes: set[str]) -> None:
    assert isinstance(outcome, Outcome)
    assert {e["code"] for e in outcome.errors} <= codes, outcome.errors
    assert all(isinstance(e["error"], str) for e in outcome.errors)
    assert outcome.deny is None or outcome.fired == [outcome.deny["ruleId"]]
    msgspec.json.encode(outcome)  # fit for an audit entry or a log line


@PROPERTY
@given(raw=st.one_of(rules, junk))
def test_validation_raises_nothing_but_validation_failed(raw: Any):
    try:
        stored = validate_rule(raw)
    except ValidationFailed as exc:
        assert exc.fields and all(f["path"].startswith("rule") and f["message"] for f in exc.fields)
        return
    assert validate_rule(stored) == stored  # the normal form is stable
    assert msgspec.json.decode(msgspec.json.encode(stored)) == stored


@PROPERTY
@given(rule=rules, action=actions, actor=actors, payload=payloads, doc=documents, now=now, depth=st.integers(0, 5))
def test_evaluating_anything_never_raises(
    rule: Any, action: str, actor: Any, payload: Any, doc: Any, now: datetime, depth: int
):
    stored = {"id": "rul_x", **rule} if isinstance(rule, dict) else rule
    outcome = evaluate(
        [stored, rule, "junk"], action=action, actor=actor, payload=payload, collaboration=doc, now=now, depth=depth
    )
    _check(outcome, ERROR_CODES)


@PROPERTY
@given(rule=rules, action=actions, actor=actors, payload=payloads, now=now, depth=st.integers(0, 4))
def test_a_valid_rule_only_ever_errors_on_its_values(
    rule: Any, action: str, actor: Any, payload: Any, now: datetime, depth: int
):
    try:
        stored = validate_rule(rule)
    except ValidationFailed:
        return
    outcome = evaluate([stored], action=action, actor=actor, payload=payload, collaboration=DOC, now=now, depth=depth)
    _check(outcome, {"type_error", "step_limit", "time_budget", "followup_depth"})


@PROPERTY
@given(
    condition=st.one_of(typed("boolean"), expressions),
    when=st.sampled_from(["*", "scheduleActivity", "cancelActivity", "completeActivity"]),
)
def test_random_conditions_either_validate_or_say_where_they_are_wrong(condition: Any, when: str):
    raw = {"name": "r", "when": {"action": when}, "if": condition, "then": {"require_approval": {}}}
    try:
        validate_rule(raw)
    except ValidationFailed as exc:
        assert all(f["path"] == "rule" or f["path"].startswith("rule.if") for f in exc.fields), exc.fields
        return
    payload = {"text": "Hello", "activityId": "act_1", "scheduledFor": "2026-11-21T10:00:00Z"}
    outcome = evaluate(
        [validate_rule(raw)],
        action="scheduleActivity" if when == "*" else when,
        actor={"type": "user", "id": "u-editor"},
        payload=payload,
        collaboration=DOC,
        now=datetime(2026, 11, 18, tzinfo=timezone.utc),
    )
    _check(outcome, {"type_error", "step_limit", "time_budget"})
