import { runAction } from '@/lib/run-action';

/** removeMember (owner). */
export function removeMember(collaborationId: string, userId: string) {
  return runAction('removeMember', { collaborationId, payload: { userId } });
}
