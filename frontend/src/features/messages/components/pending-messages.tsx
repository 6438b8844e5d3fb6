import { QueuedActionStatus } from '@/components/queued-action-status';
import { useQueuedActions } from '@/lib/offline-queue';

const NAMES = ['sendMessage'] as const;

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
      {entries.map((entry) => {
        const text = typeof entry.payload.text === 'string' ? entry.payload.text : '';
        return (
          <li key={entry.key} className={`message from-me queued queued-${entry.status}`} data-testid="pending-message" data-queue-key={entry.key}>
            <div className="message-meta small">
              <span className="message-author">You</span>
              <QueuedActionStatus entry={entry} label={`the message “${excerpt(text)}”`} />
            </div>
            <p className="message-text">{text}</p>
          </li>
        );
      })}
    </>
  );
}
