// React's view of the realtime client: small hooks over subscribe/watch.

import { useCallback, useContext, useEffect, useRef, useSyncExternalStore } from 'react';

import type { CollaborationView, ConnectionState, RealtimeClient, RealtimeEvent } from './realtime-client';
import { RealtimeContext } from './realtime-context';

export function useRealtimeClient(): RealtimeClient {
  const client = useContext(RealtimeContext);
  if (!client) throw new Error('useRealtimeClient needs a <RealtimeProvider>');
  return client;
}

/** Subscribe to one collaboration while the component is mounted; its live view. */
export function useCollaborationSubscription(collaborationId: string): CollaborationView {
  const client = useRealtimeClient();
  useEffect(() => client.subscribe(collaborationId), [client, collaborationId]);
  const watch = useCallback((listener: () => void) => client.watch(collaborationId, listener), [client, collaborationId]);
  return useSyncExternalStore(watch, () => client.getView(collaborationId));
}

/** Keep several collaborations subscribed (e.g. all of mine, for live lists and approvals). */
export function useSubscriptions(collaborationIds: readonly string[]): void {
  const client = useRealtimeClient();
  const key = [...collaborationIds].sort().join(',');
  useEffect(() => {
    if (!key) return undefined;
    const releases = key.split(',').map((id) => client.subscribe(id));
    return () => releases.forEach((release) => release());
  }, [client, key]);
}

/** The views of several collaborations (no subscription of their own). */
export function useCollaborationViews(collaborationIds: readonly string[]): Record<string, CollaborationView> {
  const client = useRealtimeClient();
  const cache = useRef<{ views: Record<string, CollaborationView> }>({ views: {} });
  const read = () => {
    const views: Record<string, CollaborationView> = {};
    let same = Object.keys(cache.current.views).length === collaborationIds.length;
    for (const id of collaborationIds) {
      views[id] = client.getView(id);
      if (cache.current.views[id] !== views[id]) same = false;
    }
    if (!same) cache.current = { views };
    return cache.current.views;
  };
  const key = collaborationIds.join(',');
  const subscribe = useCallback(
    (listener: () => void) => {
      const stops = key ? key.split(',').map((id) => client.watch(id, listener)) : [];
      return () => stops.forEach((stop) => stop());
    },
    [client, key],
  );
  return useSyncExternalStore(subscribe, read);
}

export function useConnectionState(): ConnectionState {
  const client = useRealtimeClient();
  const watch = useCallback((listener: () => void) => client.onStateChange(listener), [client]);
  return useSyncExternalStore(watch, () => client.getState());
}

/** Call `handler` for every realtime event (the latest handler, without resubscribing). */
export function useRealtimeEvent(handler: (event: RealtimeEvent) => void): void {
  const client = useRealtimeClient();
  const latest = useRef(handler);
  useEffect(() => {
    latest.current = handler;
  });
  useEffect(() => client.onEvent((event) => latest.current(event)), [client]);
}

/**
 * Announce my presence in a collaboration while mounted (the collaboration's page). On unmount, or
 * when `collaborationId` changes, the old one is told I am away and the state is not re-sent: the
 * shell may keep that collaboration subscribed after I leave its page. `state` null: not present.
 */
export function usePresence(collaborationId: string, state: Record<string, unknown> | null): void {
  const client = useRealtimeClient();
  const key = state ? JSON.stringify(state) : '';
  // Declared first so that on a change of collaboration the old one is cleared before the new one is set.
  useEffect(() => () => client.clearPresence(collaborationId), [client, collaborationId]);
  useEffect(() => {
    if (key) client.setPresence(collaborationId, JSON.parse(key) as Record<string, unknown>);
    else client.clearPresence(collaborationId);
  }, [client, collaborationId, key]);
}
