"""The SPA's copy of the action catalogue (frontend/src/generated/catalogue.ts, written by
`tandem catalogue-ts`) must be what the server would write; its tables (least roles, the rule
builder's actions and payload fields, the AI's actions) are derived from it, not copied."""

from __future__ import annotations

import re
from pathlib import Path

from backend import catalogue_ts
from backend.domain.catalogue import CATALOGUE

SRC = Path(__file__).resolve().parent.parent / "frontend/src"
GENERATED_TS = SRC / "generated/catalogue.ts"
ROLES_TS = SRC / "utils/roles.ts"
RULE_VOCABULARY_TS = SRC / "features/rules/rule-vocabulary.ts"
RULE_TEXT_TS = SRC / "features/rules/rule-text.ts"


def spa_catalogue() -> dict[str, dict[str, str]]:
    """Each action's block of the generated file: its keys with their TS source text."""
    source = GENERATED_TS.read_text()
    table = re.search(r"export const CATALOGUE = \{\n(.*?)\n\} as const", source, re.S)
    assert table, "CATALOGUE not found in generated/catalogue.ts"
    actions = {}
    for name, body in re.findall(r"^  (\w+): \{\n(.*?)\n  \},$", table.group(1), re.S | re.M):
        actions[name] = dict(re.findall(r"^    (\w+): (.*),$", body, re.M))
    return actions


def test_the_generated_catalogue_is_what_the_server_would_write():
    """`tandem catalogue-ts` after changing backend/domain/catalogue.py; this fails until then."""
    assert GENERATED_TS.read_text() == catalogue_ts.render(), "run `tandem catalogue-ts`"


def test_the_spa_least_role_table_is_the_catalogue():
    spa = {
        name: (None if block["leastRole"] == "null" else block["leastRole"].strip("'"))
        for name, block in spa_catalogue().items()
    }
    assert spa == {name: spec.role for name, spec in CATALOGUE.items()}


def test_the_spa_tables_are_derived_from_the_generated_catalogue_not_copied():
    for path in (ROLES_TS, RULE_VOCABULARY_TS, RULE_TEXT_TS):
        source = path.read_text()
        assert "from '@/generated/catalogue'" in source, path.name
        for name in CATALOGUE:  # no action named by hand: a copy would go stale
            assert not re.search(rf"^\s*'?{name}'?[:,]", source, re.M), f"{path.name} lists {name}"


def spa_rule_vocabulary() -> tuple[list[str], dict[str, dict[str, tuple[str, bool]]]]:
    exempt, payloads = [], {}
    for action, block in spa_catalogue().items():
        if block["ruleExempt"] != "null":
            exempt.append(action)
            continue
        fields = re.findall(r"(\w+): \{ type: '(\w+)', required: (true|false) \}", block["ruleFields"])
        payloads[action] = {name: (kind, required == "true") for name, kind, required in fields}
    return exempt, payloads


def test_the_rule_builder_names_only_what_the_rules_schema_has():
    """The rule builder's payload fields are the server's, with the same types; every action a
    rule may name is offered."""
    from backend.rules.schema import EXEMPT_ACTIONS, PAYLOADS

    exempt, payloads = spa_rule_vocabulary()
    assert set(exempt) == set(EXEMPT_ACTIONS)
    assert set(payloads) == set(PAYLOADS) - set(EXEMPT_ACTIONS)
    for action, fields in payloads.items():
        assert set(fields) == set(PAYLOADS[action]), action
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
    assert {"collaboration.memberCount", "collaboration.activityCount", "collaboration.openActivityCount"} <= set(
        counts
    )
    for path in counts:
        for action in [*PAYLOADS, "*"]:
            assert lookup(path, action) == Var(T(NUMBER)), f"{path} on {action}"
