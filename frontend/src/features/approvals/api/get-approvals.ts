import { useQuery } from '@/hooks/use-query';
import { api, unwrapList } from '@/lib/api-client';
import { queryCache } from '@/lib/query-cache';
import { useRealtimeEvent } from '@/lib/realtime/use-realtime';
import type { Approval } from '@/types/api';

export const PENDING_APPROVALS_KEY = 'approvals:pending';

/** GET /api/approvals?status=pending: approvals waiting in collaborations I own. */
export async function getPendingApprovals(): Promise<Approval[]> {
  const data = await api.get<unknown>('/api/approvals', { params: { status: 'pending' } });
  return unwrapList<Approval>(data, 'approvals');
}

/** Put a changed approval into the pending list (or take it out once decided). */
export function mergeApproval(list: Approval[] | undefined, approval: Approval): Approval[] | undefined {
  if (!list) return list;
  const others = list.filter((item) => item.id !== approval.id);
  if (approval.status !== 'pending') return others.length === list.length ? list : others;
  return [...others, approval].sort((a, b) => (a.createdAt < b.createdAt ? -1 : a.createdAt > b.createdAt ? 1 : 0));
}

/** My pending approvals, kept live by `approval_created` / `approval_updated` events. */
export function usePendingApprovals() {
  const query = useQuery(PENDING_APPROVALS_KEY, getPendingApprovals, { pollInterval: 30_000 });
  useRealtimeEvent((event) => {
    if (event.type === 'approval_created' || event.type === 'approval_updated') {
      queryCache.setData<Approval[]>(PENDING_APPROVALS_KEY, (list) => mergeApproval(list, event.approval));
    } else if (event.type === 'membership_removed') {
      queryCache.setData<Approval[]>(PENDING_APPROVALS_KEY, (list) =>
        list?.filter((approval) => approval.collaborationId !== event.collaborationId),
      );
    }
  });
  return query;
}
