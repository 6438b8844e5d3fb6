import { Link } from 'react-router';

import { ErrorMessage } from '@/components/ui/error-message';
import { Spinner } from '@/components/ui/spinner';
import { useCollaborationViews } from '@/lib/realtime/use-realtime';
import { useUnreadCount } from '@/stores/unread';
import type { Collaboration } from '@/types/api';
import { formatRelative } from '@/utils/format';
import { myRole, roleLabel } from '@/utils/roles';

import { useCollaborations } from '../api/get-collaborations';

/** My collaborations; each one's live copy (kept by the app's subscriptions) wins over the fetched one. */
export function CollaborationsList({ userId }: { userId: string }) {
  const { data, error, loading, refetch } = useCollaborations();
  const listed = data ?? [];
  const views = useCollaborationViews(listed.map((c) => c.id));

  if (!data && loading) return <Spinner label="Loading your collaborations…" />;
  if (!data && error) {
    return (
      <div className="stack">
        <ErrorMessage error={error} />
        <button type="button" className="button" onClick={() => void refetch()}>
          Try again
        </button>
      </div>
    );
  }

  const items = listed
    .map((fetched): Collaboration => views[fetched.id]?.collaboration ?? fetched)
    .filter((c) => views[c.id]?.status !== 'removed' && views[c.id]?.status !== 'not_found')
    .sort((a, b) => (b.lastActivityAt ?? '').localeCompare(a.lastActivityAt ?? ''));

  if (items.length === 0) {
    return <p className="empty">You are not in any collaboration yet. Create one to get started.</p>;
  }

  return (
    <ul className="collaboration-list" aria-label="My collaborations">
      {items.map((collaboration) => {
        const role = myRole(collaboration, userId);
        const open = collaboration.activities?.filter((a) => a.status === 'proposed' || a.status === 'scheduled').length ?? 0;
        return (
          <li key={collaboration.id} className="card collaboration-item">
            <Link to={`/collaborations/${collaboration.id}`} className="collaboration-link">
              {collaboration.title}
            </Link>
            <UnreadBadge collaborationId={collaboration.id} />
            {collaboration.status === 'archived' && <span className="badge muted">Archived</span>}
            {collaboration.description && <p className="muted clamp">{collaboration.description}</p>}
            <p className="meta">
              {role && <span className={`badge role-${role}`}>{roleLabel(role)}</span>}
              <span>{collaboration.members?.length ?? 0} members</span>
              <span>{open} open activities</span>
              <span>active {formatRelative(collaboration.lastActivityAt)}</span>
            </p>
          </li>
        );
      })}
    </ul>
  );
}

/** "3 new": messages from others since my last visit. */
function UnreadBadge({ collaborationId }: { collaborationId: string }) {
  const count = useUnreadCount(collaborationId);
  if (count === 0) return null;
  const shown = count > 99 ? '99+' : String(count);
  return (
    <span className="badge unread" data-testid="unread" aria-label={`${shown} new ${count === 1 ? 'message' : 'messages'}`}>
      {shown} new
    </span>
  );
}
