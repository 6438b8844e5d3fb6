// What the rule builder can name: the actions a rule may be "when" (the catalogue, less the
// ones no rule applies to) and the payload fields of each, with their types. Both come from
// src/generated/catalogue.ts, which `tandem catalogue-ts` writes from the server's catalogue
// (backend/domain/catalogue.py, backend/rules/schema.py); tests/test_frontend_contract.py
// checks that file is the server's, and every count below a number of schema.py's COLLABORATION.

import { ACTION_NAMES, CATALOGUE, type FieldType, type PayloadField } from '@/generated/catalogue';

export type { FieldType, PayloadField };

/** Actions no rule applies to (schema.py EXEMPT_ACTIONS): the server refuses a rule naming one. */
export const EXEMPT_ACTIONS: readonly string[] = ACTION_NAMES.filter((name) => CATALOGUE[name].ruleExempt !== null);

/** Payload fields of each action a rule may be "when" (schema.py PAYLOADS). */
export const RULE_PAYLOADS: Readonly<Record<string, Readonly<Record<string, PayloadField>>>> = Object.fromEntries(
  ACTION_NAMES.filter((name) => CATALOGUE[name].ruleExempt === null).map((name) => [name, CATALOGUE[name].ruleFields]),
);

/**
 * The counts of the collaboration a condition compares with a number (schema.py COLLABORATION),
 * with what they count, in words: "the collaboration has more than 20 open activities". A count
 * is of the collaboration before the action (docs/rules.md).
 */
export const RULE_COUNTS: Readonly<Record<string, string>> = {
  'collaboration.memberCount': 'members',
  'collaboration.activityCount': 'activities',
  'collaboration.openActivityCount': 'open activities',
};

/** The actions the builder's "when" offers, in the catalogue's order. */
export function ruleActions(): string[] {
  return ACTION_NAMES.filter((name) => !EXEMPT_ACTIONS.includes(name));
}

export function payloadFields(action: string): Readonly<Record<string, PayloadField>> {
  return RULE_PAYLOADS[action] ?? {};
}
