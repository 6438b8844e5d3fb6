import { ErrorMessage } from '@/components/ui/error-message';
import { Spinner } from '@/components/ui/spinner';
import { useCollaborationViews, useSubscriptions } from '@/lib/realtime/use-realtime';

import { usePendingApprovals } from '../api/get-approvals';

import { ApprovalCard } from './approval-card';

const INBOX_SUBSCRIPTION_CAP = 20;

/** Pending approvals of the collaborations I own, live. */
export function ApprovalsInbox() {
  const { data, error, loading, refetch } = usePendingApprovals();
  const approvals = data ?? [];
  const collaborationIds = [...new Set(approvals.map((a) => a.collaborationId))];
  // Their live copies name the activities and members of each approval (and keep approval events
  // coming for collaborations past the shell's cap). A few at most: the server allows 100 in all.
  useSubscriptions(collaborationIds.slice(0, INBOX_SUBSCRIPTION_CAP));
  const views = useCollaborationViews(collaborationIds);

  return (
    <section className="stack" aria-labelledby="approvals-heading">
      <h1 id="approvals-heading">Approvals</h1>
      <p className="muted">Actions proposed by the AI assistant or required by your rules wait here for an owner's decision.</p>
      {!data && loading && <Spinner label="Loading approvals…" />}
      {error !== null && !data && (
        <div className="stack">
          <ErrorMessage error={error} />
          <button type="button" className="button" onClick={() => void refetch()}>
            Try again
          </button>
        </div>
      )}
      {data && approvals.length === 0 && <p className="empty">Nothing is waiting for your approval.</p>}
      {approvals.length > 0 && (
        <ul className="approval-list" aria-label="Pending approvals">
          {approvals.map((approval) => (
            <ApprovalCard
              key={approval.id}
              approval={approval}
              collaboration={views[approval.collaborationId]?.collaboration ?? null}
            />
          ))}
        </ul>
      )}
    </section>
  );
}
