import { useEffect, useState, type ReactNode } from 'react';

import { env } from '@/config/env';
import { api, type TokenSource } from '@/lib/api-client';
import type { Collaboration } from '@/types/api';

import { RealtimeClient } from './realtime-client';
import { RealtimeContext } from './realtime-context';

/** ws(s)://<this host>/ws unless VITE_WS_URL says otherwise. */
export function defaultSocketUrl(): string {
  if (env.wsUrl) return env.wsUrl;
  const protocol = window.location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${protocol}//${window.location.host}/ws`;
}

/** One realtime client for the signed-in part of the app (mount it keyed by user id). */
export function RealtimeProvider({ tokens, children }: { tokens: TokenSource; children: ReactNode }) {
  const [client] = useState(
    () =>
      new RealtimeClient({
        url: defaultSocketUrl,
        getToken: (force) => (force ? tokens.refreshAccessToken() : tokens.getAccessToken()),
        // GET /api/collaborations/{id}: something to show while the socket is not up yet.
        fetchCollaboration: (id) => api.get<Collaboration>(`/api/collaborations/${encodeURIComponent(id)}`),
      }),
  );

  useEffect(() => {
    client.start();
    const online = () => client.setNetworkAvailable(true);
    const offline = () => client.setNetworkAvailable(false);
    window.addEventListener('online', online);
    window.addEventListener('offline', offline);
    if (navigator.onLine === false) offline();
    return () => {
      window.removeEventListener('online', online);
      window.removeEventListener('offline', offline);
      client.stop();
    };
  }, [client]);

  return <RealtimeContext.Provider value={client}>{children}</RealtimeContext.Provider>;
}
