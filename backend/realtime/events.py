"""Tandem's realtime events, and how a MongoDB change becomes one. Pure: no I/O.

(Over 300 lines: every event type's encoding sits beside the others, so that a live event
and its replay are built by the same few functions and cannot drift.)

An `Event` is what the reader hands the hub: its JSON body (section 5 of the
design), encoded once into `frame` (the ASGI `websocket.send` message every
subscriber gets, the very same object, which knows its length in bytes), and
what the hub needs to route it:
the collaboration, the version (collaboration_updated only), the stream
sequence `seq` (collaboration_updated and message_created; backend/store/stream.py),
whether only owners may see it, and the membership part of the change.

collaboration_updated and message_created are built the same way from a live
change and from their stored form (`replayed`), so a replay sends the bytes the
live stream sent: the changes of an update are put in one canonical order
(`canonical`), whatever order the server reported them in.
"""

from __future__ import annotations

import struct
from typing import Any

import msgspec

from backend.wire import public

COLLABORATION_UPDATED = "collaboration_updated"
MESSAGE_CREATED = "message_created"
APPROVAL_CREATED = "approval_created"
APPROVAL_UPDATED = "approval_updated"
PRESENCE = "presence"
RESYNC_REQUIRED = "resync_required"
MEMBERSHIP_REMOVED = "membership_removed"


class Frame(dict):  # type: ignore[type-arg]  # Frame is a dict of any JSON values; dict[str, Any] would say no more
    """An ASGI `websocket.send` message whose JSON is held once, as UTF-8 bytes.

    `size` is the payload's length in bytes, counted once when it is encoded: what an outbox adds up
    against WS_QUEUE_BYTES and the history against its budget. The frame holds one bytes object:
    the payload as msgspec encoded it (`payload`) until backend.realtime.transport first writes it
    pre-framed, then the whole WebSocket frame (`wire`: header and payload, written as is to every
    subscriber), the payload being its tail. `frame["text"]` / `frame.get("text")` (what uvicorn's
    per-connection `websocket.send` reads, for permessage-deflate connections) decode it on demand
    and keep nothing, so a frame never holds its text as a str beside its bytes."""

    __slots__ = ("size", "wire", "payload")
    size: int
    wire: bytes | None
    payload: bytes | None

    def __init__(self, payload: bytes):
        super().__init__(type="websocket.send")
        self.payload = payload
        self.size = len(payload)
        self.wire = None

    def data(self) -> bytes | memoryview:
        """The payload's bytes (a view into `wire` once that is built)."""
        payload = self.payload
        if payload is not None:
            return payload
        wire = self.wire
        return memoryview(wire)[len(wire) - self.size :]  # type: ignore[arg-type]  # no payload means wire was built (framed), so it is not None here

    @property
    def text(self) -> str:
        return str(self.data(), "utf-8")

    def framed(self, header: bytes) -> bytes:
        """Build `wire` (`header` + the payload) and let go of the payload, which `wire` now holds."""
        wire = self.wire
        if wire is None:
            wire = self.wire = header + self.payload  # type: ignore[operator]  # before framing, the payload is set
            self.payload = None
        return wire

    def __missing__(self, key: str) -> Any:
        if key == "text":
            return self.text
        raise KeyError(key)

    def get(self, key: str, default: Any = None) -> Any:
        if key == "text":
            return self.text
        return super().get(key, default)


_encoder = msgspec.json.Encoder()  # as backend.wire.encode
_buffer = bytearray()
_KEEP_BUFFER = 65_536  # a larger buffer (a snapshot's) is let go after use


def encode_frame(body: dict[str, Any]) -> Frame:
    """`body` as one JSON text frame: the ASGI message to send, encoded once and shared.

    Encoded into a reused buffer and copied out once: msgspec's own `encode` returns a bytes object
    with up to half as much again allocated behind it, which the history would hold uncounted."""
    global _buffer
    _encoder.encode_into(body, _buffer)
    payload = bytes(_buffer)
    if len(_buffer) > _KEEP_BUFFER:
        _buffer = bytearray()
    return Frame(payload)


# -- frames on the wire: server-to-client frames are not masked, so their bytes are the same for all


