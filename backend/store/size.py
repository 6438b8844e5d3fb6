"""What MongoDB can store: sizes (against MAX_DOCUMENT_BYTES) and free-form values from clients."""

from __future__ import annotations

from typing import Any, Mapping

import bson
from bson.errors import InvalidDocument

from backend.errors import ValidationFailed


def bson_size(doc: Mapping[str, Any]) -> int:
    """The size in bytes of `doc` encoded as BSON, as MongoDB counts it against its 16 MB limit."""
    return len(bson.encode(doc))


def check_storable(value: Any, path: str) -> None:
    """Refuse (validation_failed at `path`) a client's free-form JSON that MongoDB would not store
    as given: integers past 64 bits, NUL in keys, keys that start with `$` or hold a `.`."""
    problem = _key_problem(value)
    if problem is None:
        try:
            bson.encode({"v": value})
        except (InvalidDocument, OverflowError) as exc:
            problem = f"Cannot be stored: {exc}"[:200]
    if problem is not None:
        raise ValidationFailed.at(path, problem)


def _key_problem(value: Any, depth: int = 0) -> str | None:
    if depth > 50:
        return "Nested too deeply"
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str) or "\0" in key or key.startswith("$") or "." in key:
                return f"Keys may not start with '$' or hold '.' or NUL: {str(key)[:40]!r}"
            problem = _key_problem(item, depth + 1)
            if problem is not None:
                return problem
    elif isinstance(value, list):
        for item in value:
            problem = _key_problem(item, depth + 1)
            if problem is not None:
                return problem
    return None
