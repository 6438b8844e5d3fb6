import { runAction } from '@/lib/run-action';
import type { Suggestion } from '@/types/api';

/** Run an AI suggestion as myself: the same action endpoint, with my permissions. */
export function runSuggestion(collaborationId: string, suggestion: Suggestion) {
  return runAction(suggestion.action, { collaborationId, payload: suggestion.payload ?? {} });
}