def text_header(n: int) -> bytes:
    """The header of one unmasked, unfragmented text frame of `n` bytes (RFC 6455, 5.2): FIN and opcode 1,
    the length."""
    if n < 126:
        return bytes((0x81, n))
    if n < 65536:
        return struct.pack("!BBH", 0x81, 126, n)
    return struct.pack("!BBQ", 0x81, 127, n)


def text_frame(payload: bytes) -> bytes:
    """One unmasked, unfragmented text frame: the header, the payload."""
    return text_header(len(payload)) + payload


def wire(frame: Frame) -> bytes:
    """`frame` as bytes on the wire (backend/realtime/transport.py writes them as they are), built
    the first time from the payload msgspec encoded (which the frame then holds only as the tail of
    these bytes) and kept on the frame for every later write."""
    data = frame.wire
    if data is None:
        data = frame.framed(text_header(frame.size))
    return data


class Event:
    __slots__ = ("type", "collaboration_id", "body", "version", "owners_only", "members", "message_id", "seq", "_frame")

    def __init__(
        self,
        type: str,
        collaboration_id: str,
        body: dict[str, Any],
        *,
        version: int | None = None,
        owners_only: bool = False,
        members: "MemberChange | None" = None,
        message_id: str | None = None,
        seq: int | None = None,
    ):
        self.type = type
        self.seq = seq
        self.collaboration_id = collaboration_id
        self.body = body
        self.version = version
        self.owners_only = owners_only
        self.members = members
        self.message_id = message_id
        self._frame: Frame | None = None

    @property
    def frame(self) -> Frame:
        frame = self._frame
        if frame is None:
            frame = self._frame = encode_frame(self.body)
        return frame

    @property
    def size(self) -> int:
        """The frame's length in bytes (UTF-8): what the hub's history budget and the outboxes count."""
        return self.frame.size

    def seal(self) -> None:
        """Keep the encoded frame only: held in the hub's history, the body's dicts would only feed the GC."""
        if self._frame is None:
            self._frame = encode_frame(self.body)
        self.body = None  # type: ignore[assignment]  # sealed: the body goes, the encoded frame stays

    def __repr__(self) -> str:
        return f"Event({self.type}, {self.collaboration_id}, v{self.version})"


# -- membership -----------------------------------------------------------------------------------


class MemberChange:
    """The part of one collaboration change that touches `members` / `memberIds`, kept compact: only
    user ids and roles (no member documents), since the hub's history holds it after the event's
    body is gone. `weight` is about what it holds in bytes (the history counts it)."""

    __slots__ = ("member_ids", "members", "entries", "roles", "dropped", "weight")

    def __init__(self) -> None:
        self.member_ids: tuple[str, ...] | None = None  # memberIds set whole (every removal does this)
        self.members: tuple[tuple[str | None, str | None], ...] | None = None  # members set whole: (userId, role)
        self.entries: dict[int, tuple[str | None, str | None]] = {}  # members.N set: (userId, role)
        self.roles: dict[int, str] = {}  # members.N.role set
        self.dropped = False  # members or memberIds removed altogether
        self.weight = 0

    def removes(self, user_id: str) -> bool:
        if self.dropped:
            return True
        if self.member_ids is not None and user_id not in self.member_ids:
            return True
        return self.members is not None and all(uid != user_id for uid, _ in self.members)


_STR, _SLOT, _PAIR, _ENTRY = 57, 8, 56, 64  # bytes: a str beside its characters, a slot, a 2-tuple, a dict entry


def _ids_weight(ids: Any) -> int:
    return sum(_STR + _SLOT + len(u) if isinstance(u, str) else _SLOT for u in ids)


_ROLES = {role: role for role in ("owner", "editor", "viewer")}  # one str per role, shared


def _member(value: Any) -> tuple[str | None, str | None]:
    if not isinstance(value, dict):
        return None, None
    role = value.get("role")
    return value.get("userId"), _ROLES.get(role, role) if isinstance(role, str) else role


