import { describe, expect, it } from 'vitest';

import type { Collaboration } from '@/types/api';

import { describeLiveEvent, personName } from './live-notices';

const trip = {
  id: 'col_1',
  title: 'Summer trip',
  members: [
    { userId: 'u1', email: 'ann@example.com', role: 'owner', joinedAt: '' },
    { userId: 'u2', email: 'bob@example.com', role: 'editor', joinedAt: '' },
  ],
  activities: [{ id: 'act_1', title: 'Plan picnic', updatedAt: 'x' }, { id: 'act_2', title: 'Check the tent', updatedAt: '2026-11-02T10:00:00Z' }],
  rules: [{ id: 'rul_1', name: 'Thanks', when: { action: 'completeActivity' }, then: {} }],
} as unknown as Collaboration;

const update = (action: string, actor: Record<string, unknown>) => ({
  type: 'collaboration_updated' as const,
  collaborationId: 'col_1',
  version: 2,
  action,
  actor: actor as never,
  at: '2026-11-02T10:00:00Z',
  changes: { updatedFields: { 'activities.1.status': 'scheduled' } },
});

describe('live changes in words', () => {
  it("says who did what to which activity, and nothing for what I did", () => {
    expect(describeLiveEvent(update('scheduleActivity', { type: 'user', id: 'u2' }), trip, 'u1', true)?.text).toBe("Bob scheduled 'Check the tent'");
    expect(describeLiveEvent(update('cancelActivity', { type: 'ai', runId: 'run_1' }), trip, 'u1', false)?.text).toBe(
      "The AI cancelled 'Check the tent' in “Summer trip”",
    );
    expect(describeLiveEvent(update('updateDetails', { type: 'rule', ruleId: 'rul_1' }), trip, 'u1', true)?.text).toBe('The rule “Thanks” changed the details');
    expect(describeLiveEvent(update('scheduleActivity', { type: 'user', id: 'u1' }), trip, 'u1', true)).toBeNull();
    const message = { type: 'message_created' as const, collaborationId: 'col_1', message: { id: 'msg_1', collaborationId: 'col_1', author: { type: 'user' as const, id: 'u9' }, text: 'Hi', createdAt: '' } };
    expect(describeLiveEvent(message, trip, 'u1', true)).toEqual({ collaborationId: 'col_1', kind: 'message', text: 'Someone wrote: “Hi”' });
    expect(personName('dan.smith@example.com')).toBe('Dan.smith');
    const approval = (id: string) => ({ type: 'approval_created' as const, collaborationId: 'col_1', approval: { proposedBy: { type: 'user', id } } as never });
    expect(describeLiveEvent(approval('u2'), trip, 'u1', false)?.text).toBe('A new approval waits for you in “Summer trip”');
    expect(describeLiveEvent(approval('u1'), trip, 'u1', false)).toBeNull();
  });
});
