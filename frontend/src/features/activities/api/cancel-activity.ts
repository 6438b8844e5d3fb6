import { queueAction } from '@/lib/offline-queue';

/** cancelActivity (editor): proposed or scheduled → cancelled, with an optional reason. Through the offline queue. */
export function cancelActivity(collaborationId: string, activityId: string, reason?: string) {
  const payload: Record<string, unknown> = { activityId };
  if (reason) payload.reason = reason;
  return queueAction('cancelActivity', collaborationId, payload);
}
