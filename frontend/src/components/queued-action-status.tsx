import { ErrorMessage } from '@/components/ui/error-message';
import { offlineQueue, queuedErrorToApiError, type QueueEntry } from '@/lib/offline-queue';

/**
 * Where a queued action stands (lib/offline-queue): "Sending…", "Waiting for connection", or the
 * server's refusal with Retry and Discard. `label` names the action for the buttons' accessible names.
 */
export function QueuedActionStatus({ entry, label }: { entry: QueueEntry; label: string }) {
  if (entry.status === 'failed') {
    return (
      <div className="queued-failed stack tight" data-queue-status="failed">
        <p className="small">Not sent:</p>
        {entry.error && <ErrorMessage error={queuedErrorToApiError(entry.error)} />}
        <div className="row tight">
          <button type="button" className="button small" aria-label={`Retry ${label}`} onClick={() => void offlineQueue.retry(entry.key)}>
            Retry
          </button>
          <button
            type="button"
            className="button small danger-outline"
            aria-label={`Discard ${label}`}
            onClick={() => void offlineQueue.discard(entry.key)}
          >
            Discard
          </button>
        </div>
      </div>
    );
  }
  return (
    <span className="queued-status small" data-queue-status={entry.status}>
      {entry.status === 'sending' ? 'Sending…' : 'Waiting for connection'}
    </span>
  );
}
