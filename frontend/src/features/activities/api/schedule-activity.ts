import { runAction } from '@/lib/run-action';

/** scheduleActivity (editor): proposed → scheduled, at `scheduledFor` (ISO 8601, UTC). */
export function scheduleActivity(collaborationId: string, activityId: string, scheduledFor: string) {
  return runAction('scheduleActivity', { collaborationId, payload: { activityId, scheduledFor } });
}
