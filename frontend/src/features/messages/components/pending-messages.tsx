import { useLayoutEffect, useRef } from 'react';

import { QueuedActionStatus } from '@/components/queued-action-status';
import { useQueuedActions, type QueueEntry } from '@/lib/offline-queue';

const NAMES = ['sendMessage'] as const;

/** How many of my messages to this collaboration are still queued. */
export function usePendingMessageCount(collaborationId: string): number {
  return useQueuedActions(collaborationId, NAMES).length;
}

function excerpt(text: string): string {
  const chars = Array.from(text);
  return chars.length > 40 ? `${chars.slice(0, 39).join('')}…` : text;
}

/**
 * My messages still in the offline queue, at the end of the feed: greyed, "Sending…" or "Waiting for
 * connection", or refused with Retry / Discard. Each one leaves once the server has it (it then
 * arrives as `message_created` like any other).
 */
export function PendingMessageItems({ collaborationId }: { collaborationId: string }) {
  const entries = useQueuedActions(collaborationId, NAMES);
  return (
    <>
      {entries.map((entry) => (
        <PendingMessage key={entry.key} entry={entry} />
      ))}
    </>
  );
}

function PendingMessage({ entry }: { entry: QueueEntry }) {
  const text = typeof entry.payload.text === 'string' ? entry.payload.text : '';
  const ref = useRef<HTMLLIElement>(null);
  // I just wrote it, and it is at the end of the feed: scroll the list (only the list) down to it.
  useLayoutEffect(() => {
    const list = ref.current?.parentElement;
    if (list) list.scrollTop = list.scrollHeight;
  }, []);
  return (
    <li ref={ref} className={`message from-me queued queued-${entry.status}`} data-testid="pending-message" data-queue-key={entry.key}>
      <div className="message-meta small">
        <span className="message-author">You</span>
        <QueuedActionStatus entry={entry} label={`the message “${excerpt(text)}”`} />
      </div>
      <p className="message-text">{text}</p>
    </li>
  );
}
