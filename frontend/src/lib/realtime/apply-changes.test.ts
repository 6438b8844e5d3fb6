import { describe, expect, it } from 'vitest';

import { applyChanges, removePath, setPath } from './apply-changes';

const doc = () => ({
  id: 'col_1',
  title: 'Trip',
  description: 'Summer',
  version: 3,
  settings: { protectedActions: ['addMember'], timezone: 'UTC' },
  members: [
    { userId: 'u1', role: 'owner' },
    { userId: 'u2', role: 'editor' },
  ],
  activities: [
    { id: 'act_1', title: 'Plan picnic', status: 'proposed', meta: { tags: ['food', 'park'] } },
    { id: 'act_2', title: 'Buy tickets', status: 'scheduled', meta: { tags: [] } },
  ],
});

describe('applyChanges', () => {
  it('sets top-level fields', () => {
    const next = applyChanges(doc(), { updatedFields: { title: 'Winter trip', version: 4 } });
    expect(next.title).toBe('Winter trip');
    expect(next.version).toBe(4);
  });

  it('sets nested object paths', () => {
    const next = applyChanges(doc(), { updatedFields: { 'settings.timezone': 'Europe/Paris' } });
    expect(next.settings).toEqual({ protectedActions: ['addMember'], timezone: 'Europe/Paris' });
  });

  it('follows numeric segments into arrays', () => {
    const next = applyChanges(doc(), {
      updatedFields: { 'activities.1.status': 'done', 'activities.0.meta.tags.1': 'lake', 'members.0.role': 'editor' },
    });
    expect(next.activities[1]!.status).toBe('done');
    expect(next.activities[0]!.meta.tags).toEqual(['food', 'lake']);
    expect(next.members[0]!.role).toBe('editor');
    expect(Array.isArray(next.activities)).toBe(true);
    expect(Array.isArray(next.activities[0]!.meta.tags)).toBe(true);
  });

  it('appends an element sent at index length', () => {
    const added = { id: 'act_3', title: 'Rent bikes', status: 'proposed', meta: { tags: [] } };
    const next = applyChanges(doc(), { updatedFields: { 'activities.2': added } });
    expect(next.activities).toHaveLength(3);
    expect(next.activities[2]).toEqual(added);
  });

  it('pads with null past the end, as MongoDB does', () => {
    const next = setPath({ list: [1] }, 'list.3', 4);
    expect(next.list).toEqual([1, null, null, 4]);
  });

  it('removes fields after applying updates', () => {
    const next = applyChanges(doc(), {
      updatedFields: { description: 'ignored, then removed', title: 'Kept' },
      removedFields: ['description', 'settings.timezone', 'activities.0.meta'],
    });
    expect('description' in next).toBe(false);
    expect(next.title).toBe('Kept');
    expect(next.settings).toEqual({ protectedActions: ['addMember'] });
    expect('meta' in next.activities[0]!).toBe(false);
  });

  it('replaces a truncated array sent whole', () => {
    const next = applyChanges(doc(), { updatedFields: { members: [{ userId: 'u1', role: 'owner' }] } });
    expect(next.members).toEqual([{ userId: 'u1', role: 'owner' }]);
  });

  it('never mutates the input and shares untouched branches', () => {
    const before = doc();
    const frozen = JSON.parse(JSON.stringify(before)) as ReturnType<typeof doc>;
    const next = applyChanges(before, { updatedFields: { 'activities.1.title': 'Buy train tickets' }, removedFields: ['description'] });
    expect(before).toEqual(frozen);
    expect(next).not.toBe(before);
    expect(next.activities).not.toBe(before.activities);
    expect(next.activities[0]).toBe(before.activities[0]);
    expect(next.members).toBe(before.members);
    expect(next.settings).toBe(before.settings);
  });

  it('creates missing parents as objects', () => {
    const next = setPath({ a: 1 } as Record<string, unknown>, 'b.c', 2);
    expect(next).toEqual({ a: 1, b: { c: 2 } });
  });

  it('ignores removal of a path that does not exist', () => {
    const before = doc();
    expect(removePath(before, 'nothing.here')).toBe(before);
    expect(removePath(before, 'nope')).toBe(before);
  });

  it('leaves null when an array element is unset', () => {
    expect(removePath({ list: [1, 2, 3] }, 'list.1')).toEqual({ list: [1, null, 3] });
  });

  it('returns the same document for empty changes', () => {
    const before = doc();
    expect(applyChanges(before, {})).toBe(before);
  });
});
