"""The stored documents, as msgspec structs.

Documents are stored with these field names; `_id` is the MongoDB id and is
sent as `id` in JSON (see `backend.domain.json`). Times are UTC datetimes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Iterator, Literal, Sequence, TypeVar, overload

import msgspec

from backend.domain.roles import Role

ActivityStatus = Literal["proposed", "scheduled", "done", "cancelled"]
CollaborationStatus = Literal["active", "archived"]
_Item = TypeVar("_Item", bound=msgspec.Struct)


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
    activities: Sequence[Activity]  # a list, or the stored activities as read (`Activities`)
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
        if type(self.activities) is Activities:
            return self.activities.find(activity_id)
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


class _AsRead(Sequence[_Item]):
    """A list of stored sub-documents, each converted to its struct when first read.

    `read_collaboration` (the engine's read) leaves `members` and `activities` as stored: most
    actions read one member (the actor's: `Collaboration.member`, which compares the stored
    `userId`s and converts only the one it finds) and at most one activity, and converting all
    of them (a hundred member dicts, each with its datetime, most of them long out of the CPU's
    caches) was the largest single step of an action. Reading it as a sequence (`len`, an index,
    iterating, `list(...)`) gives what `from_doc` would have made, item for item; an action that
    changes the list replaces it with a list of its own (effects.py), and `to_doc` encodes it as
    the list it stands for. A stored item that from_doc refuses is refused when it is read."""

    __slots__ = ("_stored", "_made")
    _kind: type[_Item]
    _key: str  # the field `find` compares

    def __init__(self, stored: list[Any]):
        self._stored = stored
        self._made: list[_Item | None] = [None] * len(stored)

    def __len__(self) -> int:
        return len(self._stored)

    @overload
    def __getitem__(self, index: int) -> _Item: ...

    @overload
    def __getitem__(self, index: slice) -> list[_Item]: ...

    def __getitem__(self, index: int | slice) -> _Item | list[_Item]:
        if isinstance(index, slice):
            return [self[i] for i in range(len(self._stored))[index]]
        made = self._made[index]
        if made is None:
            made = msgspec.convert(self._stored[index], self._kind)
            self._made[index] = made
        return made

    def __iter__(self) -> Iterator[_Item]:
        if self._made and self._made.count(None) == len(self._made):  # all of it: in one conversion
            self._made = list(msgspec.convert(self._stored, list[self._kind]))  # type: ignore[name-defined]  # a type made at run time
        for index in range(len(self._stored)):
            yield self[index]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (_AsRead, list)):
            return list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable, as the list it stands for

    def __repr__(self) -> str:
        return f"{type(self).__name__}({list(self)!r})"

    def find(self, value: str | None) -> _Item | None:
        """The first item whose `_key` field is `value`, as a loop over the converted list finds
        it: the stored items before it are compared, not converted (one that is not a dict is)."""
        for index, stored in enumerate(self._stored):
            if type(stored) is not dict:
                item = self[index]  # msgspec.ValidationError, as from_doc
                if getattr(item, self._key) == value:
                    return item
            elif stored.get(self._key) == value:
                return self[index]
        return None


class Members(_AsRead[Member]):
    """A collaboration's stored members as read (`_AsRead`), found by `userId`."""

    __slots__ = ()
    _kind, _key = Member, "userId"


class Activities(_AsRead[Activity]):
    """A collaboration's stored activities as read (`_AsRead`), found by `id`."""

    __slots__ = ()
    _kind, _key = Activity, "id"


def _as_builtins(value: Any) -> Any:
    if isinstance(value, _AsRead):
        return list(value)
    raise NotImplementedError(f"Objects of type {type(value).__name__} are not supported")


def to_doc(value: msgspec.Struct) -> dict[str, Any]:
    """A struct as a MongoDB document (datetimes kept as datetimes)."""
    doc: dict[str, Any] = msgspec.to_builtins(value, builtin_types=(datetime,), enc_hook=_as_builtins)
    return doc


def from_doc(doc: dict[str, Any], kind: type[msgspec.Struct]) -> Any:
    """A stored document as a struct (unknown stored fields are ignored)."""
    return msgspec.convert(doc, kind)


def read_collaboration(doc: dict[str, Any]) -> Collaboration:
    """`from_doc(doc, Collaboration)` for the engine, with `members` and `activities` converted
    as they are read (`Members`, `Activities`). Every other field is converted and checked here,
    as `from_doc` does."""
    members, activities = doc.get("members"), doc.get("activities")
    if type(members) is not list or type(activities) is not list:
        return msgspec.convert(doc, Collaboration)  # refused as from_doc refuses it
    collab: Collaboration = msgspec.convert({**doc, "members": [], "activities": []}, Collaboration)
    collab.members, collab.activities = Members(members), Activities(activities)
    return collab
