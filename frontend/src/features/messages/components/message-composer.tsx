import { useState, type FormEvent, type KeyboardEvent } from 'react';

import { ErrorMessage } from '@/components/ui/error-message';
import { useMutation } from '@/hooks/use-mutation';
import { firstAnswer } from '@/lib/offline-queue';
import { announceOutcome } from '@/lib/run-action';

import { sendMessage } from '../api/send-message';

/** `maxChars`: the server's limit (GET /api/config `maxMessageChars`). */
export function MessageComposer({ collaborationId, maxChars }: { collaborationId: string; maxChars: number }) {
  const [text, setText] = useState('');
  // Through the offline queue: cleared once the server has it, or at once when there is no connection
  // (then it shows as pending in the feed and is sent later). A refusal shows here, the text kept.
  const send = useMutation(async (value: string) => {
    const submitted = await sendMessage(collaborationId, value);
    const answer = await firstAnswer(submitted);
    setText('');
    if (answer) announceOutcome(answer);
    else void submitted.outcome.then((outcome) => announceOutcome(outcome ?? undefined));
  });
  const trimmed = text.trim();
  // Counted in code points, as the server counts (an emoji is one character, not two UTF-16 units).
  const length = [...trimmed].length;
  const tooLong = length > maxChars;

  const submit = (event?: FormEvent) => {
    event?.preventDefault();
    if (trimmed && !tooLong && !send.pending) void send.run(trimmed);
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
        <span className={`small ${tooLong ? 'danger-text' : 'muted'}`}>
          {tooLong ? `Too long: ${length}/${maxChars} characters` : ''}
        </span>
        <button type="submit" className="button primary" disabled={!trimmed || tooLong || send.pending}>
          {send.pending ? 'Sending…' : 'Send'}
        </button>
      </div>
    </form>
  );
}
