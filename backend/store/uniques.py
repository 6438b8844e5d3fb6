"""Unique indexes for the embedded store, checked with a lookup instead of a scan.

mongomock checks a unique index after each insert and update by querying the
whole collection (`Collection._ensure_uniques`): O(documents) per write, and
the audit collection grows by one entry per action. `install(collection)`
replaces that check, on one mongomock collection, with a dict per unique index
from key to the document holding it: O(1) per write.

What it refuses is what mongomock refused, with the same error
(`DuplicateKeyError('E11000 Duplicate Key Error', 11000, {'keyValue', 'keyPattern'})`):

- a key is the tuple of the index's fields, a missing field counting as null;
- `sparse`: a document whose fields are all missing or null is not indexed;
- `partialFilterExpression`: only documents matching it are indexed.

The dict is never updated on delete or update: an entry whose document is gone,
no longer matches the filter, or no longer has that key is stale, and is
recognised as such when it is looked up (the holder's current key is computed
again from the stored document). It is rebuilt from the documents when the
index is (re)created, and when stale entries outnumber the documents.

Keys are plain values (of type exactly str, int, float, datetime or ObjectId, or
null) in top-level fields: that is every unique index Tandem declares. An index
over a dotted path, or one where a document's key holds anything else (an array,
a sub-document, a bool, NaN, a subclass such as bson's `Code`), goes back to mongomock's own scan until it is
created again: the scan has query semantics (an array matching one of its
elements, 1 == True...) that a dict cannot give.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Callable

from bson import ObjectId
from mongomock import DuplicateKeyError, helpers
from mongomock.collection import Collection

from backend.store.matching import matches

_PLAIN = frozenset({str, int, float, datetime, ObjectId})  # exact types: a subclass (bson's Code, bool) is scanned
_NOBODY = object()


class _Unindexable(Exception):
    """A key this module cannot compare the way mongomock does: scan instead."""


class _UniqueIndex:
    __slots__ = ("spec", "fields", "pattern", "sparse", "partial", "holders", "scan")

    def __init__(self, spec: dict[str, Any], documents: dict[str, Any], writing: Any):
        self.spec = spec  # the CollectionStore's index dict, compared by identity
        self.pattern = dict(spec["key"])
        self.fields = tuple(self.pattern)
        self.sparse = bool(spec.get("sparse"))
        self.partial = spec.get("partialFilterExpression")
        self.holders: dict[tuple[Any, ...], Any] = {}  # key -> the store key (_id) of the document holding it
        self.scan = any("." in name or name.startswith("$") for name in self.fields)
        if not self.scan:
            self.rebuild(documents, writing)

    def rebuild(self, documents: dict[str, Any], writing: Any = _NOBODY) -> None:
        """Index every stored document but `writing` (the one being checked, stored already)."""
        self.holders = {}
        try:
            for store_key, document in documents.items():
                if store_key == writing:
                    continue
                key = self.key(document)
                if key is None:
                    continue
                if key in self.holders:  # duplicates already stored (see docs/store.md): scan
                    raise _Unindexable(key)
                self.holders[key] = store_key
        except _Unindexable:
            self.holders, self.scan = {}, True

    def key(self, document: dict[str, Any]) -> tuple[Any, ...] | None:
        """The document's key in this index, None if the index leaves it out."""
        values = tuple(document.get(name) for name in self.fields)
        if self.sparse and all(value is None for value in values):
            return None
        if self.partial is not None and not matches(self.partial, document):
            return None
        for value in values:
            if not (value is None or (type(value) in _PLAIN and value == value)):
                raise _Unindexable(value)
        return values

    def check(self, store_key: Any, document: dict[str, Any], documents: dict[str, Any]) -> None:
        """Claim `document`'s key for it, or raise DuplicateKeyError if another document holds it."""
        key = self.key(document)
        if key is None:
            return
        holder = self.holders.get(key, _NOBODY)
        if holder is not _NOBODY and holder != store_key:
            held_by = documents.get(holder)
            if held_by is not None and self.key(held_by) == key:
                raise DuplicateKeyError(
                    "E11000 Duplicate Key Error",
                    11000,
                    {"keyValue": {name: document.get(name) for name in self.fields}, "keyPattern": dict(self.pattern)},
                    None,
                )
        self.holders[key] = store_key
        if len(self.holders) > 2 * len(documents) + 64:  # mostly stale: drop them
            self.rebuild(documents)


def install(collection: Collection) -> None:
    """Check `collection`'s unique indexes by lookup from now on (idempotent)."""
    if getattr(collection, "_tandem_unique_lookup", False):
        return
    store = collection._store
    if not hasattr(store, "_tandem_unique_indexes"):
        store._tandem_unique_indexes = {}
    scan: Callable[[dict[str, Any]], None] = collection._ensure_uniques  # mongomock's, as mongomock-motor wrapped it

    def ensure_uniques(document: dict[str, Any]) -> None:
        # like mongomock's: `document` is already stored (inserted, or updated in place)
        states: dict[str, _UniqueIndex] = store._tandem_unique_indexes
        documents = store._documents
        _id = document["_id"]
        store_key = helpers.hashdict(_id) if isinstance(_id, dict) else _id
        needs_scan = False
        for name, spec in store.indexes.items():
            if not spec.get("unique"):
                continue
            state = states.get(name)
            if state is None or state.spec is not spec:
                state = states[name] = _UniqueIndex(spec, documents, store_key)
            if not state.scan:
                try:
                    state.check(store_key, document, documents)
                except _Unindexable:
                    state.holders, state.scan = {}, True
                except BaseException:
                    # refused (or failed): the caller undoes the write, and the document gets back
                    # a key these indexes may no longer hold (a rebuild, or a first build, ran
                    # while it was stored with its new values): built again from what is stored,
                    # at the next write
                    store._tandem_unique_indexes = {}
                    raise
            needs_scan = needs_scan or state.scan
        if needs_scan:  # every index again, by mongomock's scan (the others have their keys claimed)
            scan(document)

    collection._ensure_uniques = ensure_uniques  # type: ignore[method-assign]  # mongomock's hook, replaced on this instance
    collection._tandem_unique_lookup = True  # type: ignore[attr-defined]  # our marker on mongomock's collection (read above)


_LOOKUP_VALUES = frozenset({str, int, ObjectId})  # filter values a holder's key is found by (hash and == agree)


def holder_of(store: Any, search: dict[str, Any]) -> tuple[Any, ...] | None:
    """The one stored document that can match `search`, found through a unique index kept by lookup:
    `(document,)`, or `()` when none can; None when no index answers (the caller scans).

    An index answers when `search` names each of its fields with a plain value (a str, an int or an
    ObjectId) and holds each condition of its partial filter as the index states it (then every
    document matching `search` is in the index, under that key: at most one). The holder of the key
    is the document last claiming it, which still holds it if any document does (a claim on a key
    held by another is refused); the caller tests `search` on it, which a stale holder fails."""
    states: dict[str, _UniqueIndex] | None = store.__dict__.get("_tandem_unique_indexes")
    if not states:
        return None
    for name, state in states.items():
        if state.scan or store.indexes.get(name) is not state.spec:
            continue
        key = tuple(search.get(field, _NOBODY) for field in state.fields)
        if not all(type(value) in _LOOKUP_VALUES for value in key):
            continue
        partial = state.partial
        if partial is not None and not (
            type(partial) is dict
            and all(k in search and type(search[k]) is type(c) and search[k] == c for k, c in partial.items())
        ):
            continue
        found = store._documents.get(state.holders.get(key, _NOBODY))
        return () if found is None else (found,)
    return None
