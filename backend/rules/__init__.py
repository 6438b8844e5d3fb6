"""Owner-defined rules: a small JSON expression language and its sandboxed interpreter.

Pure: no I/O, no `eval`. The language, with examples and limits, is in docs/rules.md.

Saving (addRule / updateRule), after the owner check::

    rule = validate_rule(payload["rule"])              # ValidationFailed (422) with exact paths
    validate_rule_set([*other_rules, rule])            # count limit, unique ids

Running an action, after the role check and before applying it::

    outcome = evaluate(doc.get("rules", []), action=name, actor=actor, payload=payload,
                       collaboration=doc, now=utcnow(), depth=depth)
    outcome.raise_if_denied()                          # RuleDenied (403 rule_denied)
    if outcome.require_approval and not carrying_out_an_approval:
        ...  # make an approval for the owners, reason=outcome.approval_reason, proposedBy=actor
    ...  # apply; the audit entry gets **outcome.for_audit(): rulesFired, ruleErrors
    for f in outcome.followups:                        # empty once depth reaches FOLLOWUP_DEPTH_LIMIT
        ...  # unless the root action has run FOLLOWUP_LIMIT follow-ups already (then: followup_limit),
        ...  # run f["action"] with f["payload"] as {"type": "rule", "ruleId": f["ruleId"]}, depth=depth + 1
"""

from backend.rules.limits import FOLLOWUP_DEPTH_LIMIT, FOLLOWUP_LIMIT, MAX_RULES
from backend.rules.outcome import Outcome, evaluate
from backend.rules.schema import EXEMPT_ACTIONS, FOLLOWUP_ACTIONS
from backend.rules.validate import validate_rule, validate_rule_set

__all__ = [
    "EXEMPT_ACTIONS",
    "FOLLOWUP_ACTIONS",
    "FOLLOWUP_DEPTH_LIMIT",
    "FOLLOWUP_LIMIT",
    "MAX_RULES",
    "Outcome",
    "evaluate",
    "validate_rule",
    "validate_rule_set",
]
