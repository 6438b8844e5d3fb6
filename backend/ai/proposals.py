"""Validating what the AI answered, before anything runs.

A check-in answer is about ONE collaboration, the only one its prompt carried:
`{"actions": [{"action", "payload", "reason", "reminds"?, "collaborationId"?}]}`.
Each proposal is kept only if it is well formed, names a catalogue action the
AI may take (AI policy auto or approval) and targets that collaboration (a
`collaborationId`, when given, must be its id); everything else is counted by
kind, and each refusal says why:

    malformed  not JSON, not the shape above, or a payload the action does not accept
               (checked like a request's: types, required and unknown fields, sizes)
    unknown    an action the catalogue does not have
    forbidden  an action the AI may never take (setProtectedActions, rules, ...)
    foreign    another collaboration ("targets another collaboration")
    excess     past MAX_PER_COLLABORATION proposals for one collaboration

What passes is also storable as given (the run record keeps it), and still goes
through the action engine as the AI, which checks the lifecycle, the rules and
the owner's protected actions.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from backend.domain import payloads, suggestions
from backend.domain.catalogue import CATALOGUE
from backend.domain.roles import at_least
from backend.errors import TandemError
from backend.store.size import check_storable

MAX_PER_COLLABORATION = 5
MAX_PROBLEMS = 20  # problems kept per answer, for the run record
KINDS = ("malformed", "unknown", "forbidden", "foreign", "excess")


FOREIGN = "targets another collaboration"
Reminds = Annotated[list[Annotated[str, msgspec.Meta(max_length=100)]], msgspec.Meta(max_length=40)]


class Proposal(msgspec.Struct, frozen=True):
    collaborationId: str
    action: str
    payload: dict[str, Any] = {}
    reason: str | None = None
    reminds: list[str] = []  # sendMessage: the activities this message reminds people of


class _Item(msgspec.Struct):
    action: str
    payload: dict[str, Any] = {}
    reason: str | None = None
    collaborationId: str | None = None
    reminds: Reminds | None = None


class Screened(msgspec.Struct):
    accepted: list[Proposal]
    invalid: dict[str, int]
    problems: list[dict[str, Any]]

    @property
    def invalid_total(self) -> int:
        return sum(self.invalid.values())


class _Screen:
    def __init__(self) -> None:
        self.invalid = dict.fromkeys(KINDS, 0)
        self.problems: list[dict[str, Any]] = []

    def refuse(self, kind: str, **detail: Any) -> None:
        self.invalid[kind] += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append({"kind": kind, **detail})


def _decode_object(text: str, screen: _Screen) -> dict[str, Any] | None:
    try:
        data = msgspec.json.decode(text.encode() if isinstance(text, str) else text)
    except msgspec.DecodeError as exc:
        screen.refuse("malformed", detail=f"not JSON: {exc}")
        return None
    except RecursionError:
        screen.refuse("malformed", detail="not JSON: nested too deeply")
        return None
    if not isinstance(data, dict):
        screen.refuse("malformed", detail="the answer is not a JSON object")
        return None
    return data


def _items(data: dict[str, Any], screen: _Screen) -> list[_Item]:
    raw = data.get("actions", [])
    if not isinstance(raw, list):
        screen.refuse("malformed", detail="`actions` is not a list")
        return []
    items = []
    for index, entry in enumerate(raw):
        try:
            items.append(msgspec.convert(entry, _Item))
        except msgspec.ValidationError as exc:
            screen.refuse("malformed", index=index, detail=str(exc))
    return items


def _allowed(item: _Item, index: int, screen: _Screen) -> bool:
    spec = CATALOGUE.get(item.action)
    if spec is None:
        screen.refuse("unknown", index=index, action=item.action[:100])
        return False
    if spec.ai == "never":
        screen.refuse("forbidden", index=index, action=item.action)
        return False
    return True


def _reason(reason: str | None) -> str | None:
    return reason[:1000] if isinstance(reason, str) and reason.strip() else None


def _payload_problem(item: _Item, max_message_chars: int) -> str | None:
    if item.action == "sendMessage" and "suggestions" in item.payload:
        return "suggestions are not the model's to set: only the AI chat puts them on its answer"
    try:
        payloads.decode(CATALOGUE[item.action].payload, item.payload, max_message_chars=max_message_chars)
        check_storable(item.payload, "payload")
    except TandemError as exc:
        fields = (exc.details or {}).get("fields") or []
        where = f" ({fields[0]['path']}: {fields[0]['message']})" if fields else ""
        return (exc.message + where)[:300]
    return None


def screen_checkin(text: str, collaboration_id: str, max_message_chars: int = 4000) -> Screened:
    """Keep the proposals of a check-in answer about `collaboration_id` that may run; count the
    others by kind. Whatever the answer names, an accepted proposal targets `collaboration_id`."""
    screen = _Screen()
    data = _decode_object(text, screen)
    accepted: list[Proposal] = []
    if data is not None and "actions" not in data:
        screen.refuse("malformed", detail="no `actions` list")
    for index, item in enumerate(_items(data or {}, screen)):
        if not _allowed(item, index, screen):
            continue
        if item.collaborationId not in (None, collaboration_id):
            screen.refuse(
                "foreign", index=index, action=item.action, reason=FOREIGN, target=str(item.collaborationId)[:100]
            )
            continue
        problem = _payload_problem(item, max_message_chars)
        if problem is not None:
            screen.refuse("malformed", index=index, action=item.action, detail=problem)
            continue
        if len(accepted) >= MAX_PER_COLLABORATION:
            screen.refuse("excess", index=index, action=item.action)
            continue
        reminds = list(dict.fromkeys(item.reminds or [])) if item.action == "sendMessage" else []
        accepted.append(Proposal(collaboration_id, item.action, item.payload, _reason(item.reason), reminds))
    return Screened(accepted, screen.invalid, screen.problems)


class ChatAnswer(msgspec.Struct):
    reply: str | None
    suggestions: list[dict[str, Any]]  # for the asker: each stored suggestion with `allowed` and `needs`
    invalid: dict[str, int]
    stored: list[dict[str, Any]] = []  # as the answer's message keeps them (domain/suggestions.py)


def screen_chat(text: str, collaboration_id: str, max_message_chars: int = 4000, role: str | None = None) -> ChatAnswer:
    """The reply text and the suggestions: AI actions on this collaboration, valid payloads (normalised),
    at most MAX_PER_COLLABORATION and MAX_SUGGESTIONS_BYTES of them; `stored` as the answer's message
    keeps them, `suggestions` each marked with whether a member with `role` (the asker) may run it,
    and else the role it needs."""
    screen = _Screen()
    data = _decode_object(text, screen) or {}
    reply = data.get("reply")
    reply = reply.strip()[:max_message_chars] if isinstance(reply, str) and reply.strip() else None
    stored: list[dict[str, Any]] = []
    room = suggestions.MAX_SUGGESTIONS_BYTES
    for index, item in enumerate(_items(data, screen)):
        if not _allowed(item, index, screen):
            continue
        if item.collaborationId not in (None, collaboration_id):
            screen.refuse("foreign", index=index, action=item.action, reason=FOREIGN)
            continue
        problem = _payload_problem(item, max_message_chars)
        if problem is not None:
            screen.refuse("malformed", index=index, action=item.action, detail=problem)
            continue
        kept = suggestions.one(
            {"action": item.action, "payload": item.payload, "reason": _reason(item.reason)},
            max_message_chars=max_message_chars,
            path=f"actions.{index}",
        )
        size = len(msgspec.json.encode(kept)) + 1  # and its comma in the list
        if len(stored) >= min(MAX_PER_COLLABORATION, suggestions.MAX_SUGGESTIONS) or size > room - 2:
            screen.refuse("excess", index=index, action=item.action)
            continue
        room -= size
        stored.append(kept)
    for_asker = [
        {"action": s["action"], "payload": s["payload"], "reason": s.get("reason"), **_runnable_by(role, s["action"])}
        for s in stored
    ]
    return ChatAnswer(reply, for_asker, screen.invalid, stored)


def _runnable_by(role: str | None, action: str) -> dict[str, Any]:
    """`allowed`: the action's least role lets `role` run it (else 403); `needs`: that role, when not."""
    least = CATALOGUE[action].role
    allowed = least is None or at_least(role, least)
    return {"allowed": allowed, "needs": None if allowed else least}
