// @vitest-environment jsdom
import { beforeEach, describe, expect, it } from 'vitest';

import { unreadStore } from './unread';

beforeEach(() => {
  localStorage.clear();
  unreadStore.reset();
});

describe('unread messages', () => {
  it('counts messages from others since my last visit, once each, and none where I never went', () => {
    unreadStore.start('u1');
    unreadStore.add('col_a', 'msg_5'); // never visited: nothing to compare with
    expect(unreadStore.count('col_a')).toBe(0);

    unreadStore.markSeen('col_a', 'msg_5');
    unreadStore.add('col_a', 'msg_4'); // older than what I saw
    unreadStore.add('col_a', 'msg_6');
    unreadStore.add('col_a', 'msg_6');
    unreadStore.set('col_a', ['msg_6', 'msg_7']); // what HTTP said, overlapping the live one
    expect(unreadStore.count('col_a')).toBe(2);
    unreadStore.markSeen('col_b', '');
    unreadStore.add('col_b', 'msg_1');
    expect(unreadStore.total()).toBe(3);

    // The last visit is remembered across a reload, per user.
    unreadStore.reset();
    unreadStore.start('u1');
    expect(unreadStore.lastSeen('col_a')).toBe('msg_5');
    unreadStore.markSeen('col_a', 'msg_7');
    expect(unreadStore.count('col_a')).toBe(0);
    unreadStore.reset();
    unreadStore.start('u2');
    expect(unreadStore.lastSeen('col_a')).toBeUndefined();
  });
});
