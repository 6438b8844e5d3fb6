// What the rule builder can name: the actions a rule may be "when" (the catalogue of
// utils/roles.ts, less the ones no rule applies to) and the payload fields of each, with
// their types. It mirrors backend/rules/schema.py (EXEMPT_ACTIONS, PAYLOADS), which
// GET /api/config does not send; tests/test_frontend_contract.py checks that every field
// listed here is the server's, with the same type, and every count a number of schema.py's
// COLLABORATION.

import { ACTION_LEAST_ROLE } from '@/utils/roles';

/** Actions no rule applies to (schema.py EXEMPT_ACTIONS): the server refuses a rule naming one. */
export const EXEMPT_ACTIONS: readonly string[] = ['createCollaboration', 'addRule', 'updateRule', 'removeRule', 'leaveCollaboration'];

export type FieldType = 'string' | 'date' | 'list';
export type PayloadField = { type: FieldType; required: boolean };

/** Payload fields of each action (schema.py PAYLOADS). */
export const RULE_PAYLOADS: Readonly<Record<string, Readonly<Record<string, PayloadField>>>> = {
  updateDetails: { title: { type: 'string', required: false }, description: { type: 'string', required: false } },
  archiveCollaboration: {},
  addMember: { email: { type: 'string', required: true }, role: { type: 'string', required: true } },
  removeMember: { userId: { type: 'string', required: true } },
  changeRole: { userId: { type: 'string', required: true }, role: { type: 'string', required: true } },
  proposeActivity: {
    title: { type: 'string', required: true },
    description: { type: 'string', required: false },
    dueAt: { type: 'date', required: false },
    assigneeId: { type: 'string', required: false },
  },
  scheduleActivity: { activityId: { type: 'string', required: true }, scheduledFor: { type: 'date', required: true } },
  completeActivity: { activityId: { type: 'string', required: true } },
  cancelActivity: { activityId: { type: 'string', required: true }, reason: { type: 'string', required: false } },
  sendMessage: { text: { type: 'string', required: true } },
  setProtectedActions: { actions: { type: 'list', required: true } },
};

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
  return Object.keys(ACTION_LEAST_ROLE).filter((name) => !EXEMPT_ACTIONS.includes(name));
}

export function payloadFields(action: string): Readonly<Record<string, PayloadField>> {
  return RULE_PAYLOADS[action] ?? {};
}
