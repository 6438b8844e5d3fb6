import { offlineQueue, useUnsentCount } from '@/lib/offline-queue';
import { useConnectionState, useRealtimeClient } from '@/lib/realtime/use-realtime';
import type { ConnectionState } from '@/lib/realtime/realtime-client';

const LABELS: Record<ConnectionState, string> = {
  live: 'Live',
  connecting: 'Connecting…',
  reconnecting: 'Reconnecting…',
  resyncing: 'Resyncing…',
  offline: 'Offline',
};

const HINTS: Record<ConnectionState, string> = {
  live: 'Changes appear as they happen.',
  connecting: 'Connecting to live updates.',
  reconnecting: 'The connection dropped; trying again.',
  resyncing: 'Catching up on changes made meanwhile.',
  offline: 'Not connected: changes made elsewhere will appear when the connection is back.',
};

export function ConnectionStatus() {
  const state = useConnectionState();
  const client = useRealtimeClient();
  const unsent = useUnsentCount();
  return (
    <div className={`connection connection-${state}`} data-testid="connection-state" data-state={state}>
      <span className="connection-dot" aria-hidden="true" />
      <span role="status" aria-live="polite" title={HINTS[state]}>
        <span className="visually-hidden">Connection: </span>
        {LABELS[state]}
      </span>
      {unsent > 0 && (
        <span className="small queued-count" data-testid="unsent-count" title="Made here and sent once the connection is back">
          {unsent} unsent
        </span>
      )}
      {(state === 'reconnecting' || state === 'offline') && (
        <button
          type="button"
          className="button link small"
          onClick={() => {
            client.reconnectNow();
            void offlineQueue.flush();
          }}
        >
          Retry now
        </button>
      )}
    </div>
  );
}
