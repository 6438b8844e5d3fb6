import { describe, expect, it } from 'vitest';

import type { Collaboration } from '@/types/api';

import { describeAction } from './describe-action';

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
