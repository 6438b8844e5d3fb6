"""The actions an AI answer suggests, as its message keeps them: `[{action, payload, reason?}]`.

A suggestion comes from a model that may have followed text planted in the
collaboration, so it is data for people, never run by itself: a member runs one
as themselves (`POST /api/actions/{action}`), with their own role and the
owner's rules. What is stored is bounded and already valid, checked once here
whoever sends it (the AI chat, or an approval of the AI's answer carried out):

- only the AI's answer to a message carries suggestions (the engine refuses them
  from anyone else, and without `replyTo`);
- at most MAX_SUGGESTIONS, their compact JSON at most MAX_SUGGESTIONS_BYTES;
- each names an action the AI may take (catalogue AI policy auto or approval)
  with a payload that action accepts, normalised (times in UTC, `Z`), and a
  suggested message carries no suggestions of its own;
- no collaboration id: a suggestion runs on the collaboration of its message.

What a viewer may run is not stored: each client derives it from its own role.
"""

from __future__ import annotations

from typing import Any

import msgspec

from backend.domain import payloads
from backend.domain.catalogue import CATALOGUE
from backend.errors import ValidationFailed

MAX_SUGGESTIONS = 5
MAX_SUGGESTIONS_BYTES = 32 * 1024
"""Compact JSON of a message's suggestions: five suggested messages of the longest text fit."""

_encoder = msgspec.json.Encoder()


def normalise(raw: list[Any], *, max_message_chars: int, path: str = "payload.suggestions") -> list[dict[str, Any]]:
    """The suggestions as stored: each checked, its payload decoded and encoded again; or
    ValidationFailed at the first one that is not acceptable (`payload.suggestions.2.payload.title`)."""
    if len(raw) > MAX_SUGGESTIONS:
        raise ValidationFailed.at(path, f"At most {MAX_SUGGESTIONS} suggestions")
    stored = [one(item, max_message_chars=max_message_chars, path=f"{path}.{index}") for index, item in enumerate(raw)]
    if len(_encoder.encode(stored)) > MAX_SUGGESTIONS_BYTES:
        raise ValidationFailed.at(path, f"At most {MAX_SUGGESTIONS_BYTES} bytes of suggestions")
    return stored


def one(item: Any, *, max_message_chars: int, path: str) -> dict[str, Any]:
    """One suggestion `{action, payload, reason?}` as stored, or ValidationFailed at `path`."""
    if isinstance(item, msgspec.Struct):
        item = msgspec.to_builtins(item)
    if not isinstance(item, dict):
        raise ValidationFailed.at(path, "A suggestion is an object: {action, payload, reason}")
    action, payload, reason = item.get("action"), item.get("payload") or {}, item.get("reason")
    spec = CATALOGUE.get(action) if isinstance(action, str) else None
    if spec is None or spec.ai == "never":
        raise ValidationFailed.at(f"{path}.action", "Not an action the AI may suggest")
    try:
        decoded = payloads.decode(spec.payload, payload, max_message_chars=max_message_chars)
    except ValidationFailed as exc:
        field = ((exc.details or {}).get("fields") or [{}])[0]
        where = str(field.get("path", "payload")).replace("payload", f"{path}.payload", 1)
        raise ValidationFailed.at(where, str(field.get("message", exc.message))) from None
    if isinstance(decoded, payloads.SendMessage) and decoded.suggestions is not None:
        raise ValidationFailed.at(f"{path}.payload.suggestions", "A suggested message carries no suggestions")
    stored: dict[str, Any] = {"action": action, "payload": msgspec.to_builtins(decoded)}
    if isinstance(reason, str) and reason.strip():
        stored["reason"] = reason[:1000]
    return stored
