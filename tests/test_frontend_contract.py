"""The SPA keeps a copy of the catalogue's least roles (frontend/src/utils/roles.ts) to
offer only what a role may run: it must say what the server's catalogue says."""

from __future__ import annotations

import re
from pathlib import Path

from backend.domain.catalogue import CATALOGUE

ROLES_TS = Path(__file__).resolve().parent.parent / "frontend/src/utils/roles.ts"


def spa_least_roles() -> dict[str, str | None]:
    source = ROLES_TS.read_text()
    table = re.search(r"ACTION_LEAST_ROLE[^=]*=\s*Object\.freeze\(\{(.*?)\}\);", source, re.S)
    assert table, "ACTION_LEAST_ROLE not found in roles.ts"
    entries = re.findall(r"^\s*(\w+):\s*(null|'(\w+)'),?\s*$", table.group(1), re.M)
    return {name: (role or None) for name, _, role in entries}


def test_the_spa_least_role_table_is_the_catalogue():
    assert spa_least_roles() == {name: spec.role for name, spec in CATALOGUE.items()}
