"""The interpreter: walks an expression (plain JSON data) with a step and time budget.

It trusts nothing: stored rules were validated when saved, but every value is
type-checked again here, and anything wrong becomes a `RuleError`.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any, Callable

from backend.clock import iso
from backend.rules.context import Env
from backend.rules.language import (
    BOOLEAN,
    DATE,
    NULL,
    OPERATORS,
    STRING,
    Operator,
    RuleError,
    equal,
    number,
    select,
    text_of,
    type_of,
)
from backend.rules.limits import MAX_DEPTH, MAX_STEPS, STEP_CASE_CHARS, STEP_ITEMS, TIME_BUDGET_SECONDS
from backend.rules.schema import PAYLOADS

Clock = Callable[[], float]


class Budget:
    """Steps left for the current rule, and the deadline shared by all rules of one action."""

    def __init__(self, seconds: float = TIME_BUDGET_SECONDS, clock: Clock = time.thread_time):
        self.clock = clock
        self.deadline = clock() + seconds
        self.seconds = seconds
        self.steps = MAX_STEPS
        self.exhausted = False

    def start_rule(self) -> None:
        self.steps = MAX_STEPS
        self.check_time()

    def charge(self, steps: int = 1) -> None:
        self.steps -= steps
        if self.steps < 0:
            raise RuleError(f"took more than {MAX_STEPS} steps", "step_limit")
        self.check_time()

    def check_time(self) -> None:
        if self.exhausted or self.clock() > self.deadline:
            self.exhausted = True
            raise RuleError(f"rules took longer than {self.seconds * 1000:g} ms", "time_budget")


def evaluate_expression(node: Any, env: Env, budget: Budget | None = None, depth: int = 1) -> Any:
    """The value of `node`; a RuleError when it cannot have one."""
    budget = budget or Budget()
    budget.charge()
    if depth > MAX_DEPTH:
        raise RuleError(f"nested deeper than {MAX_DEPTH} levels", "invalid_rule")
    if node is None or isinstance(node, (bool, str)):
        return node
    if isinstance(node, (int, float)):
        return number(node)
    if isinstance(node, list):
        return [evaluate_expression(item, env, budget, depth + 1) for item in node]
    if isinstance(node, dict) and len(node) == 1:
        [(name, raw)] = node.items()
        op = OPERATORS.get(name) if isinstance(name, str) else None
        if op is None:
            raise RuleError(f"unknown operator {str(name)[:40]!r}", "invalid_rule")
        args = raw if isinstance(raw, list) else [raw]
        if len(args) < op.min_args or (op.max_args is not None and len(args) > op.max_args):
            raise RuleError(f"{name} cannot take {len(args)} arguments", "invalid_rule")
        special = _SPECIAL.get(name)
        if special is not None:
            return special(args, env, budget, depth + 1)
        values = [evaluate_expression(arg, env, budget, depth + 1) for arg in args]
        return _apply(op, values, env, budget)
    raise RuleError("not an expression: an operator object has exactly one key", "invalid_rule")


def _apply(op: Operator, values: list[Any], env: Env, budget: Budget) -> Any:
    budget.charge(sum(_reading(op, v) for v in values))  # before the work: it may be what is too big
    result = _result(op, values, env)
    budget.charge(_size(result))
    return result


def _result(op: Operator, values: list[Any], env: Env) -> Any:
    if op.each is not None:
        return "".join(text_of(_expect(op.name, v, op.each)) for v in values)
    try:
        if op.fold:
            result = values[0]
            for value in values[1:]:
                result = select(op, (result, value)).apply(result, value)
            return result
        extra = (env.zone,) if op.zoned else ()
        return select(op, tuple(values)).apply(*values, *extra)
    except ZeroDivisionError as exc:
        raise RuleError(f"{op.name}: division by zero") from exc
    except (ArithmeticError, ValueError) as exc:  # Python's words ("C int") are not the owner's
        raise RuleError(f"{op.name}: {OUT_OF_RANGE}") from exc


OUT_OF_RANGE = "result out of range (durations reach 999999999 days, dates the years 1 to 9999)"


def _size(value: Any) -> int:
    """Steps for reading or writing `value`: one per STEP_ITEMS characters or list items."""
    return len(value) // STEP_ITEMS if isinstance(value, (str, list)) else 0


def _reading(op: Operator, value: Any) -> int:
    if op.cased and isinstance(value, str) and not value.isascii():
        return len(value) // STEP_CASE_CHARS
    return _size(value)


def _expect(name: str, value: Any, allowed: frozenset[str]) -> Any:
    kind = type_of(value)
    if kind not in allowed:
        raise RuleError(f"{name} cannot take {kind}")
    return value


def _var(args: list[Any], env: Env, budget: Budget, depth: int) -> Any:
    path = args[0]
    if not isinstance(path, str):
        raise RuleError("var needs a variable name", "invalid_rule")
    budget.charge(_size(path))
    value: Any = env.roots
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if value is None and len(args) == 2:
        return evaluate_expression(args[1], env, budget, depth)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return number(value)
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value


def _boolean(name: str, node: Any, env: Env, budget: Budget, depth: int) -> bool:
    value: bool = _expect(name, evaluate_expression(node, env, budget, depth), frozenset({BOOLEAN}))
    return value


def _and(args: list[Any], env: Env, budget: Budget, depth: int) -> bool:
    return all(_boolean("and", arg, env, budget, depth) for arg in args)


def _or(args: list[Any], env: Env, budget: Budget, depth: int) -> bool:
    return any(_boolean("or", arg, env, budget, depth) for arg in args)


def _if(args: list[Any], env: Env, budget: Budget, depth: int) -> Any:
    if len(args) % 2 == 0:
        raise RuleError("if needs [condition, then, ..., else]", "invalid_rule")
    for index in range(0, len(args) - 1, 2):
        if _boolean("if", args[index], env, budget, depth):
            return evaluate_expression(args[index + 1], env, budget, depth)
    return evaluate_expression(args[-1], env, budget, depth)


def _equality(expected: bool) -> Callable[[list[Any], Env, Budget, int], bool]:
    def compare(args: list[Any], env: Env, budget: Budget, depth: int) -> bool:
        left, right = (evaluate_expression(arg, env, budget, depth) for arg in args)
        budget.charge(_size(left) + _size(right))
        return equal(left, right) is expected

    return compare


_SPECIAL = {"var": _var, "and": _and, "or": _or, "if": _if, "==": _equality(True), "!=": _equality(False)}


def condition_holds(node: Any, env: Env, budget: Budget) -> bool:
    """A rule's `if`: true or false; anything else is the rule's error."""
    return _expect("if", evaluate_expression(node, env, budget), frozenset({BOOLEAN})) is True


def render_payload(action: str, template: Any, env: Env, budget: Budget) -> dict[str, Any]:
    """A follow-up's payload: every value of `template` is an expression. Dates are sent as ISO
    strings; a null optional field is left out."""
    fields = PAYLOADS.get(action)
    if fields is None or not isinstance(template, dict):
        raise RuleError(f"cannot run {str(action)[:40]!r} as a follow-up", "invalid_rule")
    payload: dict[str, Any] = {}
    for name, node in template.items():
        field = fields.get(name)
        if field is None:
            raise RuleError(f"{action} has no field {str(name)[:40]!r}", "invalid_rule")
        value = evaluate_expression(node, env, budget)
        kind = type_of(value)
        if kind == NULL and not field.required:
            continue
        if kind == DATE and DATE in field.type:
            payload[name] = iso(value)
        elif kind in field.type or (kind == STRING and DATE in field.type):
            payload[name] = value
        else:
            raise RuleError(f"{action}.{name} must be {' or '.join(sorted(field.type))}, not {kind}")
    missing = [name for name, field in fields.items() if field.required and name not in payload]
    if missing:
        raise RuleError(f"{action} needs {', '.join(missing)}")
    return payload
