import { runAction } from '@/lib/run-action';

/** addRule (owner): the server validates the rule and gives it an id (docs/rules.md). */
export function addRule(collaborationId: string, rule: Record<string, unknown>) {
  return runAction('addRule', { collaborationId, payload: { rule } });
}
