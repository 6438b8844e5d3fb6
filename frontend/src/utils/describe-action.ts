// An action and its payload in readable form, e.g. "Cancel activity 'Plan picnic'".
// Used by the approvals inbox and the AI's suggestions.

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
      return `Require approval for: ${Array.isArray(payload.actions) ? payload.actions.join(', ') || 'nothing' : text(payload.actions)}`;
    case 'addRule':
    case 'updateRule':
      return `${action === 'addRule' ? 'Add' : 'Update'} a rule`;
    case 'removeRule':
      return `Remove rule ${text(payload.ruleId)}`;
    default:
      return `${action}${Object.keys(payload).length ? ` ${JSON.stringify(payload)}` : ''}`;
  }
}

/** Payload fields as label/value pairs, for a details list. */
export function payloadEntries(payload: Payload): Array<[string, string]> {
  return Object.entries(payload).map(([key, value]) => {
    const shown = /At$|For$/.test(key) && typeof value === 'string' ? formatDateTime(value) : text(value);
    return [key, shown];
  });
}
