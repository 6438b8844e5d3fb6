import { describe, expect, it } from 'vitest';

import type { Collaboration, Role } from '@/types/api';

import { SHELL_SUBSCRIPTION_CAP, shellSubscriptions } from './subscription-policy';

function collaboration(i: number, role: Role, overrides: Partial<Collaboration> = {}): Collaboration {
  return {
    id: `col_${String(i).padStart(3, '0')}`,
    title: `C${i}`,
    description: null,
    status: 'active',
    members: [{ userId: 'me', email: 'me@example.com', role, joinedAt: '' }],
    memberIds: ['me'],
    activities: [],
    settings: { protectedActions: [] },
    rules: [],
    version: 1,
    createdAt: '',
    updatedAt: '',
    lastActivityAt: `2026-11-${String((i % 28) + 1).padStart(2, '0')}T00:00:00Z`,
    ...overrides,
  };
}

describe('shellSubscriptions', () => {
  it('keeps only collaborations I own (approval events reach subscribed owners), never all of them', () => {
    const mine = [collaboration(1, 'owner'), collaboration(2, 'editor'), collaboration(3, 'viewer'), collaboration(4, 'owner')];
    expect(shellSubscriptions(mine, 'me').sort()).toEqual(['col_001', 'col_004']);
    expect(shellSubscriptions(null, 'me')).toEqual([]);
  });

  it('stays far under the server limit of 100 for someone in 150 collaborations, active and recent ones first', () => {
    const many = Array.from({ length: 150 }, (_, i) =>
      collaboration(i, 'owner', i < 5 ? { status: 'archived', lastActivityAt: '2026-12-31T00:00:00Z' } : {}),
    );
    const ids = shellSubscriptions(many, 'me');
    expect(ids).toHaveLength(SHELL_SUBSCRIPTION_CAP);
    expect(SHELL_SUBSCRIPTION_CAP).toBeLessThanOrEqual(50);
    expect(ids.some((id) => ['col_000', 'col_001', 'col_002', 'col_003', 'col_004'].includes(id))).toBe(false);
    const dates = ids.map((id) => many.find((c) => c.id === id)!.lastActivityAt);
    expect([...dates].sort().reverse()).toEqual(dates);
  });
});
