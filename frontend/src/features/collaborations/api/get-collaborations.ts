import { useQuery } from '@/hooks/use-query';
import { api, unwrapList } from '@/lib/api-client';
import type { Collaboration } from '@/types/api';

export const COLLABORATIONS_KEY = 'collaborations';

/** GET /api/collaborations: mine, newest activity first. */
export async function getCollaborations(): Promise<Collaboration[]> {
  return unwrapList<Collaboration>(await api.get<unknown>('/api/collaborations'), 'collaborations');
}

/**
 * My collaborations. Polled, because nothing is pushed to me when someone
 * else adds me to a collaboration; changes to the ones I already belong to
 * come live through their subscriptions.
 */
export function useCollaborations() {
  return useQuery(COLLABORATIONS_KEY, getCollaborations, { pollInterval: 10_000 });
}
