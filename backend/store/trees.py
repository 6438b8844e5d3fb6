"""Copies of stored values (BSON-like trees) for the embedded store: new dicts and lists, the
immutable leaves shared. What `copy.deepcopy` gives, in a fraction of its time: the embedded
store's reads (embedded.py) and each change stream's own copy of an event (changestream.py)."""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any

from bson import ObjectId, Timestamp

IMMUTABLE: frozenset[type] = frozenset({str, int, float, bool, type(None), bytes, datetime, Timestamp, ObjectId})
"""What a copy shares: nothing can change one of these in place."""


def structure(value: Any) -> Any:
    """A copy of `value`'s dicts and lists, sharing its immutable leaves; a dict or list of
    another kind (SON, ...) is deep-copied, and any other leaf shared (stored values are never
    changed in place)."""
    kind = type(value)
    if kind is dict:
        return copy_dict(value)
    if kind is list:
        return copy_list(value)
    if isinstance(value, (dict, list)):
        return copy.deepcopy(value)
    return value


def copy_dict(value: dict[str, Any]) -> dict[str, Any]:
    # one comprehension per container (no call for a leaf, a datetime included): the copy of a read
    return {
        k: v
        if (t := type(v)) in IMMUTABLE
        else copy_dict(v)
        if t is dict
        else copy_list(v)
        if t is list
        else structure(v)
        for k, v in value.items()
    }


def copy_list(value: list[Any]) -> list[Any]:
    return [
        v if (t := type(v)) in IMMUTABLE else copy_dict(v) if t is dict else copy_list(v) if t is list else structure(v)
        for v in value
    ]
