import { useEffect, useRef, useState } from 'react';
import { Link, Navigate, NavLink, Outlet, useLocation } from 'react-router';

import { ConnectionStatus } from '@/components/connection-status';
import { ApprovalsBadge } from '@/features/approvals/components/approvals-badge';
import { useCollaborations } from '@/features/collaborations/api/get-collaborations';
import { RunCheckinButton } from '@/features/dev-tools/components/run-checkin-button';
import { useAuth } from '@/lib/auth/auth-context';
import { useOfflineQueue } from '@/lib/offline-queue';
import { queryCache } from '@/lib/query-cache';
import { RealtimeProvider } from '@/lib/realtime/realtime-provider';
import { useRealtimeClient, useRealtimeEvent, useSubscriptions } from '@/lib/realtime/use-realtime';
import { notifications } from '@/stores/notifications';
import { unreadStore, useUnreadTotal } from '@/stores/unread';

import { describeLiveEvent } from './live-notices';
import { shellSubscriptions } from './subscription-policy';
import { fromSomeoneElse, refreshUnread } from './unread-sync';

/** At most this many toasts for what happened while the tab was hidden; the rest are counted. */
const MAX_TOASTS = 5;

/** The signed-in shell: header, one realtime client, and the subscriptions the approvals need (subscription-policy.ts). */
export function AppLayout() {
  const { session, service } = useAuth();
  const location = useLocation();
  if (!session) {
    const next = location.pathname + location.search;
    return <Navigate to={next === '/' ? '/sign-in' : `/sign-in?next=${encodeURIComponent(next)}`} replace />;
  }
  return (
    <RealtimeProvider key={session.user.id} tokens={service}>
      <Shell />
    </RealtimeProvider>
  );
}

function Shell() {
  const { config, session, service } = useAuth();
  const collaborations = useCollaborations();
  // Not every collaboration of mine (the server takes at most 100 per connection): the ones I own,
  // capped, because approval events reach only subscribed owners. Pages subscribe to what they show.
  useSubscriptions(shellSubscriptions(collaborations.data, session?.user.id ?? ''));
  const client = useRealtimeClient();
  const me = session?.user.id ?? '';
  unreadStore.start(me);
  // My actions made offline (or whose answer was lost): sent in order once the connection is back.
  useOfflineQueue(me, client);
  const [announcement, setAnnouncement] = useState('');
  const missed = useRef<string[]>([]);
  // The collaboration whose page is open (in a visible tab or not): its notices need not say where.
  const location = useLocation();
  const openPage = /^\/collaborations\/([^/]+)/.exec(location.pathname)?.[1];
  const open = useRef<string | null>(null);
  open.current = openPage ? decodeURIComponent(openPage) : null;

  useRealtimeEvent((event) => {
    if (event.type === 'membership_removed') queryCache.invalidate('collaborations');
    if (event.type === 'message_created' && fromSomeoneElse(event.message, me)) {
      const here = unreadStore.viewing() === event.collaborationId && document.visibilityState !== 'hidden';
      if (here) unreadStore.markSeen(event.collaborationId, event.message.id);
      else unreadStore.add(event.collaborationId, event.message.id);
    }
    if (!('collaborationId' in event) || !event.collaborationId) return;
    const notice = describeLiveEvent(event, client.getView(event.collaborationId).collaboration, me, open.current === event.collaborationId);
    if (!notice) return;
    // Told to screen readers politely: new messages and approvals.
    if (notice.kind !== 'change') setAnnouncement(notice.text);
    // What someone else did while I was away from the tab: a toast each when I come back.
    if (document.visibilityState === 'hidden') missed.current.push(notice.text);
  });

  useEffect(() => {
    const onVisibility = () => {
      if (document.visibilityState === 'hidden' || missed.current.length === 0) return;
      const texts = missed.current;
      missed.current = [];
      for (const text of texts.slice(0, MAX_TOASTS)) notifications.show(text, 'info', 15_000);
      if (texts.length > MAX_TOASTS) notifications.show(`…and ${texts.length - MAX_TOASTS} more changes while you were away.`, 'info', 15_000);
    };
    document.addEventListener('visibilitychange', onVisibility);
    return () => document.removeEventListener('visibilitychange', onVisibility);
  }, []);

  // Unread messages since my last visit: read for the collaborations I visited, at every poll of the list.
  useEffect(() => {
    if (collaborations.data) void refreshUnread(collaborations.data, me, (id) => client.getView(id).status === 'synced');
  }, [collaborations.data, me, client]);
  const unread = useUnreadTotal();
  useEffect(() => {
    document.title = unread > 0 ? `(${unread}) Tandem` : 'Tandem';
  }, [unread]);

  return (
    <div className="app">
      <header className="topbar">
        <Link to="/" className="brand" aria-label="Tandem home">
          <span className="brand-mark" aria-hidden="true" />
          Tandem
        </Link>
        <nav aria-label="Main" className="nav">
          <NavLink to="/" end>
            Collaborations
          </NavLink>
          <NavLink to="/approvals">
            Approvals <ApprovalsBadge />
          </NavLink>
        </nav>
        <div className="topbar-right">
          {config.authMode === 'dev' && <RunCheckinButton />}
          <ConnectionStatus />
          <span className="user" title={session?.user.id}>
            {session?.user.email ?? session?.user.id}
          </span>
          <button type="button" className="button small" onClick={() => void service.signOut()}>
            Sign out
          </button>
        </div>
      </header>
      <main className="content">
        <Outlet />
      </main>
      <div className="visually-hidden" role="status" aria-live="polite" aria-atomic="true" data-testid="live-announcer">
        {announcement}
      </div>
    </div>
  );
}
