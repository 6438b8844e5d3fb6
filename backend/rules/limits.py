"""Every bound on rules, in one place (docs/rules.md, "Limits").

Size bounds are checked when a rule is saved; the step and time bounds when
rules run. Together they keep a pathological rule from stalling the server.
"""

from __future__ import annotations

MAX_RULES = 50
"""Rules per collaboration."""

MAX_RULE_BYTES = 4096
"""One rule, encoded as compact JSON."""

MAX_DEPTH = 16
"""Nesting of one expression: the rule's `if`, or one follow-up payload value, is level 1."""

MAX_NODES = 128
"""Expression nodes (literals, lists, operators) in one rule, `if` and follow-up payload together."""

MAX_NAME_CHARS = 100
MAX_TEXT_CHARS = 500
"""A deny message or an approval reason."""

MAX_NUMBER = 2**53
"""Numbers beyond ±2**53 (where floats stop counting exactly) are out of range."""

MAX_STEPS = 1000
"""Steps one rule may take: one per expression node evaluated, plus one per STEP_ITEMS
characters or list items an operator reads or writes (STEP_CASE_CHARS for `lower` on text
that is not ASCII). A step costs about as much as evaluating one node, a microsecond or so."""

STEP_ITEMS = 256

STEP_CASE_CHARS = 32
"""`lower` on text that is not all ASCII: Unicode case mapping (`"İ"`) costs some 40 ns a
character, two hundred times ASCII's, so it is charged one step per 32 characters."""

TIME_BUDGET_SECONDS = 0.050
"""CPU time (`time.thread_time`: the evaluating thread's own, so waiting for a core on a busy
machine does not count) for evaluating all the rules of one action; rules not finished by then
error, and a guard among them fails closed. The largest valid rule set (MAX_RULES rules of
MAX_NODES nodes, all on one action) takes 10 to 12 ms of one core: the budget stops what the
step count cannot foresee, never honest rules, and load on the machine cannot make it refuse."""

FOLLOWUP_DEPTH_LIMIT = 3
"""A user's or the AI's action runs at depth 0; a follow-up runs one deeper than the action
that triggered it; at this depth rules no longer start follow-ups."""

FOLLOWUP_LIMIT = 10
"""Follow-ups one root action (a user's or the AI's action, or an approval carried out) may run
in all, its follow-ups' own follow-ups included. The depth limit bounds a chain's depth; this
bounds its breadth: 50 rules echoing every message would otherwise send 50 + 50² + 50³."""
