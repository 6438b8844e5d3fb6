"""The variables a rule sees, built from the action and the stored collaboration document.

Tolerant by design: a missing or odd field becomes null, never an exception;
the interpreter's run-time type checks then report it as the rule's error.
"""

from __future__ import annotations

from datetime import datetime, timezone, tzinfo
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from backend.clock import parse_iso
from backend.rules.schema import DATE_FIELDS, OPEN_STATUSES


class Env(NamedTuple):
    roots: dict[str, Any]
    """`{"payload", "actor", "collaboration", "now"}`: what `var` paths walk."""
    zone: tzinfo
    """The collaboration's time zone (`settings.timezone`), else UTC: for `weekday` and `hour`."""


def build_env(*, action: str, actor: Any, payload: Any, collaboration: Any, now: datetime) -> Env:
    doc = collaboration if isinstance(collaboration, dict) else {}
    payload = payload if isinstance(payload, dict) else {}
    settings: dict[str, Any] = doc["settings"] if isinstance(doc.get("settings"), dict) else {}
    zone_name = settings.get("timezone")
    roots = {
        "payload": {key: _date(value) if key in DATE_FIELDS else value for key, value in payload.items()},
        "actor": _actor(actor, doc),
        "collaboration": {
            "id": doc.get("_id"),
            "title": doc.get("title"),
            "status": doc.get("status"),
            "memberCount": len(_list(doc.get("members"))),
            "activityCount": len(_list(doc.get("activities"))),
            "openActivityCount": _count(doc.get("activities"), OPEN_STATUSES),
            "version": doc.get("version"),
            "timezone": zone_name if isinstance(zone_name, str) else None,
            "activity": _activity(doc, payload.get("activityId")),
        },
        "now": _date(now),
    }
    return Env(roots, _zone(zone_name))


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _count(activities: Any, statuses: tuple[str, ...]) -> int:
    return sum(1 for item in _list(activities) if isinstance(item, dict) and item.get("status") in statuses)


def _actor(actor: Any, doc: dict[str, Any]) -> dict[str, Any]:
    actor = actor if isinstance(actor, dict) else {}
    kind, actor_id = actor.get("type"), actor.get("id")
    role = None
    if kind == "user":
        role = next(
            (m.get("role") for m in _list(doc.get("members")) if isinstance(m, dict) and m.get("userId") == actor_id),
            None,
        )
    return {"type": kind, "id": actor_id, "role": role}


def _activity(doc: dict[str, Any], activity_id: Any) -> dict[str, Any] | None:
    if not isinstance(activity_id, str):
        return None
    for item in _list(doc.get("activities")):
        if isinstance(item, dict) and item.get("id") == activity_id:
            return {
                "id": item.get("id"),
                "title": item.get("title"),
                "status": item.get("status"),
                "dueAt": _date(item.get("dueAt")),
                "scheduledFor": _date(item.get("scheduledFor")),
                "assigneeId": item.get("assigneeId"),
                "createdBy": item.get("createdBy"),
            }
    return None


def _date(value: Any) -> Any:
    """Datetimes become aware UTC; ISO strings are parsed; anything else is left for the type checks."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value
    if isinstance(value, str) and len(value) <= 64:
        try:
            return parse_iso(value)
        except (ValueError, OverflowError):
            return value
    return value


def _zone(name: Any) -> tzinfo:
    if isinstance(name, str) and 0 < len(name) <= 64:
        try:
            return ZoneInfo(name)
        except (ValueError, OSError, KeyError):  # ZoneInfoNotFoundError is a KeyError
            pass
    return timezone.utc