def member_change(updated: dict[str, Any], removed: list[str]) -> MemberChange | None:
    change: MemberChange | None = None
    for path, value in updated.items():
        if not path.startswith("member"):
            continue
        head, _, rest = path.partition(".")
        if head not in ("members", "memberIds"):
            continue
        change = change or MemberChange()
        if head == "memberIds":
            if not rest and isinstance(value, list):
                change.member_ids = tuple(value)
                change.weight += _ids_weight(value)
            continue
        if not rest:
            change.members = tuple(map(_member, value)) if isinstance(value, list) else ()
            change.weight += _ids_weight(uid for uid, _ in change.members) + _PAIR * len(change.members)
            continue
        index, _, field = rest.partition(".")
        if not index.isdigit():
            continue
        if not field:
            change.entries[int(index)] = entry = _member(value)
            change.weight += _ids_weight(entry[:1]) + _PAIR + _ENTRY
        elif field == "role":
            change.roles[int(index)] = _ROLES.get(value, value) if isinstance(value, str) else value
            change.weight += _ENTRY
    for path in removed:
        if path in ("members", "memberIds"):
            change = change or MemberChange()
            change.dropped = True
    return change


def track_member(change: MemberChange, user_id: str, index: int, role: str | None) -> tuple[int, str | None] | None:
    """A subscriber's (position in `members`, role) after `change`; None once they are no longer a member."""
    if change.removes(user_id):
        return None
    if change.members is not None:
        for position, (uid, member_role) in enumerate(change.members):
            if uid == user_id:
                return position, member_role
        return None  # pragma: no cover - removes() said so already
    entry = change.entries.get(index)
    if entry is not None:
        if entry[0] != user_id:
            return None  # someone else sits where this member was: the member is gone
        role = entry[1]
    return index, change.roles.get(index, role)


def member_position(doc: dict[str, Any], user_id: str) -> tuple[int, str | None] | None:
    """Where `user_id` sits in a collaboration document, and their role (None if not a member)."""
    if user_id not in doc.get("memberIds", ()):
        return None
    for position, member in enumerate(doc.get("members", ())):
        if member.get("userId") == user_id:
            return position, member.get("role")
    return None


# -- changes -> events ----------------------------------------------------------------------------


def changed_fields(change: dict[str, Any], document: dict[str, Any] | None) -> tuple[dict[str, Any], list[str]] | None:
    """`updatedFields` and `removedFields` of an update, truncated arrays sent whole.

    MongoDB may report an array that shrank as `truncatedArrays` ([{field, newSize}])
    plus updates inside it. Clients only apply the two other keys, so the array
    is sent whole, taken from `document` (the looked-up document) when it is at
    the event's version. None when it is not: the change cannot be expressed.
    """
    description = change.get("updateDescription") or {}
    updated = dict(description.get("updatedFields") or {})
    removed = list(description.get("removedFields") or [])
    truncated = description.get("truncatedArrays") or []
    if not truncated:
        return updated, removed
    version = updated.get("version")
    if document is None or version is None or document.get("version") != version:
        return None
    for item in truncated:
        field = item["field"]
        value = _get(document, field)
        if not isinstance(value, list):
            return None
        prefix = field + "."
        updated = {path: v for path, v in updated.items() if not path.startswith(prefix)}
        updated[field] = value
    return updated, removed


def collaboration_inserted(document: dict[str, Any]) -> Event:
    """A new collaboration: version 1, every field in `updatedFields` (applied to nothing it gives the document)."""
    last = document.get("lastAction") or {}
    body = public(document) or {}
    seq = body.pop("seq", None)
    return _updated(document["_id"], document.get("version", 1), last, body, [], seq)


def collaboration_updated(
    collaboration_id: str,
    updated: dict[str, Any],
    removed: list[str],
    last_action: dict[str, Any] | None,
    seq: int | None = None,
) -> Event:
    updated, removed = canonical(updated, removed)
    return _updated(collaboration_id, updated["version"], last_action or {}, updated, removed, seq)


def _path_key(path: str) -> tuple[tuple[int, int | str], ...]:
    return tuple((0, int(part)) if part.isdigit() else (1, part) for part in path.split("."))


def canonical(updated: dict[str, Any], removed: list[str]) -> tuple[dict[str, Any], list[str]]:
    """The changes in one order, whatever order they were reported in: paths by segment, numeric
    segments as numbers (`arr.9` before `arr.10`, so appended elements stay in order)."""
    if len(updated) > 1:
        updated = {path: updated[path] for path in sorted(updated, key=_path_key)}
    if len(removed) > 1:
        removed = sorted(removed, key=_path_key)
    return updated, removed


