import { Link, Navigate, NavLink, Outlet, useLocation } from 'react-router';

import { ConnectionStatus } from '@/components/connection-status';
import { ApprovalsBadge } from '@/features/approvals/components/approvals-badge';
import { useCollaborations } from '@/features/collaborations/api/get-collaborations';
import { RunCheckinButton } from '@/features/dev-tools/components/run-checkin-button';
import { useAuth } from '@/lib/auth/auth-context';
import { queryCache } from '@/lib/query-cache';
import { RealtimeProvider } from '@/lib/realtime/realtime-provider';
import { useRealtimeEvent, useSubscriptions } from '@/lib/realtime/use-realtime';

import { shellSubscriptions } from './subscription-policy';

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
  useRealtimeEvent((event) => {
    if (event.type === 'membership_removed') queryCache.invalidate('collaborations');
  });

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
    </div>
  );
}
