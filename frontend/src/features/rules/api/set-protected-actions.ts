import { runAction } from '@/lib/run-action';

/** setProtectedActions (owner): which of the AI's actions wait for an owner's approval. */
export function setProtectedActions(collaborationId: string, actions: string[]) {
  return runAction('setProtectedActions', { collaborationId, payload: { actions: [...actions].sort() } });
}
