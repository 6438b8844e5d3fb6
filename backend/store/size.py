"""What MongoDB can store: sizes (against MAX_DOCUMENT_BYTES) and free-form values from clients."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Mapping

import bson
from bson import ObjectId
from bson.errors import InvalidDocument
from bson.tz_util import utc

from backend.errors import ValidationFailed


def bson_size(doc: Mapping[str, Any]) -> int:
    """The size in bytes of `doc` encoded as BSON, as MongoDB counts it against its 16 MB limit."""
    return len(bson.encode(doc))


def size_after(before: Mapping[str, Any], size: int, update: Mapping[str, Any]) -> int | None:
    """The BSON size of `before` (whose size is `size`) once `update` (`$set`/`$unset` with dotted,
    disjoint paths, as `backend.domain.diff` makes them) is applied, from the sizes of the values it
    sets and removes only; None when unsure (another operator, a path through something missing,
    an index past the end): the caller then encodes the whole document.

    A document's size is its elements' sizes plus 5 bytes, whatever it is nested in, so each
    change adds the size of its new element and takes away that of the old one."""
    appended: dict[int, int] = {}  # id of a list -> elements appended to it by earlier paths
    for operator, paths in update.items():
        if operator not in ("$set", "$unset") or not isinstance(paths, Mapping):
            return None
        for path, value in paths.items():
            parts = path.split(".")
            parent = _parent(before, parts)
            if parent is None:
                return None
            key = parts[-1]
            if isinstance(parent, list):
                if not key.isdigit():
                    return None
                index, length = int(key), len(parent) + appended.get(id(parent), 0)
                if index < len(parent):
                    old = _element_size(key, parent[index])
                elif index == length:  # appended: one more element
                    if operator == "$unset":
                        continue
                    appended[id(parent)] = appended.get(id(parent), 0) + 1
                    old = 0
                else:
                    return None
                new = _element_size(key, None if operator == "$unset" else value)  # $unset leaves null
            else:
                old = _element_size(key, parent[key]) if key in parent else 0
                new = 0 if operator == "$unset" else _element_size(key, value)
            size += new - old
    return size


def _parent(doc: Any, parts: list[str]) -> Any:
    """The dict or list that holds the last of `parts` in `doc`, or None if there is none."""
    target = doc
    for part in parts[:-1]:
        if isinstance(target, Mapping) and part in target:
            target = target[part]
        elif isinstance(target, list) and part.isdigit() and int(part) < len(target):
            target = target[int(part)]
        else:
            return None
    return target if isinstance(target, (Mapping, list)) else None


def _element_size(key: str, value: Any) -> int:
    """The bytes one element (type, key, value) takes in a BSON document: counted for an ASCII key
    and a value `_value_size` knows, encoded otherwise (and wherever encoding refuses the value: an
    int past 64 bits, a string UTF-8 cannot encode, a key with NUL or not a string)."""
    if key.isascii() and "\0" not in key:
        size = _value_size(value)
        if size is not None:
            return 2 + len(key) + size  # type byte, key, its NUL, the value
    return len(bson.encode({key: value})) - 5


def _value_size(value: Any) -> int | None:
    """BSON's size of a value of a fixed-size type, a string, or a plain dict or list of such values
    (an int32 length, the elements, a NUL); None for anything else."""
    kind = type(value)
    size = _VALUE_SIZES.get(kind)
    if size == _INT:
        return 4 if -(2**31) <= value < 2**31 else 8 if -(2**63) <= value < 2**63 else None
    if size is not None:
        return size
    if kind is str:
        try:
            return 5 + len(value.encode())  # int32 length, the bytes, NUL
        except UnicodeEncodeError:
            return None
    if kind is datetime:
        return 8 if value.tzinfo in _PLAIN_ZONES else None
    if kind is dict or kind is list:
        size = 5
        items = value.items() if kind is dict else ((str(i), v) for i, v in enumerate(value))
        for k, v in items:
            inner = _value_size(v) if type(k) is str and k.isascii() and "\0" not in k else None
            if inner is None:
                return None
            size += 2 + len(k) + inner
        return size
    return None


_INT = -1  # an int: int32 or int64 by its value
_VALUE_SIZES: dict[type, int] = {int: _INT, float: 8, bool: 1, type(None): 0, ObjectId: 12}
_PLAIN_ZONES = (None, timezone.utc, utc)  # datetimes encoded as their UTC milliseconds (8 bytes)


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
