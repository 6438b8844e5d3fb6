// An action and its payload in readable form, e.g. "Cancel activity 'Plan picnic'".
// Used by the approvals inbox and the AI's suggestions.

import { type ActionName, isAction } from '@/generated/catalogue';
import type { Collaboration } from '@/types/api';

import { formatDateTime } from './format';

type Payload = Record<string, unknown>;

function text(value: unknown): string {
  return typeof value === 'string' ? value : value === undefined || value === null ? '' : JSON.stringify(value);
}

function quote(value: unknown): string {
  return `'${text(value)}'`;
}

function activityName(payload: Payload, collaboration?: Collaboration | null): string {
  const id = text(payload.activityId);
  const activity = collaboration?.activities.find((a) => a.id === id);
  return activity ? quote(activity.title) : id ? `#${id}` : 'an activity';
}

function memberName(payload: Payload, collaboration?: Collaboration | null): string {
  const id = text(payload.userId);
  const member = collaboration?.members.find((m) => m.userId === id);
  return member?.email ?? (id || 'a member');
}

export function describeAction(action: string, payload: Payload = {}, collaboration?: Collaboration | null): string {
  switch (action) {
    case 'createCollaboration':
      return `Create collaboration ${quote(payload.title)}`;
    case 'updateDetails': {
      const parts: string[] = [];
      if ('title' in payload) parts.push(`title to ${quote(payload.title)}`);
      if ('description' in payload) parts.push(`description to ${quote(payload.description)}`);
      return parts.length ? `Change the ${parts.join(' and the ')}` : 'Update the details';
    }
    case 'archiveCollaboration':
      return 'Archive this collaboration';
    case 'addMember':
      return `Add ${text(payload.email)} as ${text(payload.role) || 'member'}`;
    case 'removeMember':
      return `Remove ${memberName(payload, collaboration)} from the collaboration`;
    case 'changeRole':
      return `Make ${memberName(payload, collaboration)} ${text(payload.role)}`;
    case 'leaveCollaboration':
      return 'Leave the collaboration';
    case 'proposeActivity': {
      const due = payload.dueAt ? ` (due ${formatDateTime(text(payload.dueAt))})` : '';
      return `Propose activity ${quote(payload.title)}${due}`;
    }
    case 'scheduleActivity':
      return `Schedule activity ${activityName(payload, collaboration)} for ${formatDateTime(text(payload.scheduledFor))}`;
    case 'completeActivity':
      return `Mark activity ${activityName(payload, collaboration)} as done`;
    case 'cancelActivity': {
      const reason = payload.reason ? ` — reason: ${text(payload.reason)}` : '';
      return `Cancel activity ${activityName(payload, collaboration)}${reason}`;
    }
    case 'sendMessage':
      return `Send the message “${text(payload.text)}”`;
    case 'setProtectedActions':
      return `Require approval for the AI's: ${
        Array.isArray(payload.actions) ? payload.actions.map((name) => actionLabel(text(name))).join(', ') || 'nothing' : text(payload.actions)
      }`;
    case 'addRule':
    case 'updateRule': {
      const name = factValue('rule', payload.rule, collaboration);
      const named = name && name !== text(payload.rule) ? ` “${name}”` : '';
      return `${action === 'addRule' ? 'Add the rule' : 'Change the rule'}${named}`.replace(/the rule$/, 'a rule');
    }
    case 'removeRule': {
      const id = text(payload.ruleId);
      const name = ruleName(collaboration, id);
      return name ? `Remove the rule “${name}”` : `Remove rule ${id}`;
    }
    default:
      return `${action}${Object.keys(payload).length ? ` ${JSON.stringify(payload)}` : ''}`;
  }
}

/**
 * The name of an action in words ("Cancel an activity"), for lists and details: one for every
 * action of the catalogue (TypeScript and describe-action.test.ts refuse a missing one).
 */
export const ACTION_LABELS: Readonly<Record<ActionName, string>> = {
  createCollaboration: 'Create a collaboration',
  updateDetails: 'Change the details',
  archiveCollaboration: 'Archive the collaboration',
  addMember: 'Add a member',
  removeMember: 'Remove a member',
  changeRole: "Change a member's role",
  leaveCollaboration: 'Leave the collaboration',
  proposeActivity: 'Propose an activity',
  scheduleActivity: 'Schedule an activity',
  completeActivity: 'Mark an activity done',
  cancelActivity: 'Cancel an activity',
  sendMessage: 'Send a message',
  setProtectedActions: 'Choose which AI actions need approval',
  addRule: 'Add a rule',
  updateRule: 'Change a rule',
  removeRule: 'Remove a rule',
};

