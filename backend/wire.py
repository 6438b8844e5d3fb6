"""Documents as clients see them: `_id` sent as `id`, times as ISO 8601 with `Z`.

Used by the REST API and the realtime events alike, so both speak one shape.
"""

from __future__ import annotations

from typing import Any

import msgspec

_encoder = msgspec.json.Encoder()


def public(doc: dict[str, Any] | None) -> dict[str, Any] | None:
    if doc is None:
        return None
    out = {k: v for k, v in doc.items() if k != "_id"}
    if "_id" in doc:
        out = {"id": doc["_id"], **out}
    return out


def encode(value: Any) -> bytes:
    return _encoder.encode(value)
