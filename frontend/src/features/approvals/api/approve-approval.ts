import { api } from '@/lib/api-client';
import { queryCache } from '@/lib/query-cache';
import type { Approval } from '@/types/api';

import { mergeApproval, PENDING_APPROVALS_KEY } from './get-approvals';

/** POST /api/approvals/{id}/approve: carry the action out (owner). */
export async function approveApproval(id: string): Promise<Approval | null> {
  const data = await api.post<{ approval?: Approval } | Approval | null>(`/api/approvals/${encodeURIComponent(id)}/approve`);
  const approval = data && 'approval' in data && data.approval ? data.approval : (data as Approval | null);
  queryCache.setData<Approval[]>(PENDING_APPROVALS_KEY, (list) =>
    approval?.id ? mergeApproval(list, approval) : list?.filter((item) => item.id !== id),
  );
  return approval;
}
