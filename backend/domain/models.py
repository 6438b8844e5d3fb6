"""The stored documents, as msgspec structs.

Documents are stored with these field names; `_id` is the MongoDB id and is
sent as `id` in JSON (see `backend.domain.json`). Times are UTC datetimes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import msgspec

from backend.domain.roles import Role

ActivityStatus = Literal["proposed", "scheduled", "done", "cancelled"]
CollaborationStatus = Literal["active", "archived"]


class Actor(msgspec.Struct, frozen=True, omit_defaults=True):
    """Who runs an action: a user, the AI (with its run id), or a rule."""

    type: Literal["user", "ai", "rule"]
    id: str | None = None
    runId: str | None = None
    ruleId: str | None = None

    @property
    def is_user(self) -> bool:
        return self.type == "user"

    @property
    def is_ai(self) -> bool:
        return self.type == "ai"

    @classmethod
    def user(cls, user_id: str) -> "Actor":
        return cls(type="user", id=user_id)

    @classmethod
    def ai(cls, run_id: str | None = None) -> "Actor":
        return cls(type="ai", runId=run_id)


class Member(msgspec.Struct, omit_defaults=True):
    userId: str
    email: str | None
    role: Role
    joinedAt: datetime
    # Added by email (account or not: the entry must not tell): when, and by which user.
    # Both are removed by that user's first request after the add (backend/auth/invitations.py).
    invitedAt: datetime | None = None
    invitedBy: str | None = None


class Activity(msgspec.Struct):
    id: str
    title: str
    description: str | None
    status: ActivityStatus
    dueAt: datetime | None
    scheduledFor: datetime | None
    assigneeId: str | None
    createdBy: dict[str, Any]
    createdAt: datetime
    updatedAt: datetime
    cancelReason: str | None = None
    completedAt: datetime | None = None


class CollaborationSettings(msgspec.Struct):
    protectedActions: list[str]
    timezone: str = "UTC"


class LastAction(msgspec.Struct):
    name: str
    actor: dict[str, Any]
    at: datetime


class Collaboration(msgspec.Struct):
    _id: str = msgspec.field(name="_id")
    title: str
    description: str | None
    status: CollaborationStatus
    members: list[Member]
    memberIds: list[str]
    activities: list[Activity]
    settings: CollaborationSettings
    # Any, not list[dict]: a stored `rules` field that cannot be read must reach the rules engine,
    # which fails closed on it (rules/outcome.py), instead of failing every action with a 500
    rules: Any
    version: int
    createdAt: datetime
    updatedAt: datetime
    lastActivityAt: datetime
    lastAction: LastAction | None = None

    @property
    def id(self) -> str:
        return self._id

    def member(self, user_id: str | None) -> Member | None:
        for m in self.members:
            if m.userId == user_id:
                return m
        return None

    def activity(self, activity_id: str) -> Activity | None:
        for a in self.activities:
            if a.id == activity_id:
                return a
        return None

    def owners(self) -> list[Member]:
        return [m for m in self.members if m.role == "owner"]


class Message(msgspec.Struct, omit_defaults=True):
    _id: str = msgspec.field(name="_id")
    collaborationId: str
    author: dict[str, Any]
    text: str
    createdAt: datetime
    replyTo: str | None = None  # the id of the message of the same collaboration this one answers
    # The AI's answer: the actions it suggests, [{action, payload, reason?}] (domain/suggestions.py)
    suggestions: list[dict[str, Any]] | None = None


def to_doc(value: msgspec.Struct) -> dict[str, Any]:
    """A struct as a MongoDB document (datetimes kept as datetimes)."""
    doc: dict[str, Any] = msgspec.to_builtins(value, builtin_types=(datetime,))  # a struct: an object
    return doc


def from_doc(doc: dict[str, Any], kind: type[msgspec.Struct]) -> Any:
    """A stored document as a struct (unknown stored fields are ignored)."""
    return msgspec.convert(doc, kind)
