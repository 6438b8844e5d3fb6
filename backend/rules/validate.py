"""Rules are validated when saved: shape, limits, variables, actions and static types.

(Over 300 lines: one short validator per construct of the rules language; together they
are its static checks, and split they would each need the others' path and type helpers.)

Every problem is reported with its exact place, a dotted path through the
rule's JSON: `rule.if.and.1.>=.0` is argument 0 of the `>=` that is argument 1
of the `and` in the rule's condition.
"""

from __future__ import annotations

import functools
import re
from typing import Any, Callable, NamedTuple

import msgspec

from backend.domain.catalogue import CATALOGUE
from backend.domain.payloads import decode
from backend.errors import ValidationFailed
from backend.ids import new_id
from backend.rules.language import (
    ANY,
    BOOLEAN,
    DATE,
    LIST,
    NONE,
    NULL,
    NUMBER,
    OPERATORS,
    STRING,
    Operator,
    RuleError,
    T,
    Type,
    describe,
    parse_date,
    resolve,
    resolve_fold,
)
from backend.rules.limits import (
    MAX_DEPTH,
    MAX_NAME_CHARS,
    MAX_NODES,
    MAX_NUMBER,
    MAX_RULE_BYTES,
    MAX_RULES,
    MAX_TEXT_CHARS,
)
from backend.rules.schema import ACTIONS, EXEMPT_ACTIONS, FOLLOWUP_ACTIONS, PAYLOADS, WHEN_ACTORS, lookup

RULE_FIELDS = ("id", "name", "enabled", "when", "if", "then")
EFFECTS = ("deny", "require_approval", "action")
MAX_REPORTED = 20
"""Problems reported for one rule; the rest are dropped."""
RULE_ID = re.compile(r"rul_[0-9a-z]{1,60}")
"""A rule id an owner may give: what `new_id("rul")` makes, or any short lower-case name."""


def validate_rule(raw: Any, *, path: str = "rule", max_message_chars: int = 4000) -> dict[str, Any]:
    """The normalised rule: `{id, name, enabled, when: {action, actor}, if, then}`, a fresh copy
    with an id (`rul_…`) and the defaults filled in. Raises ValidationFailed with every problem.
    `max_message_chars` is the MAX_MESSAGE_CHARS setting, which a literal message text must keep."""
    checker = _Checker(max_message_chars)
    rule = checker.rule(_as_json(raw, path), path)
    if checker.errors:
        raise ValidationFailed(checker.errors)
    return rule


STORED_MESSAGE_CHARS = 1_000_000
"""`check_stored` does not know the MAX_MESSAGE_CHARS setting: any literal message passes its length."""
MAX_STORED_BYTES = 64 * MAX_RULE_BYTES
"""A stored rule larger than this is not checked (a problem in itself): checking costs its size."""
MAX_PROBLEM_CHARS = 300
"""`check_stored` keeps its problem to this many characters (a stored key may be any length)."""


def check_stored(raw: Any, *, path: str = "rule") -> str | None:
    """What is wrong with a rule as stored, as `"<path>: <message>"` (the first problem), or None.

    The same checks as `validate_rule` (fields, types, effects, actions, variables, static types),
    but not the size limits (bytes, nodes, text lengths): those are enforced when a rule is saved,
    and at run time the step and time budgets bound whatever is stored. A rule as stored also needs
    its own id, a non-empty string (older ids that do not match `rul_…` are fine). Nesting deeper
    than MAX_DEPTH is a problem, found without recursing further. Never raises."""
    if not isinstance(raw, dict):
        return f"{path}: not a rule (a rule is an object)"
    rule_id = raw.get("id")
    if not isinstance(rule_id, str) or not rule_id:
        return f"{path}.id: is required: a rule as stored has its id"
    rest = {name: value for name, value in raw.items() if name != "id"}
    try:
        key = msgspec.json.encode(rest)
        same = msgspec.json.decode(key) == rest  # not a date, a tuple, a number key… read as JSON
    except RecursionError:
        return f"{path}: nested deeper than {MAX_DEPTH} levels"
    except (TypeError, ValueError, OverflowError, msgspec.MsgspecError):
        same = False
    if not same:
        return f"{path}: is not JSON data"
    if len(key) > MAX_STORED_BYTES:
        return f"{path}: is {len(key)} bytes as JSON, too large to check"
    problem = _stored_problem(key) if len(key) > MAX_RULE_BYTES else _cached_problem(key)
    return None if problem is None else f"{path}{problem}"[:MAX_PROBLEM_CHARS]


