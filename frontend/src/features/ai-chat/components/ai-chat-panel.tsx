import { useState, type FormEvent } from 'react';

import { ErrorMessage } from '@/components/ui/error-message';
import { useMutation } from '@/hooks/use-mutation';
import { announceOutcome } from '@/lib/run-action';
import type { Collaboration, Role, Suggestion } from '@/types/api';
import { describeAction } from '@/utils/describe-action';
import { canRun, missingRole } from '@/utils/roles';

import { runSuggestion } from '../api/run-suggestion';
import { sendAiChat } from '../api/send-ai-chat';

type Turn = { id: number; question: string; reply: string | null; held: boolean; suggestions: Suggestion[] };

/** Ask the AI; its suggestions run as me, so each offers Run only to a role that may run that action. */
type Props = {
  collaboration: Collaboration;
  role: Role | null;
  /** The longest question the server takes (GET /api/config `maxMessageChars`). */
  maxChars: number;
};

export function AiChatPanel({ collaboration, role, maxChars }: Props) {
  const [question, setQuestion] = useState('');
  const [turns, setTurns] = useState<Turn[]>([]);
  const ask = useMutation(async (text: string) => {
    const answer = await sendAiChat(collaboration.id, text);
    setTurns((current) => [
      ...current,
      {
        id: Date.now(),
        question: text,
        reply: answer.reply?.text ?? null,
        held: answer.reply === null && answer.approval !== null,
        suggestions: answer.suggestions,
      },
    ]);
    setQuestion('');
  });

  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (question.trim()) void ask.run(question.trim());
  };

  return (
    <section className="card stack ai-panel" aria-labelledby="ai-heading">
      <h2 id="ai-heading">
        AI assistant <span className="badge ai">AI</span>
      </h2>
      <p className="muted small">Ask for ideas or a plan. Its answer is posted to the messages; suggested actions run only when you press Run.</p>
      {turns.length > 0 && (
        <ol className="ai-turns" aria-label="AI conversation">
          {turns.map((turn) => (
            <li key={turn.id} className="ai-turn stack tight">
              <p className="small">
                <span className="muted">You asked:</span> {turn.question}
              </p>
              {turn.reply && <p className="ai-reply">{turn.reply}</p>}
              {turn.held && (
                <p className="small muted">
                  The AI&apos;s answer waits for an owner&apos;s approval: it is posted to the messages once approved.
                </p>
              )}
              {turn.suggestions.length > 0 && (
                <ul className="suggestions" aria-label="Suggested actions">
                  {turn.suggestions.map((suggestion, index) => (
                    <SuggestionItem
                      key={index}
                      collaboration={collaboration}
                      suggestion={suggestion}
                      role={role}
                    />
                  ))}
                </ul>
              )}
            </li>
          ))}
        </ol>
      )}
      <form className="stack tight" onSubmit={submit} aria-label="Ask the AI assistant">
        <label className="field">
          <span>Question for the AI</span>
          <textarea value={question} onChange={(e) => setQuestion(e.target.value)} rows={2} maxLength={maxChars} placeholder="What should we plan next?" />
        </label>
        {ask.error !== null && <ErrorMessage error={ask.error} onDismiss={ask.reset} />}
        <div className="row">
          <button type="submit" className="button primary" disabled={ask.pending || !question.trim()}>
            {ask.pending ? 'Thinking…' : 'Ask'}
          </button>
        </div>
      </form>
    </section>
  );
}

type SuggestionProps = { collaboration: Collaboration; suggestion: Suggestion; role: Role | null };

function SuggestionItem({ collaboration, suggestion, role }: SuggestionProps) {
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
