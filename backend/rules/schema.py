"""What rules can name: actions, their payload fields, and the variables of a rule.

The actions and their payload fields are derived from the catalogue
(domain/catalogue.py: `rule_exempt`, `followup`, `rule_fields` and the payload struct). A variable's static type is
known from its root (`payload`, `actor`, `collaboration`, `now`) and, for
`payload`, from the action the rule is `when`.
"""

from __future__ import annotations

import types
import typing
from datetime import datetime
from typing import Literal, NamedTuple, Union

import msgspec

from backend.domain.catalogue import ActionSpec, Derived, generation
from backend.rules.language import DATE, LIST, NULL, NUMBER, STRING, T, Type

ROLES = ("owner", "editor", "viewer")
ACTOR_TYPES = ("user", "ai", "rule")
WHEN_ACTORS = ("user", "ai", "any")
ACTIVITY_STATUSES = ("proposed", "scheduled", "done", "cancelled")
OPEN_STATUSES = ("proposed", "scheduled")
"""An open activity is one still to do: `collaboration.openActivityCount` counts these."""


class Var(NamedTuple):
    type: Type
    values: tuple[str, ...] | None = None
    """The only strings it can hold, when they are a closed set: `==` against another is refused."""


class Field(NamedTuple):
    type: Type
    required: bool = True
    values: tuple[str, ...] | None = None


def _opt(kind: str) -> Field:
    return Field(T(kind), required=False)


def rule_fields(spec: ActionSpec) -> dict[str, Field]:
    """The payload fields a rule on `spec` sees, with their types, from its payload struct."""
    hints = typing.get_type_hints(spec.payload)
    fields: dict[str, Field] = {}
    for info in msgspec.structs.fields(spec.payload):
        if spec.rule_fields is not None and info.name not in spec.rule_fields:
            continue
        kind = hints[info.name]
        if typing.get_origin(kind) in (Union, types.UnionType):
            kind = next(arg for arg in typing.get_args(kind) if arg is not type(None))
        origin = typing.get_origin(kind)
        if kind is str:
            fields[info.name] = Field(T(STRING), info.required)
        elif kind is datetime:
            fields[info.name] = Field(T(DATE), info.required)
        elif origin is Literal:
            fields[info.name] = Field(T(STRING), info.required, tuple(typing.get_args(kind)))
        elif origin is list:
            fields[info.name] = Field(T(LIST), info.required)
        else:
            raise TypeError(f"{spec.name}.{info.name}: rules cannot read a {kind!r}; leave it out of rule_fields")
    return fields


ACTIONS: Derived[ActionSpec] = Derived(lambda spec: spec)
"""Every action of the catalogue (domain/catalogue.py)."""
EXEMPT_ACTIONS: Derived[str] = Derived(lambda spec: spec.rule_exempt)
"""Actions no rule applies to, and why."""
FOLLOWUP_ACTIONS: Derived[bool] = Derived(lambda spec: spec.followup)
"""What a rule may run after an action: nothing owner-administrative, no rule action."""
PAYLOADS: Derived[dict[str, Field]] = Derived(lambda spec: None if spec.rule_exempt else rule_fields(spec))
"""Payload fields of every action a rule can be `when`. Dates are parsed before rules see them."""


class _DateFields:
    """The payload field names that hold a date, in any action (context.py parses them)."""

    def __init__(self) -> None:
        self._at, self._names = -1, frozenset[str]()

    def __contains__(self, name: object) -> bool:
        if self._at != generation():
            self._names = frozenset(
                name for fields in PAYLOADS.values() for name, f in fields.items() if DATE in f.type
            )
            self._at = generation()
        return name in self._names


DATE_FIELDS = _DateFields()
ACTIVITY_ACTIONS: Derived[bool] = Derived(lambda spec: not spec.rule_exempt and "activityId" in rule_fields(spec))

Tree = dict[str, Union[Var, "Tree"]]

ACTOR: Tree = {
    "type": Var(T(STRING), ACTOR_TYPES),
    "id": Var(T(STRING, NULL)),
    "role": Var(T(STRING, NULL), ROLES),
}
ACTIVITY: Tree = {
    "id": Var(T(STRING, NULL)),
    "title": Var(T(STRING, NULL)),
    "status": Var(T(STRING, NULL), ACTIVITY_STATUSES),
    "dueAt": Var(T(DATE, NULL)),
    "scheduledFor": Var(T(DATE, NULL)),
    "assigneeId": Var(T(STRING, NULL)),
    "createdBy": Var(T(STRING, NULL)),
}
"""`collaboration.activity`: null when the payload names no activity, or one that does not exist."""

COLLABORATION: Tree = {
    "id": Var(T(STRING)),
    "title": Var(T(STRING)),
    "status": Var(T(STRING), ("active", "archived")),
    "memberCount": Var(T(NUMBER)),
    "activityCount": Var(T(NUMBER)),
    "openActivityCount": Var(T(NUMBER)),
    "version": Var(T(NUMBER)),
    "timezone": Var(T(STRING, NULL)),
    "activity": ACTIVITY,
}


def payload_tree(action: str) -> Tree:
    """`payload.*` for a rule on `action`; on `"*"`, every field of any action, possibly null."""
    if action != "*":
        return {
            name: Var(f.type if f.required else f.type | {NULL}, f.values)
            for name, f in PAYLOADS.get(action, {}).items()
        }
    defined: dict[str, list[Field]] = {}
    for fields in PAYLOADS.values():
        for name, f in fields.items():
            defined.setdefault(name, []).append(f)
    return {name: Var(frozenset().union(*(f.type for f in fs)) | {NULL}, _values(fs)) for name, fs in defined.items()}


def _values(fields: list[Field]) -> tuple[str, ...] | None:
    if any(f.values is None for f in fields):
        return None
    return tuple(sorted({value for f in fields for value in f.values or ()}))


def lookup(path: str, action: str) -> Var | str:
    """The static type of variable `path` in a rule on `action`, or why there is no such variable."""
    if "" in path.split("."):
        return f"unknown variable {path[:60]!r}: a variable is names joined by dots, none of them empty"
    root, _, rest = path.partition(".")
    if root == "now":
        return Var(T(DATE)) if not rest else "now is a date; it has no fields"
    trees: dict[str, Tree] = {"payload": payload_tree(action), "actor": ACTOR, "collaboration": COLLABORATION}
    if root not in trees:
        return f"unknown variable {path!r}: variables start with payload, actor, collaboration or now"
    if rest.split(".")[0] == "activity" and root == "collaboration" and action not in ("*", *ACTIVITY_ACTIONS):
        return (
            f"collaboration.activity is only known for actions on an activity "
            f"({', '.join(ACTIVITY_ACTIONS)}), not {action}"
        )
    node: Var | Tree = trees[root]
    walked = root
    for part in rest.split(".") if rest else ():
        if isinstance(node, Var):
            return f"{walked} is a {', '.join(sorted(node.type - {NULL}))}; it has no field {part!r}"
        if part not in node:
            known = ", ".join(node) or "no fields"
            owner = f"the payload of {action}" if walked == "payload" and action != "*" else walked
            return f"unknown variable {path!r}: {owner} has {known}"
        node, walked = node[part], f"{walked}.{part}"
    if isinstance(node, dict):
        return f"{walked} is an object; name one of its fields: {', '.join(node) or 'it has none'}"
    return node
