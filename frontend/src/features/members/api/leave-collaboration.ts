import { runAction } from '@/lib/run-action';

/** leaveCollaboration (any member but the last owner). */
export function leaveCollaboration(collaborationId: string) {
  return runAction('leaveCollaboration', { collaborationId });
}
