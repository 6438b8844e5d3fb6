import { runAction } from '@/lib/run-action';

/** completeActivity (editor): scheduled → done. */
export function completeActivity(collaborationId: string, activityId: string) {
  return runAction('completeActivity', { collaborationId, payload: { activityId } });
}
