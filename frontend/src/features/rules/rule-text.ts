// Rules in words: what a rule does, and where a validation problem is (docs/rules.md).

import { ACTION_NAMES, CATALOGUE } from '@/generated/catalogue';
import type { Rule } from '@/types/api';
import { actionLabel } from '@/utils/describe-action';

/** The actions the AI may run at all (DESIGN.md §3: the AI column is not "never"), from the catalogue. */
export const AI_ACTIONS: readonly string[] = ACTION_NAMES.filter((name) => CATALOGUE[name].ai !== 'never');

/** Shown by "Use an example" in the add form: docs/rules.md's first example. */
export const EXAMPLE_RULE = {
  name: "Editors' cancellations need my approval",
  when: { action: 'cancelActivity', actor: 'user' },
  if: { '==': [{ var: 'actor.role' }, 'editor'] },
  then: { require_approval: { reason: 'Editors cancel only with an owner’s approval.' } },
};

const ACTORS: Record<string, string> = { user: 'by a person', ai: 'by the AI', any: 'by anyone' };

/** "Cancel an activity, by a person" */
export function describeWhen(rule: Rule): string {
  const action = rule.when?.action === '*' ? 'Any action' : actionLabel(rule.when?.action ?? '?');
  return `${action}, ${ACTORS[rule.when?.actor ?? 'any'] ?? ACTORS.any}${rule.if !== undefined && rule.if !== true ? ', when its condition holds' : ''}`;
}

/** "Refuse: “We do not schedule on weekends.”" / "Ask an owner to approve" / "Then: Send a message" */
export function describeEffect(rule: Rule): string {
  const then = rule.then ?? {};
  if (then.deny) return `Refuse: “${then.deny.message}”`;
  if (then.require_approval) {
    return then.require_approval.reason ? `Ask an owner to approve: “${then.require_approval.reason}”` : 'Ask an owner to approve';
  }
  if (then.action) return `Then: ${actionLabel(then.action.name)}`;
  return 'No effect';
}

const WORDS: Record<string, string> = {
  id: 'id',
  name: 'Name',
  enabled: 'Enabled',
  when: 'When',
  action: 'action',
  actor: 'actor',
  if: 'Condition',
  then: 'Effect',
  deny: 'refuse',
  require_approval: 'ask for approval',
  message: 'message',
  reason: 'reason',
  payload: 'payload',
};

/**
 * A validation_failed path of addRule/updateRule in words: "payload.rule.if.and.1.>=.0" →
 * "Condition › “and”, argument 2 › “>=”, argument 1"; "rules.3.id" → "Rule 4 › id".
 */
export function rulePathLabel(path: string): string {
  const segments = path.split('.').filter(Boolean);
  if (segments[0] === 'payload') segments.shift();
  if (segments.length === 0) return 'The rule';
  const parts: string[] = [];
  const head = segments.shift()!;
  if (head === 'rules') {
    const index = segments[0] !== undefined && /^\d+$/.test(segments[0]) ? Number(segments.shift()) : null;
    parts.push(index === null ? "This collaboration's rules" : `Rule ${index + 1}`);
  } else if (head === 'rule') {
    if (segments.length === 0) return 'The rule';
  } else {
    segments.unshift(head);
  }
  let inExpression = false;
  for (const segment of segments) {
    if (/^\d+$/.test(segment)) {
      const previous = parts.pop() ?? '';
      parts.push(`${previous}${previous ? ', ' : ''}${inExpression ? 'argument' : 'item'} ${Number(segment) + 1}`);
    } else if (!inExpression && segment in WORDS) {
      parts.push(WORDS[segment]!);
      if (segment === 'if') inExpression = true;
      if (segment === 'payload') inExpression = true; // a follow-up's payload values are expressions
    } else {
      parts.push(`“${segment}”`);
    }
  }
  return parts.join(' › ') || 'The rule';
}
