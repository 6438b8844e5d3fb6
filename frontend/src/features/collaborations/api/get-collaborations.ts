import { useQuery } from '@/hooks/use-query';
import { api, unwrapList } from '@/lib/api-client';
import type { Collaboration } from '@/types/api';

export const COLLABORATIONS_KEY = 'collaborations';

/** Pages read at most per poll: 1,000 collaborations at the API's 200 a page. */
export const MAX_COLLABORATION_PAGES = 5;

/**
 * GET /api/collaborations: mine, newest activity first, following `next` while
 * the server says `hasMore` (at most MAX_COLLABORATION_PAGES pages).
 */
export async function getCollaborations(): Promise<Collaboration[]> {
  const all: Collaboration[] = [];
  const seen = new Set<string>();
  let after: string | null = null;
  for (let page = 0; page < MAX_COLLABORATION_PAGES; page += 1) {
    const data: unknown = await api.get<unknown>('/api/collaborations', after ? { params: { after } } : undefined);
    for (const collaboration of unwrapList<Collaboration>(data, 'collaborations')) {
      if (seen.has(collaboration.id)) continue; // one that moved between pages is listed once
      seen.add(collaboration.id);
      all.push(collaboration);
    }
    const record = data && typeof data === 'object' && !Array.isArray(data) ? (data as { hasMore?: unknown; next?: unknown }) : {};
    if (record.hasMore !== true || typeof record.next !== 'string' || !record.next) break;
    after = record.next;
  }
  return all;
}

/**
 * My collaborations. Polled, because nothing is pushed to me when someone
 * else adds me to a collaboration; changes to the ones I already belong to
 * come live through their subscriptions.
 */
export function useCollaborations() {
  return useQuery(COLLABORATIONS_KEY, getCollaborations, { pollInterval: 10_000 });
}
