"""The rule language: its value types and its operators.

(Over 300 lines: it is the one table of value types and operators, with each operator's
overloads and implementation; splitting it would separate an operator from its types.)

One table serves both the validator (static types, from each operator's
overloads) and the interpreter (the overload matching the values at run time,
and its implementation). Nothing here evaluates code: an operator is a name
looked up in `OPERATORS`.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta, tzinfo
from typing import Any, Callable, NamedTuple

from backend.clock import iso, parse_iso
from backend.rules.limits import MAX_NUMBER

# -- types --------------------------------------------------------------------

Type = frozenset[str]

NULL, BOOLEAN, NUMBER, STRING, DATE, DURATION, LIST = (
    "null",
    "boolean",
    "number",
    "string",
    "date",
    "duration",
    "list",
)
ANY: Type = frozenset({NULL, BOOLEAN, NUMBER, STRING, DATE, DURATION, LIST})
NONE: Type = frozenset()


def T(*names: str) -> Type:
    return frozenset(names)


def type_of(value: Any) -> str:
    """The language type of a run-time value; anything else is named, never accepted."""
    if value is None:
        return NULL
    if value is True or value is False:
        return BOOLEAN
    if isinstance(value, (int, float)):
        return NUMBER
    if isinstance(value, str):
        return STRING
    if isinstance(value, datetime):
        return DATE
    if isinstance(value, timedelta):
        return DURATION
    if isinstance(value, list):
        return LIST
    return "object" if isinstance(value, dict) else f"unsupported value ({type(value).__name__})"


_ORDER = (NULL, BOOLEAN, NUMBER, STRING, DATE, DURATION, LIST)


def describe(types: Type) -> str:
    """`number or null`, `any value`."""
    if types >= ANY:
        return "any value"
    names = [name for name in _ORDER if name in types] + sorted(types - ANY)
    if not names:
        return "nothing"
    return ", ".join(names[:-1]) + " or " + names[-1] if len(names) > 1 else names[0]


class RuleError(Exception):
    """A rule could not be evaluated. Reported in `Outcome.errors`, never raised out of `evaluate`."""

    code = "type_error"

    def __init__(self, message: str, code: str | None = None):
        super().__init__(message)
        self.code = code or self.code


def equal(a: Any, b: Any) -> bool:
    """Equality without coercion: `1 == true` and `"1" == 1` are false; `1 == 1.0` is true."""
    kind = type_of(a)
    if kind != type_of(b):
        return False
    if kind == LIST:
        return len(a) == len(b) and all(equal(x, y) for x, y in zip(a, b))
    return bool(a == b)


def number(value: Any) -> int | float:
    """A number within range, or a RuleError (`inf`, `nan` and huge numbers are out of range)."""
    if (isinstance(value, float) and not math.isfinite(value)) or abs(value) > MAX_NUMBER:
        raise RuleError("number out of range")
    checked: int | float = value
    return checked


def text_of(value: Any) -> str:
    """How `cat` writes a value."""
    if isinstance(value, str):
        return value
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def parse_date(value: str) -> datetime:
    if len(value) > 64:
        raise RuleError("not an ISO 8601 date: too long")
    try:
        return parse_iso(value)
    except (ValueError, OverflowError) as exc:
        raise RuleError(f"not an ISO 8601 date: {value[:40]!r}") from exc


def _contains(haystack: Any, needle: Any) -> bool:
    if isinstance(haystack, str):
        return needle in haystack
    return any(equal(item, needle) for item in haystack)


def _local(value: datetime, zone: tzinfo) -> datetime:
    return value.astimezone(zone)


# -- operators ----------------------------------------------------------------


class Overload(NamedTuple):
    params: tuple[Type, ...]
    result: Type
    apply: Callable[..., Any]


class Operator(NamedTuple):
    name: str
    min_args: int
    max_args: int | None
    overloads: tuple[Overload, ...] = ()
    each: Type | None = None
    """Variadic operators: the type every argument must have (and, or, cat) ..."""
    returns: Type = NONE
    """... and the type they return."""
    fold: bool = False
    """n-ary arithmetic: binary overloads applied left to right."""
    zoned: bool = False
    """The implementation also receives the collaboration's time zone."""
    cased: bool = False
    """The implementation maps letter case: text that is not ASCII costs more steps."""
    doc: str = ""


def _o(params: tuple[Type, ...], result: Type, apply: Callable[..., Any]) -> Overload:
    return Overload(params, result, apply)


_N, _S, _D, _P, _B, _L = T(NUMBER), T(STRING), T(DATE), T(DURATION), T(BOOLEAN), T(LIST)


def _comparison(name: str, test: Callable[[Any, Any], bool]) -> Operator:
    return Operator(
        name,
        2,
        2,
        tuple(_o((t, t), _B, test) for t in (_N, _S, _D, _P)),
        doc="two numbers, two strings, two dates or two durations",
    )


def _duration(unit: str) -> Operator:
    return Operator(
        unit, 1, 1, (_o((_N,), _P, lambda n: timedelta(**{unit: number(n)})),), doc=f"a duration of n {unit}"
    )


