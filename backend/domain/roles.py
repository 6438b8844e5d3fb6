"""Roles: owner > editor > viewer."""

from __future__ import annotations

from typing import Literal

Role = Literal["owner", "editor", "viewer"]
ROLES: tuple[Role, ...] = ("viewer", "editor", "owner")
_RANK: dict[str, int] = {role: rank for rank, role in enumerate(ROLES)}


def rank(role: str | None) -> int:
    return _RANK.get(role or "", -1)


def at_least(role: str | None, least: str) -> bool:
    return rank(role) >= rank(least)
