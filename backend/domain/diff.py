"""The MongoDB update that turns one document into another.

`update_for(old, new)` returns `{"$set": {dotted.path: value}, "$unset": {...}}`
at the finest grain that keeps paths disjoint: changed scalars and appended
array elements get their own path (`activities.3`, `members.1.role`), a shrunk
array is set whole. Applied to `old`, it gives `new`; MongoDB's change stream
then reports the same paths in `updateDescription`.
"""

from __future__ import annotations

from typing import Any


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


def _walk(old: Any, new: Any, path: str, sets: dict[str, Any], unsets: dict[str, str]) -> None:
    if isinstance(old, dict) and isinstance(new, dict):
        for key, value in new.items():
            sub = f"{path}.{key}" if path else key
            if key not in old:
                sets[sub] = value
            else:
                _walk(old[key], value, sub, sets, unsets)
        for key in old:
            if key not in new:
                unsets[f"{path}.{key}" if path else key] = ""
    elif isinstance(old, list) and isinstance(new, list) and len(new) >= len(old) and path:
        for index, value in enumerate(new):
            sub = f"{path}.{index}"
            if index < len(old):
                _walk(old[index], value, sub, sets, unsets)
            else:
                sets[sub] = value
    elif not _same(old, new):
        sets[path] = new


def update_for(old: dict[str, Any], new: dict[str, Any]) -> dict[str, dict[str, Any]]:
    sets: dict[str, Any] = {}
    unsets: dict[str, str] = {}
    _walk(old, new, "", sets, unsets)
    update: dict[str, dict[str, Any]] = {}
    if sets:
        update["$set"] = sets
    if unsets:
        update["$unset"] = unsets
    return update


def apply_update(doc: dict[str, Any], update: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Apply `$set`/`$unset` with dotted paths to a copy of `doc` (used by tests and clients)."""
    import copy

    out = copy.deepcopy(doc)
    for path, value in update.get("$set", {}).items():
        _assign(out, path.split("."), value)
    for path in update.get("$unset", {}):
        _remove(out, path.split("."))
    return out


def _assign(target: Any, parts: list[str], value: Any) -> None:
    for part in parts[:-1]:
        target = target[int(part)] if isinstance(target, list) else target.setdefault(part, {})
    last = parts[-1]
    if isinstance(target, list):
        index = int(last)
        if index == len(target):
            target.append(value)
        else:
            target[index] = value
    else:
        target[last] = value


def _remove(target: Any, parts: list[str]) -> None:
    for part in parts[:-1]:
        target = target[int(part)] if isinstance(target, list) else target.get(part, {})
    if isinstance(target, dict):
        target.pop(parts[-1], None)
