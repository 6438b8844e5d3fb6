"""The stored documents, as msgspec structs.

Documents are stored with these field names; `_id` is the MongoDB id and is
sent as `id` in JSON (see `backend.domain.json`). Times are UTC datetimes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Iterator, Literal, Sequence, overload

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
    members: Sequence[Member]  # a list, or the stored members as read (`Members`)
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
        if type(self.members) is Members:
            return self.members.find(user_id)
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


class Members(Sequence[Member]):
    """A collaboration's stored members, each converted to a `Member` when first read.

    `read_collaboration` (the engine's read) leaves `members` as stored: most actions read one
    member, the actor's (`Collaboration.member`, which compares the stored `userId`s and converts
    only the one it finds), and converting all of them (a hundred dicts, each with its datetime,
    most of them long out of the CPU's caches) was the largest single step of an action. Reading
    it as a sequence (`len`, an index, iterating, `list(...)`) gives what `from_doc` would have
    made, member for member; an action that changes the members replaces the sequence with a
    list of its own (effects.py), and `to_doc` encodes it as a list."""

    __slots__ = ("_stored", "_made")

    def __init__(self, stored: list[Any]):
        self._stored = stored
        self._made: list[Member | None] = [None] * len(stored)

    def __len__(self) -> int:
        return len(self._stored)

    @overload
    def __getitem__(self, index: int) -> Member: ...

    @overload
    def __getitem__(self, index: slice) -> list[Member]: ...

    def __getitem__(self, index: int | slice) -> Member | list[Member]:
        if isinstance(index, slice):
            return [self[i] for i in range(len(self._stored))[index]]
        made = self._made[index]
        if made is None:
            try:
                made = self._made[index] = msgspec.convert(self._stored[index], Member)
            except msgspec.ValidationError as exc:  # say where, as from_doc would: `$.members[2].joinedAt`
                where = f"`$.members[{index % len(self._stored)}]"
                raise msgspec.ValidationError(str(exc).replace("`$", where, 1)) from None
        return made

    def __iter__(self) -> Iterator[Member]:
        for index in range(len(self._stored)):
            yield self[index]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (Members, list)):
            return list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable, as the list it stands for

    def __repr__(self) -> str:
        return f"Members({list(self)!r})"

    def find(self, user_id: str | None) -> Member | None:
        """The first member whose `userId` is `user_id` (as `Collaboration.member`); a stored
        member that is not a dict is converted on the way, and refused as `from_doc` refuses it."""
        for index, stored in enumerate(self._stored):
            if type(stored) is not dict:
                member = self[index]  # msgspec.ValidationError, as from_doc
                if member.userId == user_id:
                    return member
            elif stored.get("userId") == user_id:
                return self[index]
        return None


def _as_builtins(value: Any) -> Any:
    if type(value) is Members:
        return list(value)
    raise TypeError(f"Encoding objects of type {type(value).__name__} is unsupported")  # as msgspec says it


def to_doc(value: msgspec.Struct) -> dict[str, Any]:
    """A struct as a MongoDB document (datetimes kept as datetimes)."""
    doc: dict[str, Any] = msgspec.to_builtins(value, builtin_types=(datetime,), enc_hook=_as_builtins)
    return doc


def from_doc(doc: dict[str, Any], kind: type[msgspec.Struct]) -> Any:
    """A stored document as a struct (unknown stored fields are ignored)."""
    return msgspec.convert(doc, kind)


def read_collaboration(doc: dict[str, Any]) -> Collaboration:
    """`from_doc(doc, Collaboration)` for the engine, with `members` converted as they are read
    (`Members`). Every other field is converted and checked here, as `from_doc` does."""
    stored = doc.get("members")
    if type(stored) is not list:
        return msgspec.convert(doc, Collaboration)  # refused as from_doc refuses it
    collab: Collaboration = msgspec.convert({**doc, "members": []}, Collaboration)
    collab.members = Members(stored)
    return collab
