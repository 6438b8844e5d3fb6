import { describe, expect, it } from 'vitest';

import { ACTION_LEAST_ROLE, canRun, leastRole, missingRole } from './roles';

describe('the least-role table (DESIGN.md §3)', () => {
  it('has every action of the catalogue with its least role', () => {
    expect(ACTION_LEAST_ROLE).toEqual({
      createCollaboration: null,
      updateDetails: 'editor',
      archiveCollaboration: 'owner',
      addMember: 'owner',
      removeMember: 'owner',
      changeRole: 'owner',
      leaveCollaboration: 'viewer',
      proposeActivity: 'editor',
      scheduleActivity: 'editor',
      completeActivity: 'editor',
      cancelActivity: 'editor',
      sendMessage: 'viewer',
      setProtectedActions: 'owner',
      addRule: 'owner',
      updateRule: 'owner',
      removeRule: 'owner',
    });
  });

  it('allows an action to its least role and above, never to a non-member or an unknown action', () => {
    expect(canRun('viewer', 'sendMessage')).toBe(true);
    expect(canRun('viewer', 'cancelActivity')).toBe(false);
    expect(canRun('editor', 'cancelActivity')).toBe(true);
    expect(canRun('owner', 'cancelActivity')).toBe(true);
    expect(canRun('editor', 'addMember')).toBe(false);
    expect(canRun(null, 'sendMessage')).toBe(false);
    expect(canRun(null, 'createCollaboration')).toBe(true);
    expect(canRun('owner', 'dropDatabase')).toBe(false);
    expect(leastRole('toString')).toBeUndefined();
  });

  it('names the role that is missing', () => {
    expect(missingRole('viewer', 'scheduleActivity')).toBe('editor');
    expect(missingRole('editor', 'removeMember')).toBe('owner');
    expect(missingRole('owner', 'removeMember')).toBeNull();
    expect(missingRole('viewer', 'unknownAction')).toBeNull();
  });
});
