// Unread messages per collaboration: those from someone else since my last visit.
//
// The last message I saw in each collaboration is kept in localStorage (per user), so "since the
// last visit" survives a reload. The unread ones are kept as ids: the list's reads over HTTP
// (GET …/messages?after=<last seen>) and the live message_created events both add to one set,
// so a message is never counted twice. A collaboration I never opened has no last visit: nothing
// is unread there until I have opened it once.

import { useSyncExternalStore } from 'react';

type Listener = () => void;

const KEY = (userId: string) => `tandem:last-seen:${userId}`;

let userId = '';
let lastSeen: Record<string, string> = {};
let unread: ReadonlyMap<string, ReadonlySet<string>> = new Map();
let viewing: string | null = null;
const listeners = new Set<Listener>();

function publish(): void {
  for (const listener of [...listeners]) listener();
}

function save(): void {
  try {
    localStorage.setItem(KEY(userId), JSON.stringify(lastSeen));
  } catch {
    // storage full or blocked: the counts still work for this tab
  }
}

function setIds(collaborationId: string, ids: ReadonlySet<string>): void {
  const next = new Map(unread);
  if (ids.size === 0) next.delete(collaborationId);
  else next.set(collaborationId, ids);
  unread = next;
  publish();
}

export const unreadStore = {
  /** Start for a signed-in user: read their last visits (called while rendering the shell: it notifies no one). */
  start(user: string): void {
    if (user === userId) return;
    userId = user;
    unread = new Map();
    viewing = null;
    try {
      const raw = JSON.parse(localStorage.getItem(KEY(user)) ?? '{}') as unknown;
      lastSeen = raw && typeof raw === 'object' && !Array.isArray(raw) ? (raw as Record<string, string>) : {};
    } catch {
      lastSeen = {};
    }
  },
  /** Forget the user (tests; a new sign-in reads the storage again). */
  reset(): void {
    userId = '';
    lastSeen = {};
    unread = new Map();
    viewing = null;
  },
  lastSeen: (collaborationId: string): string | undefined => lastSeen[collaborationId],
  /** The collaboration whose page is open in a visible tab (its new messages are seen at once), or null. */
  setViewing(collaborationId: string | null): void {
    viewing = collaborationId;
  },
  viewing: (): string | null => viewing,
  /** I saw everything up to `messageId` (or opened it while it had no messages: '' ). */
  markSeen(collaborationId: string, messageId: string): void {
    const previous = lastSeen[collaborationId];
    if (previous === undefined || messageId > previous) {
      lastSeen = { ...lastSeen, [collaborationId]: messageId };
      save();
    }
    if (unread.has(collaborationId)) setIds(collaborationId, new Set());
  },
  /** A message from someone else arrived live. */
  add(collaborationId: string, messageId: string): void {
    const seen = lastSeen[collaborationId];
    if (seen === undefined || messageId <= seen) return;
    const ids = unread.get(collaborationId) ?? new Set<string>();
    if (ids.has(messageId)) return;
    setIds(collaborationId, new Set([...ids, messageId]));
  },
  /** What GET …/messages?after=<last seen> said: these ids (from others) are unread too. */
  set(collaborationId: string, messageIds: string[]): void {
    const seen = lastSeen[collaborationId];
    if (seen === undefined) return;
    const ids = new Set([...(unread.get(collaborationId) ?? []), ...messageIds].filter((id) => id > seen));
    if (ids.size !== (unread.get(collaborationId)?.size ?? 0)) setIds(collaborationId, ids);
  },
  count: (collaborationId: string): number => unread.get(collaborationId)?.size ?? 0,
  total(): number {
    let n = 0;
    for (const ids of unread.values()) n += ids.size;
    return n;
  },
  subscribe(listener: Listener): () => void {
    listeners.add(listener);
    return () => listeners.delete(listener);
  },
};

export function useUnreadCount(collaborationId: string): number {
  return useSyncExternalStore(unreadStore.subscribe, () => unreadStore.count(collaborationId));
}

export function useUnreadTotal(): number {
  return useSyncExternalStore(unreadStore.subscribe, () => unreadStore.total());
}