def _stored_problem(key: bytes) -> str | None:
    """The first problem of the rule encoded as `key`, its path without the leading `rule`."""
    try:
        raw = msgspec.json.decode(key)
    except RecursionError:
        return f": nested deeper than {MAX_DEPTH} levels"
    checker = _Checker(STORED_MESSAGE_CHARS, limits=False)
    try:
        checker.rule(raw, "")
    except RecursionError:  # pragma: no cover - the checker stops at MAX_DEPTH
        return f": nested deeper than {MAX_DEPTH} levels"
    if not checker.errors:
        return None
    first = checker.errors[0]
    return f"{first['path']}: {first['message']}"[:MAX_PROBLEM_CHARS]


_cached_problem = functools.lru_cache(maxsize=4096)(_stored_problem)
"""Stored rules rarely change: each distinct rule (up to MAX_RULE_BYTES as JSON, without its id)
is checked once per process, not on every action. At most 4096 entries of at most 4 KiB each."""


def validate_rule_set(rules: Any, *, path: str = "rules") -> list[dict[str, Any]]:
    """A collaboration's whole `rules` array (each rule already validated): its count and unique ids."""
    if not isinstance(rules, list):
        raise ValidationFailed.at(path, "must be a list of rules")
    if len(rules) > MAX_RULES:
        raise ValidationFailed.at(path, f"has {len(rules)} rules; a collaboration has at most {MAX_RULES}")
    errors: list[dict[str, str]] = []
    seen: dict[str, int] = {}
    for index, rule in enumerate(rules):
        rule_id = rule.get("id") if isinstance(rule, dict) else None
        if not isinstance(rule_id, str):
            errors.append({"path": f"{path}.{index}.id", "message": "is required"})
        elif rule_id in seen:
            errors.append(
                {"path": f"{path}.{index}.id", "message": f"{rule_id} is already the id of {path}.{seen[rule_id]}"}
            )
        else:
            seen[rule_id] = index
    if errors:
        raise ValidationFailed(errors)
    return rules


def _as_json(raw: Any, path: str) -> dict[str, Any]:
    """A fresh copy of `raw` as plain JSON data, within the size limit."""
    if not isinstance(raw, dict):
        raise ValidationFailed.at(path, "must be an object")
    try:
        encoded = msgspec.json.encode(raw)
    except RecursionError:
        raise ValidationFailed.at(path, f"is nested too deeply: at most {MAX_DEPTH} levels") from None
    except (TypeError, ValueError, OverflowError, msgspec.MsgspecError):
        raise ValidationFailed.at(path, "is not JSON data") from None
    if len(encoded) > MAX_RULE_BYTES:
        raise ValidationFailed.at(path, f"is {len(encoded)} bytes as JSON; a rule is at most {MAX_RULE_BYTES}")
    try:
        copy: dict[str, Any] = msgspec.json.decode(encoded)  # an object, as `raw` was
    except RecursionError:
        raise ValidationFailed.at(path, f"is nested too deeply: at most {MAX_DEPTH} levels") from None
    return copy


class Checked(NamedTuple):
    type: Type
    values: tuple[str, ...] | None = None
    """The only strings the expression can be (a variable such as actor.role)."""


Arg = tuple[Any, str]
"""An argument and its path."""