OPERATORS: dict[str, Operator] = {
    op.name: op
    for op in (
        Operator("==", 2, 2, doc="equal, without coercion"),
        Operator("!=", 2, 2, doc="not equal"),
        _comparison("<", lambda a, b: a < b),
        _comparison("<=", lambda a, b: a <= b),
        _comparison(">", lambda a, b: a > b),
        _comparison(">=", lambda a, b: a >= b),
        Operator("and", 1, None, each=_B, returns=_B, doc="true when every argument is; stops at the first false"),
        Operator("or", 1, None, each=_B, returns=_B, doc="true when one argument is; stops at the first true"),
        Operator("not", 1, 1, (_o((_B,), _B, lambda a: not a),)),
        Operator("if", 3, None, doc="[cond, then, (cond, then)..., else]"),
        Operator(
            "in",
            2,
            2,
            (
                _o((ANY, _L), _B, lambda x, xs: _contains(xs, x)),
                _o((_S, _S), _B, lambda sub, s: sub in s),
            ),
            doc="[item, list] or [substring, string]",
        ),
        Operator(
            "contains",
            2,
            2,
            (
                _o((_S, _S), _B, _contains),
                _o((_L, ANY), _B, _contains),
            ),
            doc="[string, substring] or [list, item]",
        ),
        Operator(
            "+",
            2,
            None,
            (
                _o((_N, _N), _N, lambda a, b: number(a + b)),
                _o((_D, _P), _D, lambda a, b: a + b),
                _o((_P, _D), _D, lambda a, b: a + b),
                _o((_P, _P), _P, lambda a, b: a + b),
            ),
            fold=True,
        ),
        Operator(
            "-",
            1,
            2,
            (
                _o((_N,), _N, lambda a: -a),
                _o((_P,), _P, lambda a: -a),
                _o((_N, _N), _N, lambda a, b: number(a - b)),
                _o((_D, _P), _D, lambda a, b: a - b),
                _o((_D, _D), _P, lambda a, b: a - b),
                _o((_P, _P), _P, lambda a, b: a - b),
            ),
        ),
        Operator(
            "*",
            2,
            None,
            (
                _o((_N, _N), _N, lambda a, b: number(a * b)),
                _o((_P, _N), _P, lambda a, b: a * b),
                _o((_N, _P), _P, lambda a, b: a * b),
            ),
            fold=True,
        ),
        Operator(
            "/",
            2,
            2,
            (
                _o((_N, _N), _N, lambda a, b: number(a / b)),
                _o((_P, _N), _P, lambda a, b: a / b),
                _o((_P, _P), _N, lambda a, b: number(a / b)),
            ),
        ),
        Operator("%", 2, 2, (_o((_N, _N), _N, lambda a, b: number(a % b)),)),
        Operator(
            "date",
            1,
            1,
            (
                _o((_S,), _D, parse_date),
                _o((_D,), _D, lambda d: d),
            ),
            doc="an ISO 8601 string as a date",
        ),
        Operator(
            "weekday",
            1,
            1,
            (_o((_D,), _N, lambda d, zone: _local(d, zone).isoweekday()),),
            zoned=True,
            doc="1 = Monday .. 7 = Sunday, in the collaboration's time zone",
        ),
        Operator(
            "hour",
            1,
            1,
            (_o((_D,), _N, lambda d, zone: _local(d, zone).hour),),
            zoned=True,
            doc="0 .. 23, in the collaboration's time zone",
        ),
        _duration("minutes"),
        _duration("hours"),
        _duration("days"),
        Operator("len", 1, 1, (_o((_S,), _N, len), _o((_L,), _N, len))),
        Operator("lower", 1, 1, (_o((_S,), _S, str.lower),), cased=True),
        Operator(
            "cat",
            1,
            None,
            each=T(STRING, NUMBER, BOOLEAN, DATE),
            returns=_S,
            doc="joins strings, numbers, booleans and dates into one string",
        ),
        Operator("var", 1, 2, doc="a variable: [path] or [path, default when null]"),
    )
}


def resolve(overloads: tuple[Overload, ...], types: tuple[Type, ...]) -> tuple[Type, int | None, Type]:
    """Statically: the result type of applying `overloads` to arguments of `types`,
    or the index of the first argument no overload accepts and what it expected there."""
    candidates = [o for o in overloads if len(o.params) == len(types)]
    for index, given in enumerate(types):
        expected = frozenset().union(*(o.params[index] for o in candidates))
        candidates = [o for o in candidates if o.params[index] & given]
        if not candidates:
            return NONE, index, expected
    return frozenset().union(*(o.result for o in candidates)), None, NONE


def resolve_fold(overloads: tuple[Overload, ...], types: tuple[Type, ...]) -> tuple[Type, int | None, Type]:
    """`resolve` for n-ary arithmetic: binary overloads applied left to right."""
    result = types[0]
    for index in range(1, len(types)):
        result, blame, expected = resolve(overloads, (result, types[index]))
        if blame is not None:
            return NONE, blame if index == 1 else index, expected
    return result, None, NONE


def select(op: Operator, values: tuple[Any, ...]) -> Overload:
    """At run time: the overload of `op` that takes these values, or a RuleError."""
    kinds = tuple(type_of(v) for v in values)
    for overload in op.overloads:
        if len(overload.params) == len(kinds) and all(k in p for k, p in zip(kinds, overload.params)):
            return overload
    raise RuleError(f"{op.name} cannot take ({', '.join(kinds)})")
