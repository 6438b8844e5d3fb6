import { useState } from 'react';

import { ErrorMessage } from '@/components/ui/error-message';
import { useMutation } from '@/hooks/use-mutation';
import { announceOutcome } from '@/lib/run-action';
import type { Collaboration, Message, Role, Suggestion } from '@/types/api';
import { describeAction } from '@/utils/describe-action';
import { canRun, missingRole } from '@/utils/roles';

import { runSuggestion } from '../api/run-suggestion';

type Props = { collaboration: Collaboration; role: Role | null };

/**
 * The suggestions kept on the AI's answer `message`, under it in the feed of every member: each
 * with Run when this member's role may run it, else the role it needs.
 */
export function AiAnswerSuggestions({ message, ...props }: Props & { message: Message }) {
  const suggestions = suggestionsOf(message);
  if (suggestions.length === 0) return null;
  return <SuggestionList suggestions={suggestions} {...props} />;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The well-formed suggestions of an AI message (only the AI's answers carry them). */
export function suggestionsOf(message: Message): Suggestion[] {
  if (message.author?.type !== 'ai' || !Array.isArray(message.suggestions)) return [];
  return message.suggestions.filter(
    (s): s is Suggestion => isObject(s) && typeof s.action === 'string' && (s.payload === undefined || isObject(s.payload)),
  );
}

/** Suggested actions: each runs as me, so Run is offered only to a role that may run it. */
export function SuggestionList({ suggestions, collaboration, role }: Props & { suggestions: Suggestion[] }) {
  return (
    <ul className="suggestions" aria-label="Suggested actions">
      {suggestions.map((suggestion, index) => (
        <SuggestionItem key={index} collaboration={collaboration} suggestion={suggestion} role={role} />
      ))}
    </ul>
  );
}

function SuggestionItem({ collaboration, suggestion, role }: Props & { suggestion: Suggestion }) {
  const [result, setResult] = useState<'done' | 'pending_approval' | null>(null);
  const run = useMutation(async () => {
    const outcome = await runSuggestion(collaboration.id, suggestion);
    announceOutcome(outcome, 'Done.');
    setResult(outcome.kind === 'applied' ? 'done' : 'pending_approval');
  });
  const text = describeAction(suggestion.action, suggestion.payload ?? {}, collaboration);
  const allowed = canRun(role, suggestion.action);
  const missing = missingRole(role, suggestion.action);

  return (
    <li className="suggestion stack tight">
      <p>
        <strong>{text}</strong>
      </p>
      {suggestion.reason && <p className="small muted">Why: {suggestion.reason}</p>}
      {run.error !== null && <ErrorMessage error={run.error} onDismiss={run.reset} />}
      <div className="row">
        {result === 'done' && <span className="badge success">Done</span>}
        {result === 'pending_approval' && <span className="badge muted">Sent to the owner for approval</span>}
        {result === null && allowed && (
          <button type="button" className="button small primary" disabled={run.pending} onClick={() => void run.run()} aria-label={`Run: ${text}`}>
            Run
          </button>
        )}
        {result === null && !allowed && (
          <span className="badge muted" title={missing ? `Only an ${missing} or above can run this.` : 'This action cannot be run from here.'}>
            {missing ? `Needs ${missing}` : 'Not available'}
          </span>
        )}
      </div>
    </li>
  );
}