class _Checker:
    def __init__(self, max_message_chars: int = 4000, limits: bool = True) -> None:
        self.max_message_chars = max_message_chars
        self.limits = limits
        """False for a stored rule (`check_stored`): no size limits, and ids are not generated."""
        self.errors: list[dict[str, str]] = []
        self.nodes = 0
        self.action = "*"

    def fail(self, path: str, message: str) -> Checked:
        if len(self.errors) < MAX_REPORTED:
            self.errors.append({"path": path, "message": message})
        return Checked(ANY)

    # -- the rule -------------------------------------------------------------

    def rule(self, raw: dict[str, Any], path: str) -> dict[str, Any]:
        for key in raw:
            if key not in RULE_FIELDS:
                self.fail(f"{path}.{key}", f"unknown field: a rule has {', '.join(RULE_FIELDS)}")
        rule_id = raw.get("id")
        if not self.limits:
            pass  # check_stored has checked the stored id
        elif rule_id is None:
            rule_id = new_id("rul")
        elif not isinstance(rule_id, str) or not RULE_ID.fullmatch(rule_id):
            self.fail(f"{path}.id", "must be a rule id: rul_ then 1 to 60 lower-case letters and digits")
        name = self.text(raw.get("name"), f"{path}.name", MAX_NAME_CHARS, required=True)
        enabled = raw.get("enabled", True)
        if not isinstance(enabled, bool):
            self.fail(f"{path}.enabled", "must be true or false")
        when = self.when(raw.get("when"), f"{path}.when")
        self.action = when["action"]
        condition = raw.get("if", True)
        self.condition(condition, f"{path}.if")
        then = self.then(raw.get("then"), f"{path}.then")
        if self.limits and self.nodes > MAX_NODES:
            self.fail(path, f"has {self.nodes} expression nodes; a rule has at most {MAX_NODES}")
        return {"id": rule_id, "name": name, "enabled": enabled, "when": when, "if": condition, "then": then}

    def text(self, value: Any, path: str, limit: int, required: bool = False) -> str | None:
        if value is None:
            if required:
                self.fail(path, "is required")
            return None
        if not isinstance(value, str) or not value.strip():
            self.fail(path, "must be a non-empty string")
            return None
        if self.limits and len(value) > limit:
            self.fail(path, f"is {len(value)} characters; at most {limit}")
        return value.strip()

    def when(self, raw: Any, path: str) -> dict[str, str]:
        when = {"action": "*", "actor": "any"}
        if not isinstance(raw, dict):
            self.fail(path, 'is required: an object like {"action": "cancelActivity", "actor": "any"}')
            return when
        for key in raw:
            if key not in when:
                self.fail(f"{path}.{key}", "unknown field: when has action and actor")
        action, actor = raw.get("action"), raw.get("actor", "any")
        if action is None:
            self.fail(f"{path}.action", 'is required: an action name, or "*" for every action')
        elif not isinstance(action, str):
            self.fail(f"{path}.action", 'must be an action name, or "*" for every action')
        elif action in EXEMPT_ACTIONS:
            self.fail(f"{path}.action", f"rules do not apply to {action}: {EXEMPT_ACTIONS[action]}")
        elif action != "*" and action not in ACTIONS:
            self.fail(f"{path}.action", f"unknown action {str(action)[:60]!r}")
        else:
            when["action"] = action
        if isinstance(actor, str) and actor in WHEN_ACTORS:
            when["actor"] = actor
        else:
            self.fail(f"{path}.actor", f"must be one of {', '.join(WHEN_ACTORS)}")
        return when

    def condition(self, node: Any, path: str) -> None:
        checked = self.expr(node, path, 1)
        if not checked.type & {BOOLEAN}:
            self.fail(path, f"a condition must be true or false, not {describe(checked.type)}")

    def then(self, raw: Any, path: str) -> dict[str, Any] | None:
        if not isinstance(raw, dict) or len(raw) != 1:
            self.fail(path, 'must be one effect: {"deny": …}, {"require_approval": …} or {"action": …}')
            return None
        [(kind, body)] = raw.items()
        here = f"{path}.{kind}"
        if kind not in EFFECTS:
            self.fail(here, f"unknown effect: use {', '.join(EFFECTS)}")
            return None
        allowed = {"deny": ("message",), "require_approval": ("reason",), "action": ("name", "payload")}[kind]
        if body is None and kind == "require_approval":
            body = {}
        if not isinstance(body, dict):
            self.fail(here, f"must be an object with {' and '.join(allowed)}")
            return None
        for key in body:
            if key not in allowed:
                self.fail(f"{here}.{key}", f"unknown field: {kind} has {' and '.join(allowed)}")
        if kind == "deny":
            return {"deny": {"message": self.text(body.get("message"), f"{here}.message", MAX_TEXT_CHARS, True)}}
        if kind == "require_approval":
            reason = self.text(body.get("reason"), f"{here}.reason", MAX_TEXT_CHARS)
            return {"require_approval": {"reason": reason} if reason else {}}
        return {"action": self.followup(body, here)}

    def followup(self, body: dict[str, Any], path: str) -> dict[str, Any]:
        name, template = body.get("name"), body.get("payload", {})
        if not isinstance(name, str) or name not in FOLLOWUP_ACTIONS:
            why = (
                "is required"
                if name is None
                else "must be an action name"
                if not isinstance(name, str)
                else f"{name} cannot be a follow-up"
                if name in ACTIONS
                else f"unknown action {str(name)[:60]!r}"
            )
            self.fail(f"{path}.name", f"{why}: a rule may run {', '.join(FOLLOWUP_ACTIONS)}")
            return {"name": name, "payload": template}
        if not isinstance(template, dict):
            self.fail(f"{path}.payload", "must be an object: field → expression")
            return {"name": name, "payload": template}
        fields, errors = PAYLOADS[name], len(self.errors)
        for key, node in template.items():
            here = f"{path}.payload.{key}"
            field = fields.get(key)
            if field is None:
                self.fail(here, f"unknown field: {name} has {', '.join(fields)}")
                continue
            accepted = field.type | (T(STRING) if DATE in field.type else NONE) | (NONE if field.required else T(NULL))
            checked = self.expr(node, here, 1)
            if not checked.type & accepted:
                self.fail(here, f"{name}.{key} takes {describe(accepted)}, not {describe(checked.type)}")
        missing = [key for key, field in fields.items() if field.required and key not in template]
        if missing:
            self.fail(f"{path}.payload", f"{name} needs {', '.join(missing)}")
        elif len(self.errors) == errors:
            self.literals(name, template, f"{path}.payload")
        return {"name": name, "payload": template}

    def literals(self, name: str, template: dict[str, Any], path: str) -> None:
        """Literal payload values go through the action's own payload checks (DESIGN.md §3), so that
        a follow-up that could never run (`sendMessage` with text "") is refused now."""
        fields = PAYLOADS[name]
        literal = {
            key: node
            for key, node in template.items()
            if key in fields and isinstance(node, (str, int, float)) and not isinstance(node, bool)
        }
        if not literal:
            return
        probe = {
            key: _STAND_IN[DATE if DATE in field.type else STRING]
            for key, field in fields.items()
            if field.required and key not in literal
        }
        try:
            decode(CATALOGUE[name].payload, {**probe, **literal}, max_message_chars=self.max_message_chars)
        except ValidationFailed as exc:
            for problem in exc.fields:
                key = problem["path"].removeprefix("payload.").split(".")[0]
                if key in literal:
                    self.fail(f"{path}.{key}", f"{name}.{key}: {problem['message']}")

    # -- expressions ----------------------------------------------------------

    def expr(self, node: Any, path: str, depth: int) -> Checked:
        self.nodes += 1
        if depth > MAX_DEPTH:
            if not self.limits:  # the interpreter's words for the same
                return self.fail(path, f"nested deeper than {MAX_DEPTH} levels")
            return self.fail(path, f"is nested too deeply: at most {MAX_DEPTH} levels")
        if node is None:
            return Checked(T(NULL))
        if isinstance(node, bool):
            return Checked(T(BOOLEAN))
        if isinstance(node, (int, float)):
            if not abs(node) <= MAX_NUMBER:  # also refuses nan
                return self.fail(path, "is out of range: numbers are between -2**53 and 2**53")
            return Checked(T(NUMBER))
        if isinstance(node, str):
            return Checked(T(STRING))
        if isinstance(node, list):
            for index, item in enumerate(node):
                self.expr(item, f"{path}.{index}", depth + 1)
            return Checked(T(LIST))
        if not isinstance(node, dict) or len(node) != 1:
            return self.fail(path, 'must be a value or one operator object, like {"==": [a, b]}')
        [(name, raw)] = node.items()
        here = f"{path}.{name}"
        op = OPERATORS.get(name)
        if op is None:
            return self.fail(here, f"unknown operator {name[:40]!r}; operators are {' '.join(OPERATORS)}")
        args = [(arg, f"{here}.{i}") for i, arg in enumerate(raw)] if isinstance(raw, list) else [(raw, here)]
        if len(args) < op.min_args or (op.max_args is not None and len(args) > op.max_args):
            return self.fail(here, f"takes {_arity(op)}, not {len(args)}")
        special = _SPECIAL.get(name)
        if special is not None:
            return special(self, args, here, depth + 1)
        return self.apply(op, args, depth + 1)

    def apply(self, op: Operator, args: list[Arg], depth: int) -> Checked:
        checked = [self.expr(node, path, depth) for node, path in args]
        types = [c.type for c in checked]
        if op.each is not None:
            for (_, path), given in zip(args, types):
                if not given & op.each:
                    self.fail(path, f"{op.name} takes {describe(op.each)}, not {describe(given)}")
            return Checked(op.returns)
        result, blame, expected = (resolve_fold if op.fold else resolve)(op.overloads, tuple(types))
        if blame is not None:
            return self.fail(args[blame][1], f"{op.name} takes {describe(expected)} here, not {describe(types[blame])}")
        check = _LITERAL_CHECKS.get(op.name)
        if check is not None:
            check(self, args, checked)
        return Checked(result)

    # -- operators with their own checks ---------------------------------------

    def var(self, args: list[Arg], here: str, depth: int) -> Checked:
        name, path = args[0]
        if not isinstance(name, str):
            return self.fail(path, 'must be a variable name, like "payload.text"')
        found = lookup(name, self.action)
        if isinstance(found, str):
            return self.fail(path, found)
        if len(args) == 2:
            default = self.expr(args[1][0], args[1][1], depth)
            return Checked((found.type - {NULL}) | default.type)
        return Checked(found.type, found.values)

    def equality(self, args: list[Arg], here: str, depth: int) -> Checked:
        (left, left_path), (right, right_path) = args
        a, b = self.expr(left, left_path, depth), self.expr(right, right_path, depth)
        if not a.type & b.type:
            self.fail(right_path, f"compares {describe(a.type)} with {describe(b.type)}: never equal")
        else:
            self.closed_set(a, right, right_path)
            self.closed_set(b, left, left_path)
        return Checked(T(BOOLEAN))

    def branches(self, args: list[Arg], here: str, depth: int) -> Checked:
        if len(args) % 2 == 0:
            return self.fail(here, "takes [condition, then, (condition, then)…, else]: an odd number of arguments")
        result = NONE
        for index, (node, path) in enumerate(args):
            checked = self.expr(node, path, depth)
            if index % 2 == 0 and index < len(args) - 1:
                if not checked.type & {BOOLEAN}:
                    self.fail(path, f"a condition must be true or false, not {describe(checked.type)}")
            else:
                result |= checked.type
        return Checked(result)

    def closed_set(self, checked: Checked, literal: Any, path: str) -> None:
        if checked.values is not None and isinstance(literal, str) and literal not in checked.values:
            self.fail(path, f"can never be {literal[:60]!r}: the value is one of {', '.join(checked.values)}")

    def date_literal(self, args: list[Arg], checked: list[Checked]) -> None:
        [(node, path)] = args
        if isinstance(node, str):
            try:
                parse_date(node)
            except RuleError as exc:
                self.fail(path, str(exc))

    def divisor(self, args: list[Arg], checked: list[Checked]) -> None:
        node, path = args[1]
        if isinstance(node, (int, float)) and not isinstance(node, bool) and node == 0:
            self.fail(path, "divides by zero")

    def members(self, args: list[Arg], checked: list[Checked]) -> None:
        items, path = args[1]
        if isinstance(items, list):
            for index, item in enumerate(items):
                self.closed_set(checked[0], item, f"{path}.{index}")


_STAND_IN = {STRING: "x", DATE: "2026-01-01T00:00:00Z"}
"""Valid values for the payload fields that are expressions, while the literal ones are checked."""


def _arity(op: Operator) -> str:
    if op.max_args is None:
        return f"at least {op.min_args} argument{'s' if op.min_args > 1 else ''}"
    if op.min_args == op.max_args:
        return f"{op.min_args} argument{'s' if op.min_args > 1 else ''}"
    return f"{op.min_args} to {op.max_args} arguments"


_SPECIAL: dict[str, Callable[[_Checker, list[Arg], str, int], Checked]] = {
    "var": _Checker.var,
    "==": _Checker.equality,
    "!=": _Checker.equality,
    "if": _Checker.branches,
}
_LITERAL_CHECKS: dict[str, Callable[[_Checker, list[Arg], list[Checked]], None]] = {
    "date": _Checker.date_literal,
    "/": _Checker.divisor,
    "%": _Checker.divisor,
    "in": _Checker.members,
}
