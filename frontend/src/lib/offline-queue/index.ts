// The app's one offline queue (offline-queue.ts), kept in IndexedDB, and its React hooks.

import { useEffect, useMemo, useSyncExternalStore } from 'react';

import { newIdempotencyKey } from '@/lib/api-client';
import type { RealtimeClient } from '@/lib/realtime/realtime-client';
import { announceOutcome, runAction } from '@/lib/run-action';
import type { ActionOutcome } from '@/types/api';

import { OfflineQueue, type QueueEntry, type Submitted } from './offline-queue';
import { indexedDbQueueStore, memoryQueueStore } from './queue-store';

export { isTransient, queuedErrorToApiError, type QueueEntry, type QueueEntryStatus, type Settled, type Submitted } from './offline-queue';

/** The actions that go through the queue: shown in place (the feed, the activity) until answered. */
export const QUEUED_ACTIONS = ['sendMessage', 'proposeActivity', 'scheduleActivity', 'completeActivity', 'cancelActivity'] as const;

type LockManagerLike = { request<T>(name: string, fn: () => Promise<T>): Promise<T> };

function webLock<T>(fn: () => Promise<T>): Promise<T> {
  const locks = (globalThis.navigator as { locks?: LockManagerLike } | undefined)?.locks;
  return locks ? locks.request('tandem-offline-queue', fn) : fn();
}

export const offlineQueue = new OfflineQueue({
  store: indexedDbQueueStore() ?? memoryQueueStore(),
  send: (action) =>
    runAction(action.name, { collaborationId: action.collaborationId, payload: action.payload, idempotencyKey: action.key }),
  newKey: newIdempotencyKey,
  // Sent after a reload: nobody waits for the answer, so say it if it went to an owner.
  onUnclaimed: (_action, outcome) => announceOutcome(outcome),
  lock: webLock,
});

/** Queue an action of QUEUED_ACTIONS (stored, then sent in order). */
export function queueAction(name: (typeof QUEUED_ACTIONS)[number], collaborationId: string, payload: Record<string, unknown>) {
  return offlineQueue.submit(name, collaborationId, payload);
}

/**
 * Wait until a submitted action first settles: the answer (returned), a refusal (thrown, so the form
 * shows it and keeps what was typed), or parked for the connection (null; the answer comes later
 * through `submitted.outcome`).
 */
export async function firstAnswer(submitted: Submitted): Promise<ActionOutcome | null> {
  const settled = await submitted.settled;
  if (settled.kind === 'refused') throw settled.error;
  return settled.kind === 'answered' ? settled.outcome : null;
}

/** Signed-in shell: load this user's queue, send it when the browser is online again or the socket is back. */
export function useOfflineQueue(userId: string, client: RealtimeClient): void {
  useEffect(() => {
    void offlineQueue.setUser(userId);
    const changed = () => offlineQueue.networkChanged();
    window.addEventListener('online', changed);
    window.addEventListener('offline', changed);
    const off = client.onStateChange((state) => {
      if (state === 'live') void offlineQueue.flush();
    });
    return () => {
      window.removeEventListener('online', changed);
      window.removeEventListener('offline', changed);
      off();
      void offlineQueue.setUser(null);
    };
  }, [userId, client]);
}

/** How many of my actions wait to be sent (refused ones not counted). */
export function useUnsentCount(): number {
  return useSyncExternalStore(
    (listener) => offlineQueue.subscribe(listener),
    () => offlineQueue.getEntries().filter((entry) => entry.status !== 'failed').length,
  );
}

/** The queued actions of one collaboration (optionally only some actions), oldest first. */
export function useQueuedActions(collaborationId: string, names?: readonly string[]): QueueEntry[] {
  const all = useSyncExternalStore(
    (listener) => offlineQueue.subscribe(listener),
    () => offlineQueue.getEntries(),
  );
  const key = names?.join(',') ?? '';
  return useMemo(
    () => all.filter((entry) => entry.collaborationId === collaborationId && (!key || key.split(',').includes(entry.name))),
    [all, collaborationId, key],
  );
}
