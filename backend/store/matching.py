"""A query filter tested on one document, for the embedded store: mongomock's `filter_applies`,
with its plainest cases answered directly.

The embedded store tests a filter on one document on every write: the versioned write's
`{"_id": c, "version": v}`, the audit collection's partial unique indexes (`{"versioned": True}`,
`{"seq": {"$exists": True}}`), a change stream's `$match` on `ns.coll`. mongomock's matcher is
general (operators, arrays, regexes, dotted paths through lists) and costs ~10 µs per call there.
`matches` answers the cases below exactly as mongomock's `_Filterer.apply` does (the same Python
comparisons, in the same order), and hands everything else to it:

- the filter is a plain `dict`, the document a `dict` (of any kind, as mongomock reads it);
- each key is a non-empty string not starting with `$` nor ending with `.`; a dotted key reaches
  its value through dicts only (a missing field on the way is a missing value; anything else,
  a list or a null on the way included: mongomock);
- each condition is a value of a plain type (`_PLAIN`) matched by equality (`doc == value`, or
  `value is None` and the field missing), unless the field holds a list or tuple (mongomock's
  array rules); or `{"$exists": b}` with `b` a bool; or `{"$in": [plain values]}` on a field that
  is not a list or tuple.

tests/test_embedded_store.py compares it with `filter_applies` over random filters and documents.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bson import ObjectId
from mongomock import filtering
from mongomock.filtering import filter_applies

NOTHING: Any = filtering.NOTHING  # type: ignore[attr-defined]  # mongomock's "missing" marker (from sentinels)

_PLAIN = frozenset({str, int, float, bool, type(None), ObjectId, datetime})
"""Filter values compared by `==` alone in mongomock (no regex, no operator document)."""

_UNSURE = object()


def matches(search_filter: Any, document: Any) -> bool:
    """`mongomock.filtering.filter_applies(search_filter, document)`, the same answer."""
    if type(search_filter) is dict and isinstance(document, dict):
        for key, search in search_filter.items():
            answer = _condition(key, search, document)
            if answer is _UNSURE:
                break
            if not answer:
                return False
        else:
            return True
    return bool(filter_applies(search_filter, document))


def _condition(key: Any, search: Any, document: dict[str, Any]) -> Any:
    """True / False for one condition mongomock would answer by plain comparison, else _UNSURE."""
    if type(key) is not str or not key or key[0] == "$" or key[-1] == ".":
        return _UNSURE
    value = _value(key, document)
    if value is _UNSURE:
        return _UNSURE
    kind = type(search)
    if kind in _PLAIN:
        if isinstance(value, (list, tuple)):
            return _UNSURE
        return bool(value == search) or (search is None and value is NOTHING)
    if kind is dict and len(search) == 1:
        operator, argument = next(iter(search.items()))
        if operator == "$exists" and type(argument) is bool:
            return argument == (value is not NOTHING)
        if (
            operator == "$in"
            and type(argument) is list
            and all(type(x) in _PLAIN for x in argument)
            and not isinstance(value, (list, tuple))
        ):
            if value is NOTHING and None in argument:
                return True
            return value in argument
    return _UNSURE


def _value(key: str, document: dict[str, Any]) -> Any:
    """The value mongomock's `iter_key_candidates` finds under `key` (NOTHING if missing), when the
    path goes through dicts only; _UNSURE otherwise."""
    if "." not in key:
        return document.get(key, NOTHING)
    target: Any = document
    parts = key.split(".")
    for part in parts[:-1]:
        target = target.get(part, _EMPTY)
        if not isinstance(target, dict):
            return _UNSURE
    return target.get(parts[-1], NOTHING)


_EMPTY: dict[str, Any] = {}  # mongomock's stand-in for a missing sub-document (never changed)