export function actionLabel(action: string): string {
  return isAction(action) ? ACTION_LABELS[action] : action;
}

const FIELD_LABELS: Record<string, string> = {
  title: 'Title',
  description: 'Description',
  email: 'Email',
  role: 'Role',
  userId: 'Member',
  assigneeId: 'Assignee',
  activityId: 'Activity',
  dueAt: 'Due',
  scheduledFor: 'Scheduled for',
  reason: 'Reason',
  text: 'Message',
  actions: 'Actions',
  rule: 'Rule',
  ruleId: 'Rule',
  suggestions: 'Suggests (not run)',
};

function ruleName(collaboration: Collaboration | null | undefined, id: string): string | null {
  const rules = (collaboration?.rules ?? []) as Array<{ id?: unknown; name?: unknown }>;
  const rule = rules.find((r) => r && r.id === id);
  return rule && typeof rule.name === 'string' ? rule.name : null;
}

function factValue(key: string, value: unknown, collaboration?: Collaboration | null): string {
  const id = text(value);
  switch (key) {
    case 'activityId':
      return collaboration?.activities.find((a) => a.id === id)?.title ?? id;
    case 'userId':
    case 'assigneeId': {
      const member = collaboration?.members.find((m) => m.userId === id);
      return member?.email ?? id;
    }
    case 'role':
      return id ? id.charAt(0).toUpperCase() + id.slice(1) : id;
    case 'actions':
      return Array.isArray(value) ? value.map((name) => actionLabel(text(name))).join(', ') || 'none' : id;
    case 'rule':
      return value && typeof value === 'object' && typeof (value as { name?: unknown }).name === 'string'
        ? (value as { name: string }).name
        : id;
    case 'ruleId':
      return ruleName(collaboration, id) ?? id;
    case 'suggestions': // the AI's answer held for approval: the actions it suggests, in words
      return Array.isArray(value)
        ? value
            .map((s: { action?: unknown; payload?: unknown }) =>
              s && typeof s.action === 'string'
                ? describeAction(s.action, s.payload && typeof s.payload === 'object' ? (s.payload as Payload) : {}, collaboration)
                : text(s),
            )
            .join('; ')
        : id;
    default:
      return /At$|For$/.test(key) && typeof value === 'string' ? formatDateTime(value) : id;
  }
}

/**
 * Payload fields as label/value pairs in words, for a details list: activity
 * and member ids become titles and emails (when the collaboration is known),
 * times are formatted, action names spelled out. `omit` leaves out fields the
 * summary already shows.
 */
export function payloadFacts(
  payload: Payload,
  collaboration?: Collaboration | null,
  omit: readonly string[] = [],
): Array<{ key: string; label: string; value: string }> {
  return Object.entries(payload)
    .filter(([key, value]) => !omit.includes(key) && value !== undefined && value !== null)
    .map(([key, value]) => ({ key, label: FIELD_LABELS[key] ?? key, value: factValue(key, value, collaboration) }));
}

/** The payload fields `describeAction` already spells out in full (a details list need not repeat them). */
export function fieldsInSummary(action: string): string[] {
  return action === 'cancelActivity' ? ['reason'] : [];
}

/** What an action did, in the past tense, for "Bob scheduled 'Check the tent'" (`what`: the activity's title, quoted). */
export function actionDone(action: string, what: string | null): string {
  const it = what ?? 'an activity';
  switch (action) {
    case 'proposeActivity':
      return `proposed ${it}`;
    case 'scheduleActivity':
      return `scheduled ${it}`;
    case 'completeActivity':
      return `marked ${it} done`;
    case 'cancelActivity':
      return `cancelled ${it}`;
    case 'updateDetails':
      return 'changed the details';
    case 'archiveCollaboration':
      return 'archived the collaboration';
    case 'addMember':
      return 'added a member';
    case 'removeMember':
      return 'removed a member';
    case 'changeRole':
      return "changed a member's role";
    case 'leaveCollaboration':
      return 'left';
    case 'setProtectedActions':
      return 'changed which AI actions need approval';
    case 'addRule':
      return 'added a rule';
    case 'updateRule':
      return 'changed a rule';
    case 'removeRule':
      return 'removed a rule';
    case 'acceptInvitation': // not an action one runs: an invited person's first sign-in
      return 'joined';
    default:
      return `did “${actionLabel(action)}”`;
  }
}
