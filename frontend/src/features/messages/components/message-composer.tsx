import { useState, type FormEvent, type KeyboardEvent } from 'react';

import { ErrorMessage } from '@/components/ui/error-message';
import { useMutation } from '@/hooks/use-mutation';
import { announceOutcome } from '@/lib/run-action';

import { sendMessage } from '../api/send-message';

const MAX_CHARS = 4000;

export function MessageComposer({ collaborationId }: { collaborationId: string }) {
  const [text, setText] = useState('');
  const send = useMutation(async (value: string) => {
    announceOutcome(await sendMessage(collaborationId, value));
    setText('');
  });
  const trimmed = text.trim();

  const submit = (event?: FormEvent) => {
    event?.preventDefault();
    if (trimmed && trimmed.length <= MAX_CHARS && !send.pending) void send.run(trimmed);
  };

  const onKeyDown = (event: KeyboardEvent<HTMLTextAreaElement>) => {
    if (event.key === 'Enter' && !event.shiftKey) {
      event.preventDefault();
      submit();
    }
  };

  return (
    <form className="composer stack tight" onSubmit={submit} aria-label="Send a message">
      <label className="field">
        <span className="visually-hidden">New message</span>
        <textarea
          value={text}
          onChange={(e) => setText(e.target.value)}
          onKeyDown={onKeyDown}
          rows={2}
          placeholder="Write a message… (Enter to send, Shift+Enter for a new line)"
        />
      </label>
      {send.error !== null && <ErrorMessage error={send.error} onDismiss={send.reset} />}
      <div className="row spread">
        <span className={`small ${trimmed.length > MAX_CHARS ? 'danger-text' : 'muted'}`}>
          {trimmed.length > MAX_CHARS ? `Too long: ${trimmed.length}/${MAX_CHARS} characters` : ''}
        </span>
        <button type="submit" className="button primary" disabled={!trimmed || trimmed.length > MAX_CHARS || send.pending}>
          {send.pending ? 'Sending…' : 'Send'}
        </button>
      </div>
    </form>
  );
}
