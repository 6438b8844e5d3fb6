"""The action catalogue (DESIGN.md section 3): the one declaration of every action.

An `ActionSpec` says everything about an action: its payload struct, least role,
AI policy, whether it runs on an archived collaboration, what rules may say about
it (exempt, follow-up, the payload fields they see), the I/O it needs before its
pure step (`prepare`, backend/preparations.py), its effect (a pure function of
backend/domain/effects.py) and what follows its commit (`after`). The engine,
the rules schema (backend/rules/schema.py), the OpenAPI document, the AI's
prompt and the SPA's tables (frontend/src/generated/catalogue.ts, written by
`tandem catalogue-ts`) are all derived from `CATALOGUE`; docs/actions.md says
how to add an action.

The derived tables below (`AI_ACTIONS`, ...) are live views: an action
declared later (`declare`, as a test does) is in them at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Generic, Iterator, Literal, Mapping, TypeVar

from backend import preparations as io
from backend.domain import effects as fx
from backend.domain import payloads as p

AIPolicy = Literal["auto", "approval", "never"]
Kind = Literal["create", "update", "message"]
"""create: makes a collaboration, effect(payload, ctx) -> Effect; update: effect(collaboration copy,
payload, ctx, touched) -> result (domain/effects.py); message: effect(collaboration, payload, ctx) -> Effect."""


@dataclass(frozen=True)
class ActionSpec:
    name: str
    payload: type
    role: str | None  # least role; None: any signed-in user
    ai: AIPolicy
    kind: Kind = "update"
    effect: Callable[..., Any] | None = None
    """The pure step (domain/effects.py); its signature depends on `kind`."""
    prepare: io.Prepare | None = None
    """async (engine, Preparing) -> None: the I/O the effect needs (directory, store, rule validation)."""
    after: io.After | None = None
    """(engine, result) after the action is committed."""
    archived: bool = False
    """Allowed on an archived collaboration."""
    rule_exempt: str | None = None
    """Why no rule applies to it; None: rules may name it in `when`."""
    followup: bool = False
    """A rule may run it after an action."""
    rule_fields: tuple[str, ...] | None = None
    """The payload fields a rule sees (None: all of them)."""


CATALOGUE: dict[str, ActionSpec] = {}
_generation = [0]


def declare(spec: ActionSpec) -> Callable[[], None]:
    """Add an action to the catalogue; returns what takes it out again (a test's throwaway action)."""
    if spec.name in CATALOGUE:
        raise ValueError(f"action {spec.name!r} is declared twice")
    if spec.effect is None:
        raise ValueError(f"action {spec.name!r} has no effect")
    CATALOGUE[spec.name] = spec
    _generation[0] += 1

    def undo() -> None:
        CATALOGUE.pop(spec.name, None)
        _generation[0] += 1

    return undo


def generation() -> int:
    """A number that changes whenever the catalogue does (what a derived table caches by)."""
    return _generation[0]


_RULES_ARE_THE_OWNERS = "an owner can always change the rules"

for _spec in (
    ActionSpec(
        "createCollaboration",
        p.CreateCollaboration,
        None,
        "never",
        "create",
        fx.create_collaboration,
        rule_exempt="there is no collaboration, and so no rule, before it",
    ),
    ActionSpec("updateDetails", p.UpdateDetails, "editor", "auto", effect=fx.update_details, followup=True),
    ActionSpec("archiveCollaboration", p.Empty, "owner", "approval", effect=fx.archive),
    ActionSpec(
        "addMember",
        p.AddMember,
        "owner",
        "approval",
        effect=fx.add_member,
        prepare=io.prepare_add_member,
        after=io.member_added,
    ),
    ActionSpec("removeMember", p.RemoveMember, "owner", "approval", effect=fx.remove_member, archived=True),
    ActionSpec("changeRole", p.ChangeRole, "owner", "approval", effect=fx.change_role, archived=True),
    ActionSpec(
        "leaveCollaboration",
        p.Empty,
        "viewer",
        "never",
        effect=fx.leave,
        archived=True,
        rule_exempt="a member can always leave",
    ),
    ActionSpec("proposeActivity", p.ProposeActivity, "editor", "auto", effect=fx.propose, followup=True),
    ActionSpec("scheduleActivity", p.ScheduleActivity, "editor", "auto", effect=fx.schedule, followup=True),
    ActionSpec("completeActivity", p.CompleteActivity, "editor", "auto", effect=fx.complete, followup=True),
    ActionSpec("cancelActivity", p.CancelActivity, "editor", "approval", effect=fx.cancel, followup=True),
    ActionSpec(
        "sendMessage",
        p.SendMessage,
        "viewer",
        "auto",
        "message",
        fx.send_message,
        prepare=io.prepare_send_message,
        followup=True,
        rule_fields=("text",),
    ),
    ActionSpec("setProtectedActions", p.SetProtectedActions, "owner", "never", effect=fx.set_protected, archived=True),
    *(
        ActionSpec(
            name,
            payload,
            "owner",
            "never",
            effect=fx.set_rules,
            prepare=io.prepare_rules,
            rule_exempt=_RULES_ARE_THE_OWNERS,
        )
        for name, payload in (("addRule", p.AddRule), ("updateRule", p.UpdateRule), ("removeRule", p.RemoveRule))
    ),
):
    declare(_spec)

V = TypeVar("V")


class Derived(Mapping[str, V], Generic[V]):
    """A table derived from the catalogue (action name -> value, in the catalogue's order),
    computed again after the catalogue changes. Iterating it gives the action names."""

    def __init__(self, derive: Callable[[ActionSpec], V | None]):
        self._derive = derive
        self._at = -1
        self._table: dict[str, V] = {}

    def _current(self) -> dict[str, V]:
        if self._at != _generation[0]:
            table = {}
            for name, spec in CATALOGUE.items():
                value = self._derive(spec)
                if value is not None and value is not False:
                    table[name] = value
            self._table, self._at = table, _generation[0]
        return self._table

    def __getitem__(self, name: str) -> V:
        return self._current()[name]

    def __contains__(self, name: object) -> bool:
        return name in self._current()

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._current()))

    def __len__(self) -> int:
        return len(self._current())

    def __repr__(self) -> str:
        return f"Derived({list(self._current())})"


# Actions the AI may propose at all, and those that need an owner's approval by default.
AI_ACTIONS: Derived[bool] = Derived(lambda spec: spec.ai != "never")
DEFAULT_PROTECTED: Derived[bool] = Derived(lambda spec: spec.ai == "approval")
# Actions still allowed on an archived collaboration.
ALLOWED_WHEN_ARCHIVED: Derived[bool] = Derived(lambda spec: spec.archived)
