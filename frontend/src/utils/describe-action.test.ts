import { describe, expect, it } from 'vitest';

import { ACTION_NAMES } from '@/generated/catalogue';
import type { Collaboration } from '@/types/api';

import { ACTION_LABELS, actionLabel, describeAction, fieldsInSummary, payloadFacts } from './describe-action';
import { formatDateTime } from './format';

const collaboration = {
  members: [{ userId: 'u2', email: 'bo@example.com', role: 'editor', joinedAt: '' }],
  activities: [{ id: 'act_1', title: 'Plan picnic', status: 'scheduled' }],
} as unknown as Collaboration;

describe('describeAction', () => {
  it('names activities and members instead of ids', () => {
    expect(describeAction('cancelActivity', { activityId: 'act_1', reason: 'rain all week' }, collaboration)).toBe(
      "Cancel activity 'Plan picnic' — reason: rain all week",
    );
    expect(describeAction('removeMember', { userId: 'u2' }, collaboration)).toBe('Remove bo@example.com from the collaboration');
    expect(describeAction('changeRole', { userId: 'u2', role: 'viewer' }, collaboration)).toBe('Make bo@example.com viewer');
  });

  it('describes the other actions readably', () => {
    expect(describeAction('addMember', { email: 'cy@example.com', role: 'editor' })).toBe('Add cy@example.com as editor');
    expect(describeAction('proposeActivity', { title: 'Visit museum' })).toBe("Propose activity 'Visit museum'");
    expect(describeAction('completeActivity', { activityId: 'act_9' })).toBe('Mark activity #act_9 as done');
    expect(describeAction('archiveCollaboration', {})).toBe('Archive this collaboration');
    expect(describeAction('updateDetails', { title: 'New' })).toBe("Change the title to 'New'");
  });
});

describe('payloadFacts', () => {
  it('labels fields in words and resolves ids, times and action names', () => {
    const facts = payloadFacts(
      { activityId: 'act_1', userId: 'u2', scheduledFor: '2026-12-05T11:00:00Z', actions: ['cancelActivity', 'addMember'] },
      collaboration,
    );
    expect(facts.map((f) => [f.label, f.value])).toEqual([
      ['Activity', 'Plan picnic'],
      ['Member', 'bo@example.com'],
      ['Scheduled for', formatDateTime('2026-12-05T11:00:00Z')],
      ['Actions', 'Cancel an activity, Add a member'],
    ]);
  });

  it("says the suggestions of an AI answer held for approval in words, not as JSON", () => {
    const facts = payloadFacts(
      { text: 'Shall we?', suggestions: [{ action: 'cancelActivity', payload: { activityId: 'act_1' } }, { action: 'sendMessage', payload: { text: 'Who is in?' } }] },
      collaboration,
    );
    expect(facts.map((f) => [f.label, f.value])).toEqual([
      ['Message', 'Shall we?'],
      ['Suggests (not run)', "Cancel activity 'Plan picnic'; Send the message “Who is in?”"],
    ]);
  });

  it('falls back to the id when the collaboration is unknown, and leaves out what the summary shows', () => {
    expect(payloadFacts({ activityId: 'act_9', reason: 'rain' }, null, fieldsInSummary('cancelActivity'))).toEqual([
      { key: 'activityId', label: 'Activity', value: 'act_9' },
    ]);
    expect(actionLabel('cancelActivity')).toBe('Cancel an activity');
  });
});

describe('every action of the catalogue', () => {
  it('has a name and a sentence of its own (none falls back to its identifier)', () => {
    for (const name of ACTION_NAMES) {
      expect(Object.prototype.hasOwnProperty.call(ACTION_LABELS, name), `${name} has no label`).toBe(true);
      expect(actionLabel(name), `${name} has no label`).not.toBe(name);
      expect(describeAction(name, {}), `${name} has no sentence in describeAction`).not.toBe(name);
    }
    expect(Object.keys(ACTION_LABELS).sort()).toEqual([...ACTION_NAMES].sort());
  });
});
