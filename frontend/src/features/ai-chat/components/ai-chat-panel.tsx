import { useState, type FormEvent } from 'react';

import { ErrorMessage } from '@/components/ui/error-message';
import { useMutation } from '@/hooks/use-mutation';
import type { Collaboration, Role, Suggestion } from '@/types/api';

import { sendAiChat } from '../api/send-ai-chat';

import { SuggestionList } from './ai-suggestions';

/** What became of my last question. */
type Asked =
  | { kind: 'answered'; question: string }
  | { kind: 'held'; question: string; suggestions: Suggestion[] };

type Props = {
  collaboration: Collaboration;
  role: Role | null;
  /** The longest question the server takes (GET /api/config `maxMessageChars`). */
  maxChars: number;
};

/**
 * Ask the AI. The question is posted to the messages as mine and the AI's answer as a reply to
 * it, so everyone sees the conversation in the feed; the suggestions the answer's message keeps
 * show under it there, for every member (each runs them as themselves). An answer that waits for
 * an owner's approval is not in the feed yet: its suggestions show here, for me.
 */
export function AiChatPanel({ collaboration, role, maxChars }: Props) {
  const [question, setQuestion] = useState('');
  const [asked, setAsked] = useState<Asked | null>(null);
  const ask = useMutation(async (text: string) => {
    const answer = await sendAiChat(collaboration.id, text);
    if (answer.reply) {
      setAsked({ kind: 'answered', question: text });
    } else {
      setAsked({ kind: 'held', question: text, suggestions: answer.suggestions });
    }
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
      <p className="muted small">
        Ask for ideas or a plan. Your question and its answer are posted to the messages for everyone; suggested actions run only
        when you press Run.
      </p>
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
      {asked?.kind === 'answered' && (
        <p className="small muted" role="status">
          You asked “{asked.question}”: the answer is in the messages, as a reply to your question.
        </p>
      )}
      {asked?.kind === 'held' && (
        <div className="stack tight" role="status">
          <p className="small muted">
            You asked “{asked.question}”. The AI&apos;s answer waits for an owner&apos;s approval: it is posted to the messages once
            approved.
          </p>
          {asked.suggestions.length > 0 && <SuggestionList suggestions={asked.suggestions} collaboration={collaboration} role={role} />}
        </div>
      )}
    </section>
  );
}
