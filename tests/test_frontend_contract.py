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


RULE_VOCABULARY_TS = ROLES_TS.parent.parent / "features/rules/rule-vocabulary.ts"


def spa_rule_vocabulary() -> tuple[list[str], dict[str, dict[str, tuple[str, bool]]]]:
    source = RULE_VOCABULARY_TS.read_text()
    exempt = re.search(r"EXEMPT_ACTIONS[^=]*=\s*\[(.*?)\];", source, re.S)
    table = re.search(r"RULE_PAYLOADS[^=]*=\s*\{(.*?)\n\};", source, re.S)
    assert exempt and table, "EXEMPT_ACTIONS / RULE_PAYLOADS not found in rule-vocabulary.ts"
    payloads = {}
    for action, body in re.findall(r"^\s*(\w+):\s*\{((?:[^{}]|\{[^{}]*\})*)\},?\s*$", table.group(1), re.M):
        fields = re.findall(r"(\w+):\s*\{\s*type:\s*'(\w+)',\s*required:\s*(true|false)\s*\}", body)
        payloads[action] = {name: (kind, required == "true") for name, kind, required in fields}
    return re.findall(r"'(\w+)'", exempt.group(1)), payloads


def test_the_rule_builder_names_only_what_the_rules_schema_has():
    """The rule builder's payload fields (GET /api/config does not send the rules schema) are
    the server's, with the same types; every action a rule may name is offered."""
    from backend.rules.schema import EXEMPT_ACTIONS, PAYLOADS

    exempt, payloads = spa_rule_vocabulary()
    assert set(exempt) == set(EXEMPT_ACTIONS)
    assert set(payloads) == set(PAYLOADS) - set(EXEMPT_ACTIONS)
    for action, fields in payloads.items():
        for name, (kind, required) in fields.items():
            server = PAYLOADS[action].get(name)
            assert server is not None, f"{action}.{name} is not a payload field of the rules schema"
            assert set(server.type) == {kind} and server.required == required, f"{action}.{name}"


def test_the_rule_builders_counts_are_numbers_of_the_rules_schema():
    """The builder's "the collaboration has more than N …" names only counts the server knows,
    on every action (the builder offers them whatever the action)."""
    from backend.rules.language import NUMBER, T
    from backend.rules.schema import PAYLOADS, Var, lookup

    table = re.search(r"RULE_COUNTS[^=]*=\s*\{(.*?)\};", RULE_VOCABULARY_TS.read_text(), re.S)
    assert table, "RULE_COUNTS not found in rule-vocabulary.ts"
    counts = re.findall(r"'([\w.]+)':\s*'[^']+'", table.group(1))
    assert {"collaboration.memberCount", "collaboration.activityCount", "collaboration.openActivityCount"} <= set(counts)
    for path in counts:
        for action in [*PAYLOADS, "*"]:
            assert lookup(path, action) == Var(T(NUMBER)), f"{path} on {action}"
