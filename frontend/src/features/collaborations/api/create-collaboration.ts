import { api } from '@/lib/api-client';
import { queryCache } from '@/lib/query-cache';
import type { Collaboration } from '@/types/api';

import { COLLABORATIONS_KEY } from './get-collaborations';

export type CreateCollaborationInput = { title: string; description?: string };

/** POST /api/collaborations → 201 with the new collaboration. */
export async function createCollaboration(input: CreateCollaborationInput): Promise<Collaboration> {
  const body: CreateCollaborationInput = { title: input.title };
  if (input.description) body.description = input.description;
  const data = await api.post<Collaboration | { collaboration: Collaboration }>('/api/collaborations', body);
  const collaboration = 'collaboration' in data && data.collaboration ? data.collaboration : (data as Collaboration);
  queryCache.setData<Collaboration[]>(COLLABORATIONS_KEY, (list) =>
    list && !list.some((c) => c.id === collaboration.id) ? [collaboration, ...list] : list,
  );
  queryCache.invalidate(COLLABORATIONS_KEY);
  return collaboration;
}
