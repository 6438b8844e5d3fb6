import { runAction } from '@/lib/run-action';

/** cancelActivity (editor): proposed or scheduled → cancelled, with an optional reason. */
export function cancelActivity(collaborationId: string, activityId: string, reason?: string) {
  const payload: Record<string, unknown> = { activityId };
  if (reason) payload.reason = reason;
  return runAction('cancelActivity', { collaborationId, payload });
}
