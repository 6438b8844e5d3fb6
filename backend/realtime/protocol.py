"""The client's frames (design section 5), parsed strictly, and the per-connection rate limit.

`parse(text)` returns one of the frame structs or raises the project's errors:
`InvalidRequest` for a frame that is not JSON (nested too deeply to decode
included), not an object, or of an unknown type; `ValidationFailed` (with the
failing fields) for missing, unknown or mistyped fields, and for a presence
`state` nested deeper than `MAX_STATE_DEPTH`.
"""

from __future__ import annotations

import re
import time
from typing import Annotated, Any, Callable

import msgspec

from backend.errors import InvalidRequest, ValidationFailed

Id = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
Token = Annotated[str, msgspec.Meta(min_length=1, max_length=16_384)]
MAX_STATE_DEPTH = 32  # objects and arrays inside a presence state (MongoDB itself stops at 100)


class _Frame(msgspec.Struct, tag_field="type", forbid_unknown_fields=True, frozen=True):
    pass


class Auth(_Frame, tag="auth", frozen=True):
    token: Token


class Subscribe(_Frame, tag="subscribe", frozen=True):
    collaborationId: Id
    sinceSeq: Annotated[int, msgspec.Meta(ge=0)] | None = None  # the stream seq held; wins over the two below
    sinceVersion: Annotated[int, msgspec.Meta(ge=0)] | None = None
    sinceMessageId: Id | None = None


class Unsubscribe(_Frame, tag="unsubscribe", frozen=True):
    collaborationId: Id


class Presence(_Frame, tag="presence", frozen=True):
    collaborationId: Id
    state: dict[str, Any]


class RefreshToken(_Frame, tag="refresh_token", frozen=True):
    token: Token


class Ping(_Frame, tag="ping", frozen=True):
    pass


Frame = Auth | Subscribe | Unsubscribe | Presence | RefreshToken | Ping
FRAMES: dict[str, type[_Frame]] = {
    "auth": Auth,
    "subscribe": Subscribe,
    "unsubscribe": Unsubscribe,
    "presence": Presence,
    "refresh_token": RefreshToken,
    "ping": Ping,
}
_AT = re.compile(r"^(?P<message>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.S)
_FIELD = re.compile(r"field `(?P<name>[^`]+)`")


def parse(text: str) -> Frame:
    try:
        data = msgspec.json.decode(text)
    except msgspec.DecodeError as exc:
        raise InvalidRequest(f"The frame is not valid JSON: {exc}.") from None
    except RecursionError:  # "[[[[…" deeper than the decoder's stack allows
        raise InvalidRequest("The frame is nested too deeply.") from None
    if not isinstance(data, dict):
        raise InvalidRequest("A frame must be a JSON object with a `type`.")
    kind = data.get("type")
    cls = FRAMES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise InvalidRequest(
            f"Unknown frame type {kind!r}.", {"type": kind if isinstance(kind, str) else None, "known": sorted(FRAMES)}
        )
    try:
        frame = msgspec.convert(data, cls)
    except msgspec.ValidationError as exc:
        raise ValidationFailed([_field(str(exc))]) from None
    if isinstance(frame, Presence) and _depth(frame.state) > MAX_STATE_DEPTH:
        raise ValidationFailed([{"path": "state", "message": f"Nested more than {MAX_STATE_DEPTH} levels deep"}])
    return frame  # type: ignore[return-value]  # cls comes from FRAMES, so frame is one of the client frames


def _depth(value: Any) -> int:
    """How many objects and arrays deep `value` goes (without recursing: it may go deep)."""
    deepest, level = 0, [(value, 1)]
    while level:
        item, depth = level.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        deepest = max(deepest, depth)
        if deepest > MAX_STATE_DEPTH:
            break
        level.extend((child, depth + 1) for child in children)
    return deepest


def _field(text: str) -> dict[str, str]:
    match = _AT.match(text)
    message = match.group("message") if match else text
    path = (match.group("path") or "").lstrip(".") if match else ""
    if not path:
        named = _FIELD.search(message)
        path = named.group("name") if named else ""
    return {"path": path, "message": message}


class Bucket:
    """A token bucket: `rate` frames a second, bursts of `burst`."""

    __slots__ = ("rate", "burst", "tokens", "last", "clock")

    def __init__(self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic):
        self.rate, self.burst, self.clock = rate, burst, clock
        self.tokens, self.last = burst, clock()

    def take(self) -> bool:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True
