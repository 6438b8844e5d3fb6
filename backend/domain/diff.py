"""The MongoDB update that turns one document into another.

`update_for(old, new)` returns `{"$set": {dotted.path: value}, "$unset": {...}}`
at the finest grain that keeps paths disjoint: changed scalars and appended
array elements get their own path (`activities.3`, `members.1.role`), a shrunk
array is set whole. Applied to `old`, it gives `new`; MongoDB's change stream
then reports the same paths in `updateDescription`.

`build_update(old, changes)` gives the same update, and the new document,
without walking all of `old`: `changes` names the paths an action changed
(`{"activities.7": {...}, "version": 8}`), and only those subtrees are compared
(an action's changes come from `backend.domain.effects`). The new document
shares everything else with `old`, which it never changes.
"""

from __future__ import annotations

import copy
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


_MISSING = object()


class _Unsure(Exception):
    """A path `build_update` does not follow exactly as `update_for` would: it diffs in full instead."""


def build_update(old: dict[str, Any], changes: dict[str, Any]) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """`(new, update_for(old, new))` where `new` is `old` with each dotted path of `changes` set to
    its value (list indexes as numbers; an index one past the end appends). The paths must be
    disjoint. Only the containers on those paths are copied; `old` is left as it was. A path
    through a missing field is diffed in full (the same update, slower); one through a scalar or
    past the end of a list is a ValueError."""
    new = dict(old)
    copied = {id(new)}
    sets: dict[str, Any] = {}
    unsets: dict[str, str] = {}
    unsure = False
    for path in sorted(changes, key=lambda path: _position(old, path)):
        value = changes[path]
        parts = path.split(".")
        try:
            before = _get(old, parts)
            _put(new, parts, value, copied)
        except _Unsure:
            unsure = True
            continue
        if before is _MISSING:  # a new field, or an element appended
            sets[path] = value
        else:
            _walk(before, value, path, sets, unsets)
    if unsure:
        new = copy.deepcopy(old)
        for path, value in changes.items():
            try:
                _assign(new, path.split("."), value)
            except (AttributeError, IndexError, TypeError, ValueError):
                raise ValueError(f"Cannot set {path!r} in this document") from None
        return new, update_for(old, new)
    update: dict[str, dict[str, Any]] = {}
    if sets:
        update["$set"] = sets
    if unsets:
        update["$unset"] = unsets
    return new, update


def _position(doc: dict[str, Any], path: str) -> tuple[int, ...]:
    """Where `path` comes in a walk of `doc` (update_for's order): field positions and list indexes."""
    position: list[int] = []
    target: Any = doc
    for part in path.split("."):
        if isinstance(target, list) and part.isdigit():
            position.append(int(part))
            target = target[int(part)] if int(part) < len(target) else None
        elif isinstance(target, dict):
            keys = list(target)
            position.append(keys.index(part) if part in target else len(keys))
            target = target.get(part)
        else:
            position.append(0)
            target = None
    return tuple(position)


def _get(doc: Any, parts: list[str]) -> Any:
    """The value at `parts` in `doc`; _MISSING if only the last part is absent; _Unsure if more is."""
    target = doc
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        if isinstance(target, dict):
            if part in target:
                target = target[part]
                continue
        elif isinstance(target, list) and part.isdigit():
            index = int(part)
            if index < len(target):
                target = target[index]
                continue
            if last and index == len(target):
                return _MISSING
            raise _Unsure(parts)
        else:
            raise _Unsure(parts)
        if last:
            return _MISSING
        raise _Unsure(parts)
    return target


def _put(new: dict[str, Any], parts: list[str], value: Any, copied: set[int]) -> None:
    """Set `value` at `parts` in `new`, first copying each container on the way that is still `old`'s."""
    target: Any = new
    for part in parts[:-1]:
        key: Any = int(part) if isinstance(target, list) else part
        child = target[key]
        if id(child) not in copied:
            child = dict(child) if isinstance(child, dict) else list(child)
            copied.add(id(child))
            target[key] = child
        target = child
    _set_at(target, parts[-1], value)


def _set_at(target: Any, last: str, value: Any) -> None:
    """Set `target[last]`: a list's index (its length appends), or a key."""
    if isinstance(target, list):
        index = int(last)
        if index == len(target):
            target.append(value)
        else:
            target[index] = value
    else:
        target[last] = value


def apply_update(doc: dict[str, Any], update: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Apply `$set`/`$unset` with dotted paths to a copy of `doc` (the tests' model of a client's copy)."""
    out = copy.deepcopy(doc)
    for path, value in update.get("$set", {}).items():
        _assign(out, path.split("."), value)
    for path in update.get("$unset", {}):
        _remove(out, path.split("."))
    return out


def _assign(target: Any, parts: list[str], value: Any) -> None:
    for part in parts[:-1]:
        target = target[int(part)] if isinstance(target, list) else target.setdefault(part, {})
    _set_at(target, parts[-1], value)


def _remove(target: Any, parts: list[str]) -> None:
    for part in parts[:-1]:
        target = target[int(part)] if isinstance(target, list) else target.get(part, {})
    if isinstance(target, dict):
        target.pop(parts[-1], None)


def set_whole(update: dict[str, dict[str, Any]], field: str, value: Any) -> dict[str, dict[str, Any]]:
    """`update` with top-level `field` set to `value` as one path, not leaf by leaf: its `field.*`
    paths dropped. A collaboration's `lastAction` is written so, and the change stream reports it
    whole: the change reader needs nothing it saw before to send it."""
    prefix = field + "."
    sets = {path: v for path, v in update.get("$set", {}).items() if path != field and not path.startswith(prefix)}
    unsets = {path: v for path, v in update.get("$unset", {}).items() if path != field and not path.startswith(prefix)}
    sets[field] = value
    result: dict[str, dict[str, Any]] = {"$set": sets}
    if unsets:
        result["$unset"] = unsets
    return result
