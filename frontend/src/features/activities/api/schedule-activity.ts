import { queueAction } from '@/lib/offline-queue';

/** scheduleActivity (editor): proposed → scheduled, at `scheduledFor` (ISO 8601, UTC). Through the offline queue. */
export function scheduleActivity(collaborationId: string, activityId: string, scheduledFor: string) {
  return queueAction('scheduleActivity', collaborationId, { activityId, scheduledFor });
}
