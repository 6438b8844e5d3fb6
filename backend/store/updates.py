"""What MongoDB reports as an update event's `updateDescription`, for the embedded store.

The server logs an update as a delta (a `$v: 2` oplog entry) and a change stream turns that
delta into `updateDescription`. Operator updates log what each update node says it changed
(mongodb/mongo src/mongo/db/update/: modifier_node.cpp, set_node.cpp, unset_node.cpp,
push_node.cpp, addtoset_node.cpp, rename_node.cpp, v2_log_builder.cpp); pipeline updates log a
delta of the whole documents (document_diff_calculator.cpp), or the whole document when that
delta is not smaller, which a change stream reports as a replace. `describe_update` follows
those rules, each with a case in tests/test_embedded_changestream_spec.py;
`update_description` is the plain leaf diff, for a caller that has no update spec.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import bson

_MISSING = object()


def update_description(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """The leaf diff from `before` to `after` (no update spec): paths are dotted, numeric
    segments index arrays, appended elements are `arr.N` and an array that shrank is reported
    whole. Applying removedFields then updatedFields to `before` gives `after`."""
    updated: dict[str, Any] = {}
    removed: list[str] = []
    _diff_document(before, after, "", updated, removed)
    return {"updatedFields": updated, "removedFields": removed, "truncatedArrays": []}


def _diff_document(
    old: dict[str, Any], new: dict[str, Any], prefix: str, updated: dict[str, Any], removed: list[str]
) -> None:
    for key, value in new.items():
        if key in old:
            _diff_value(old[key], value, prefix + key, updated, removed)
        else:
            updated[prefix + key] = value
    removed.extend(prefix + key for key in old if key not in new)


def _diff_value(old: Any, new: Any, path: str, updated: dict[str, Any], removed: list[str]) -> None:
    if isinstance(old, dict) and isinstance(new, dict):
        _diff_document(old, new, path + ".", updated, removed)
    elif isinstance(old, list) and isinstance(new, list) and len(new) >= len(old):
        for index, item in enumerate(new):
            if index < len(old):
                _diff_value(old[index], item, f"{path}.{index}", updated, removed)
            else:
                updated[f"{path}.{index}"] = item
    elif not same(old, new):
        updated[path] = new


def same(a: Any, b: Any) -> bool:
    """BSON equality as the server's no-op check sees it: same types, same field order. (Loops, not
    `all()` over generators: it runs on every field of every update; tests compare the two.)"""
    kind = type(a)
    if kind is not type(b):
        return False
    if kind in _SCALARS or not isinstance(a, (dict, list)):
        equal: bool = a == b
        return equal
    if len(a) != len(b) or (isinstance(a, dict) and list(a) != list(b)):
        return False
    for x, y in ((v, b[k]) for k, v in a.items()) if isinstance(a, dict) else zip(a, b):
        if not same(x, y):
            return False
    return True


_SCALARS = frozenset({str, int, float, bool, type(None), datetime})  # compared by `==` in `same`


def describe_update(
    update: Any, before: dict[str, Any], after: dict[str, Any]
) -> tuple[str, dict[str, Any] | None] | None:
    """How MongoDB reports the update `update` that took a document from `before` to `after`:
    ("update", updateDescription), ("replace", None) when the server would log the whole
    document instead of a delta (a pipeline update whose delta is not smaller), or None when
    nothing changed (MongoDB logs nothing)."""
    if same(before, after):
        return None
    if isinstance(update, list):
        return _pipeline_description(before, after)
    updated, removed = _operator_changes(update, before, after)
    if not (updated or removed):
        return None
    return "update", {"updatedFields": updated, "removedFields": removed, "truncatedArrays": []}


def _get(doc: Any, parts: list[str]) -> Any:
    for part in parts:
        if isinstance(doc, dict):
            doc = doc.get(part, _MISSING)
        elif isinstance(doc, list) and part.isdigit() and int(part) < len(doc):
            doc = doc[int(part)]
        else:
            return _MISSING
        if doc is _MISSING:
            return _MISSING
    return doc


def _resolve(parts: list[str], before: dict[str, Any], after: dict[str, Any]) -> list[str] | None:
    """`parts` with a positional `$` replaced by the index of the array element the update
    changed (the one element that differs); None when no element changed."""
    if "$" not in parts:
        return parts
    at = parts.index("$")
    old, new = _get(before, parts[:at]), _get(after, parts[:at])
    if not isinstance(old, list) or not isinstance(new, list):
        return None
    changed = [i for i in range(max(len(old), len(new))) if i >= len(old) or i >= len(new) or not same(old[i], new[i])]
    if not changed:
        return None
    return parts[:at] + [str(changed[0])] + parts[at + 1 :]


def _operator_changes(
    update: dict[str, Any], before: dict[str, Any], after: dict[str, Any]
) -> tuple[dict[str, Any], list[str]]:
    updated: dict[str, Any] = {}
    removed: list[str] = []

    def set_path(parts: list[str]) -> None:
        old, new = _get(before, parts), _get(after, parts)
        if new is _MISSING or (old is not _MISSING and same(old, new)):
            return
        if old is _MISSING:  # created: the server logs the first created field, whole
            depth = next(i for i in range(len(parts)) if _get(before, parts[: i + 1]) is _MISSING)
            created = parts[: depth + 1]
            updated[".".join(created)] = _get(after, created)
        else:
            updated[".".join(parts)] = new

    for operator, spec in update.items():
        for raw, argument in spec.items():
            path = str(raw)
            if operator in _WHOLE_FIELD and "." not in path and path != "$":  # a top-level field: set_path's answer
                old, new = before.get(path, _MISSING), after.get(path, _MISSING)
                if new is not _MISSING and (old is _MISSING or not same(old, new)):
                    updated[path] = new
                continue
            parts = _resolve(path.split("."), before, after)
            if parts is None or operator == "$setOnInsert":
                continue
            if operator == "$unset":
                if _get(before, parts) is _MISSING:
                    continue
                if isinstance(_get(before, parts[:-1]), list):  # unsetting an element sets it to null
                    updated[".".join(parts)] = None
                else:
                    removed.append(".".join(parts))
            elif operator == "$rename":
                if _get(before, parts) is _MISSING:
                    continue
                removed.append(".".join(parts))
                set_path(str(argument).split("."))
            elif operator == "$push" and _appended(argument, _get(before, parts), _get(after, parts)):
                old, new = _get(before, parts), _get(after, parts)
                for index in range(len(old), len(new)):  # push_node.cpp: kArrayAppendUpdate
                    updated[f"{'.'.join(parts)}.{index}"] = new[index]
            else:  # $set, $inc, ..., $addToSet, $pull, $pop: the field, whole
                set_path(parts)
    return updated, removed


# operators whose change is logged as their field, whole (`set_path`): not $unset, $rename, $push
# (which may log appended elements) nor $setOnInsert (which an update of a document never logs)
_WHOLE_FIELD = frozenset(
    {"$set", "$inc", "$mul", "$min", "$max", "$currentDate", "$bit", "$addToSet", "$pop", "$pull", "$pullAll"}
)


def _appended(argument: Any, old: Any, new: Any) -> bool:
    """A $push that only appended to a non-empty array (push_node.cpp logs the new elements
    as arr.N); onto an empty or missing array, at a $position inside the array, with $sort or
    with a $slice that trimmed, it logs the whole array."""
    if not isinstance(old, list) or not old or not isinstance(new, list):
        return False
    if isinstance(argument, dict) and "$each" in argument:
        position = argument.get("$position")
        if "$sort" in argument or (position is not None and not position > len(old)):
            return False  # a $position past the end still appends
        values = list(argument["$each"])
    else:
        values = [argument]
    return bool(values) and len(new) == len(old) + len(values) and same(new[: len(old)], old)


# pipeline updates: the delta of document_diff_calculator.cpp (computeDocDiff / computeArrayDiff)


def _pipeline_description(before: dict[str, Any], after: dict[str, Any]) -> tuple[str, dict[str, Any] | None]:
    node = _doc_delta(before, after)
    if node is None or _bson_size(_serialize(node)) >= _bson_size(after):
        return "replace", None  # the server logs the whole document: a replace event
    updated: dict[str, Any] = {}
    removed: list[str] = []
    truncated: list[dict[str, Any]] = []
    _delta_description(node, "", updated, removed, truncated)
    return "update", {"updatedFields": updated, "removedFields": removed, "truncatedArrays": truncated}


def _doc_delta(pre: dict[str, Any], post: dict[str, Any]) -> dict[str, Any] | None:
    node: dict[str, Any] = {"u": {}, "i": {}, "d": [], "s": {}}
    pre_items, post_items = list(pre.items()), list(post.items())
    i = j = 0
    deletes: list[str] = []
    while i < len(pre_items) and j < len(post_items):
        (pk, pv), (qk, qv) = pre_items[i], post_items[j]
        if pk != qk:
            deletes.append(pk)  # gone, or moved later in the document (then re-inserted below)
            i += 1
            continue
        if not same(pv, qv):
            _child(node, pk, pv, qv)
        i, j = i + 1, j + 1
    node["d"].extend(k for k, _ in pre_items[i:])
    for k, v in post_items[j:]:
        node["i"][k] = v
        if k in deletes:
            deletes.remove(k)
    node["d"].extend(sorted(deletes))
    return node if _bson_size(_serialize(node)) < _bson_size(post) else None


def _array_delta(pre: list[Any], post: list[Any]) -> dict[str, Any] | None:
    node: dict[str, Any] = {"a": True, "u": {}, "s": {}, "l": None}
    for index, (a, b) in enumerate(zip(pre, post)):
        if not same(a, b):
            _child(node, index, a, b)
    for index in range(len(pre), len(post)):
        node["u"][index] = post[index]
    if len(pre) > len(post):
        node["l"] = len(post)
    return node if _bson_size(_serialize(node)) < _bson_size({str(i): v for i, v in enumerate(post)}) else None


def _child(node: dict[str, Any], key: Any, pre: Any, post: Any) -> None:
    sub = None
    if type(pre) is type(post) and isinstance(pre, dict):
        sub = _doc_delta(pre, post)
    elif type(pre) is type(post) and isinstance(pre, list):
        sub = _array_delta(pre, post)
    if sub is None:
        node["u"][key] = post  # no sub-delta, or one no smaller than the value: the value whole
    else:
        node["s"][key] = sub


def _serialize(node: dict[str, Any]) -> dict[str, Any]:
    """The delta as the oplog spells it (for its size)."""
    if node.get("a"):
        out: dict[str, Any] = {"a": True}
        if node["l"] is not None:
            out["l"] = node["l"]
        out.update({f"u{k}": v for k, v in node["u"].items()})
        out.update({f"s{k}": _serialize(v) for k, v in node["s"].items()})
        return out
    out = {}
    if node["d"]:
        out["d"] = {k: False for k in node["d"]}
    if node["u"]:
        out["u"] = node["u"]
    if node["i"]:
        out["i"] = node["i"]
    out.update({f"s{k}": _serialize(v) for k, v in node["s"].items()})
    return out


def _bson_size(doc: dict[str, Any]) -> int:
    try:
        return len(bson.encode(doc))
    except Exception:  # noqa: BLE001 - a value bson cannot encode: size it by its repr
        return len(repr(doc))


def _delta_description(
    node: dict[str, Any], prefix: str, updated: dict[str, Any], removed: list[str], truncated: list[dict[str, Any]]
) -> None:
    if node.get("a"):
        if node["l"] is not None:
            truncated.append({"field": prefix[:-1], "newSize": node["l"]})
        for index, value in node["u"].items():
            updated[f"{prefix}{index}"] = value
    else:
        for key, value in node["u"].items():
            updated[prefix + key] = value
        for key, value in node["i"].items():
            updated[prefix + key] = value
        removed.extend(prefix + key for key in node["d"])
    for key, sub in node["s"].items():
        _delta_description(sub, f"{prefix}{key}.", updated, removed, truncated)
