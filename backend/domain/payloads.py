"""Payload shapes of the action catalogue, validated with msgspec.

Unknown fields, wrong types and out-of-range values are refused with
`validation_failed` naming the failing field (`payload.title`). A time is an
ISO 8601 string with a zone (never a number); it is kept in UTC, and in UTC it
lies between EARLIEST and LATEST (DESIGN.md §3), so every stored time has a
four-digit year and room for arithmetic (a rule's `+ days(1)`, the AI's "a week ago").
"""

from __future__ import annotations

import re
import typing
from datetime import datetime, timezone
from typing import Annotated, Any, Literal

import msgspec

from backend.errors import ValidationFailed

Title = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Description = Annotated[str, msgspec.Meta(max_length=5000)]
Reason = Annotated[str, msgspec.Meta(max_length=1000)]
EARLIEST = datetime(1970, 1, 1, tzinfo=timezone.utc)
LATEST = datetime(2999, 12, 31, 23, 59, 59, 999999, tzinfo=timezone.utc)
"""Every time in a payload lies within these bounds (inclusive; 2999-12-31T23:59:59Z and its fraction)."""

Id = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
Email = Annotated[str, msgspec.Meta(min_length=3, max_length=320)]
RoleName = Literal["owner", "editor", "viewer"]


class _Payload(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    pass


class CreateCollaboration(_Payload):
    title: Title
    description: Description | None = None


class UpdateDetails(_Payload):
    title: Title | None = None
    description: Description | None = None


class Empty(_Payload):
    pass


class AddMember(_Payload):
    email: Email
    role: RoleName


class RemoveMember(_Payload):
    userId: Id


class ChangeRole(_Payload):
    userId: Id
    role: RoleName


class ProposeActivity(_Payload):
    title: Title
    description: Description | None = None
    dueAt: datetime | None = None
    assigneeId: Id | None = None


class ScheduleActivity(_Payload):
    activityId: Id
    scheduledFor: datetime


class CompleteActivity(_Payload):
    activityId: Id


class CancelActivity(_Payload):
    activityId: Id
    reason: Reason | None = None


class Suggestion(_Payload):
    """An action the AI's answer suggests (domain/suggestions.py checks the action and its payload)."""

    action: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    payload: dict[str, Any] = msgspec.field(default_factory=dict)
    reason: Reason | None = None


class SendMessage(_Payload):
    text: str
    replyTo: Id | None = None  # a message of the same collaboration (checked by the engine)
    # Only on the AI's answer (the engine refuses them from anyone else); domain/suggestions.py
    suggestions: Annotated[list[Suggestion], msgspec.Meta(max_length=5)] | None = None


class SetProtectedActions(_Payload):
    actions: Annotated[list[str], msgspec.Meta(max_length=32)]


class AddRule(_Payload):
    rule: dict[str, Any]


class UpdateRule(_Payload):
    rule: dict[str, Any]


class RemoveRule(_Payload):
    ruleId: Id


_PATH = re.compile(r" - at `\$(.*)`$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _field_path(message: str) -> tuple[str, str]:
    unknown = re.search(r"unknown field `([^`]*)`", message)
    missing = re.search(r"missing required field `([^`]*)`", message)
    match = _PATH.search(message)
    found = unknown or missing
    if found:
        prefix = "payload" + (re.sub(r"\[(\d+)\]", r".\1", match.group(1)) if match else "")
        return f"{prefix}.{found.group(1)}", "Unknown field" if unknown else "Required"
    if not match:
        return "payload", message
    inner = match.group(1)
    path = "payload" + re.sub(r"\[(\d+)\]", r".\1", inner)
    return path, message[: match.start()]


def decode(kind: type[_Payload], raw: Any, *, max_message_chars: int = 4000) -> Any:
    """Validate `raw` into the payload struct `kind`, or raise ValidationFailed."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ValidationFailed.at("payload", "Expected an object")
    _check_times(kind, raw)
    try:
        # Strict: a string still becomes a datetime, but a number never does (no Unix timestamps).
        payload = msgspec.convert(raw, kind, strict=True)
    except msgspec.ValidationError as exc:
        path, message = _field_path(str(exc))
        raise ValidationFailed.at(path, message) from None
    _extra_checks(payload, max_message_chars)
    return payload


_TIME_FIELDS: dict[type, tuple[str, ...]] = {}


def time_fields(kind: type[_Payload]) -> tuple[str, ...]:
    """The fields of payload struct `kind` that hold a time (`datetime`, optional or not), read from
    its annotations once: a new action's time field is checked without a table to update."""
    if kind not in _TIME_FIELDS:
        hints = typing.get_type_hints(kind)
        _TIME_FIELDS[kind] = tuple(
            name
            for name in kind.__struct_fields__
            if hints[name] is datetime or datetime in typing.get_args(hints[name])
        )
    return _TIME_FIELDS[kind]


def _check_times(kind: type[_Payload], raw: dict[str, Any]) -> None:
    """A time comes as an ISO 8601 string (or, from a stored approval, as a datetime); never a number."""
    for name in time_fields(kind):
        value = raw.get(name)
        if value is not None and not isinstance(value, (str, datetime)):
            raise ValidationFailed.at(f"payload.{name}", "A time is a string, e.g. 2026-11-23T10:00:00Z")


def _utc(name: str, value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValidationFailed.at(f"payload.{name}", "A time needs a zone, e.g. 2026-11-23T10:00:00Z")
    utc: datetime | None
    try:
        utc = value.astimezone(timezone.utc)
    except (OverflowError, ValueError):
        utc = None  # past year 1 or 9999 once in UTC
    if utc is None or not EARLIEST <= utc <= LATEST:
        raise ValidationFailed.at(f"payload.{name}", _OUT_OF_RANGE) from None
    return utc


_OUT_OF_RANGE = "Out of range: a time lies between 1970-01-01T00:00:00Z and 2999-12-31T23:59:59Z"


def _extra_checks(payload: Any, max_message_chars: int) -> None:
    for name in payload.__struct_fields__:  # (msgspec.structs.fields would evaluate the annotations: ~60 µs)
        value = getattr(payload, name)
        if isinstance(value, str) and name in {"title", "text"} and not value.strip():
            raise ValidationFailed.at(f"payload.{name}", "Must not be blank")
        if isinstance(value, datetime):
            setattr(payload, name, _utc(name, value))  # stored and sent in UTC (`Z`)
    if isinstance(payload, SendMessage):
        if not 1 <= len(payload.text) <= max_message_chars:
            raise ValidationFailed.at("payload.text", f"Must be 1 to {max_message_chars} characters")
    if isinstance(payload, AddMember) and not _EMAIL.match(payload.email):
        raise ValidationFailed.at("payload.email", "Not an email address")
    if isinstance(payload, UpdateDetails) and payload.title is None and payload.description is None:
        raise ValidationFailed.at("payload", "Give a title or a description")
