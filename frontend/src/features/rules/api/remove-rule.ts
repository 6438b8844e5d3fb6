import { runAction } from '@/lib/run-action';

/** removeRule (owner). */
export function removeRule(collaborationId: string, ruleId: string) {
  return runAction('removeRule', { collaborationId, payload: { ruleId } });
}
