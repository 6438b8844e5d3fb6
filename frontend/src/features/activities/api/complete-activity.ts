import { queueAction } from '@/lib/offline-queue';

/** completeActivity (editor): scheduled → done. Through the offline queue. */
export function completeActivity(collaborationId: string, activityId: string) {
  return queueAction('completeActivity', collaborationId, { activityId });
}