def _updated(
    collaboration_id: str,
    version: int,
    last: dict[str, Any],
    updated: dict[str, Any],
    removed: list[str],
    seq: int | None = None,
) -> Event:
    body: dict[str, Any] = {"type": COLLABORATION_UPDATED, "collaborationId": collaboration_id, "version": version}
    if seq is not None:
        body["seq"] = seq
    body.update(
        {
            "action": last.get("name"),
            "actor": last.get("actor"),
            "at": last.get("at"),
            "changes": {"updatedFields": updated, "removedFields": removed},
        }
    )
    return Event(
        COLLABORATION_UPDATED, collaboration_id, body, version=version, members=member_change(updated, removed), seq=seq
    )


def message_created(message: dict[str, Any]) -> Event:
    collaboration_id = message["collaborationId"]
    seq = message.get("seq")
    body: dict[str, Any] = {"type": MESSAGE_CREATED, "collaborationId": collaboration_id}
    if seq is not None:
        body["seq"] = seq
    body["message"] = public(message)
    return Event(MESSAGE_CREATED, collaboration_id, body, message_id=message["_id"], seq=seq)


def replayed(kind: str, stored: dict[str, Any]) -> Event | None:
    """The event a stored entry of the stream (backend/store/stream.py) was sent as: a message, or
    the audit entry of a versioned change with its `changes`. None when nothing replayable is
    stored (an entry written before changes were stored)."""
    if kind == "message":
        return message_created(stored)
    changes = stored.get("changes")
    if not isinstance(changes, dict):
        return None
    updated = {path: value for path, value in changes["updatedFields"]}
    removed = list(changes["removedFields"])
    last = {"name": stored.get("action"), "actor": stored.get("actor"), "at": stored.get("at")}
    cid, seq = stored["collaborationId"], stored["seq"]
    if stored.get("version") == 1 and not removed:  # the creation: the whole document, as inserted
        return _updated(cid, 1, last, updated, [], seq)
    if not isinstance(updated.get("version"), int):
        return None
    return collaboration_updated(cid, updated, removed, last, seq)


def approval_event(kind: str, approval: dict[str, Any]) -> Event:
    collaboration_id = approval["collaborationId"]
    body = {"type": kind, "collaborationId": collaboration_id, "approval": public(approval)}
    return Event(kind, collaboration_id, body, owners_only=True)


def presence_event(collaboration_id: str, documents: list[dict[str, Any]]) -> Event:
    """Who is here: one entry per user (their latest state, their earliest `since`)."""
    users: dict[str | None, dict[str, Any]] = {}  # by userId (None: a document without one)
    latest: dict[str | None, Any] = {}
    for doc in documents:
        user_id = doc.get("userId")
        entry = users.get(user_id)
        if entry is None:
            users[user_id] = {"userId": user_id, "state": doc.get("state") or {}, "since": doc.get("since")}
            latest[user_id] = doc.get("updatedAt")
            continue
        if doc.get("since") and (entry["since"] is None or doc["since"] < entry["since"]):
            entry["since"] = doc["since"]
        if doc.get("updatedAt") and (latest[user_id] is None or doc["updatedAt"] > latest[user_id]):
            entry["state"], latest[user_id] = doc.get("state") or {}, doc["updatedAt"]
    body = {"type": PRESENCE, "collaborationId": collaboration_id, "members": list(users.values())}
    return Event(PRESENCE, collaboration_id, body)


def resync_required(collaboration_id: str, reason: str) -> Event:
    body = {"type": RESYNC_REQUIRED, "collaborationId": collaboration_id, "reason": reason}
    return Event(RESYNC_REQUIRED, collaboration_id, body)


def membership_removed(collaboration_id: str) -> Frame:
    return encode_frame({"type": MEMBERSHIP_REMOVED, "collaborationId": collaboration_id})


def presence_only_heartbeat(change: dict[str, Any]) -> bool:
    """A presence update that only pushed back `expiresAt`: nobody came or went."""
    description = change.get("updateDescription") or {}
    fields = set(description.get("updatedFields") or {})
    return change.get("operationType") == "update" and fields <= {"expiresAt"} and not description.get("removedFields")


# -- dotted paths ---------------------------------------------------------------------------------


def _get(doc: Any, path: str) -> Any:
    for part in path.split("."):
        if isinstance(doc, list) and part.isdigit() and int(part) < len(doc):
            doc = doc[int(part)]
        elif isinstance(doc, dict):
            doc = doc.get(part)
        else:
            return None
    return doc
