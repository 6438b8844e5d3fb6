// Reads, for the collaborations I visited, which messages came since my last visit
// (GET /api/collaborations/{id}/messages?after=<last seen>), into the unread store.

import { api, unwrapList } from '@/lib/api-client';
import { unreadStore } from '@/stores/unread';
import type { Collaboration, Message } from '@/types/api';

/** At most this many collaborations are read per refresh (the most recently active ones). */
export const UNREAD_READS = 20;
const LIMIT = 100;

export function fromSomeoneElse(message: Message, me: string): boolean {
  return !(message.author?.type === 'user' && message.author.id === me);
}

/** Collaborations read once already in this tab: a live one is then kept exact by its events. */
const readOnce = new Set<string>();

/**
 * `isLive(id)`: its subscription is synced, so every new message (and, after a reconnection, every
 * one missed) arrives as message_created: after a first read it needs no more.
 */
export async function refreshUnread(collaborations: readonly Collaboration[], me: string, isLive: (id: string) => boolean = () => false): Promise<void> {
  const visited = collaborations
    .filter((c) => unreadStore.lastSeen(c.id) !== undefined && unreadStore.viewing() !== c.id)
    .filter((c) => !(readOnce.has(c.id) && isLive(c.id)))
    .sort((a, b) => (b.lastActivityAt ?? '').localeCompare(a.lastActivityAt ?? ''))
    .slice(0, UNREAD_READS);
  await Promise.all(
    visited.map(async (collaboration) => {
      const after = unreadStore.lastSeen(collaboration.id);
      try {
        const data = await api.get<unknown>(`/api/collaborations/${encodeURIComponent(collaboration.id)}/messages`, {
          params: { after: after || undefined, limit: LIMIT },
        });
        const ids = unwrapList<Message>(data, 'messages')
          .filter((m) => fromSomeoneElse(m, me))
          .map((m) => m.id);
        if (unreadStore.viewing() !== collaboration.id) unreadStore.set(collaboration.id, ids);
        readOnce.add(collaboration.id);
      } catch {
        // the next refresh tries again; the live events still count
      }
    }),
  );
}
