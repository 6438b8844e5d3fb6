import { runAction } from '@/lib/run-action';
import type { Rule } from '@/types/api';

/** updateRule (owner): replace the rule with the same id (here: to enable or disable it). */
export function updateRule(collaborationId: string, rule: Rule) {
  return runAction('updateRule', { collaborationId, payload: { rule } });
}
