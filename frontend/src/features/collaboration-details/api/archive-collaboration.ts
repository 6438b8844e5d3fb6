import { runAction } from '@/lib/run-action';

/** archiveCollaboration (owner). */
export function archiveCollaboration(collaborationId: string) {
  return runAction('archiveCollaboration', { collaborationId });
}
