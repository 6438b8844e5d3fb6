import { ErrorMessage } from '@/components/ui/error-message';
import { Spinner } from '@/components/ui/spinner';
import { useCollaborationViews } from '@/lib/realtime/use-realtime';

import { usePendingApprovals } from '../api/get-approvals';

import { ApprovalCard } from './approval-card';

/** Pending approvals of the collaborations I own, live. */
export function ApprovalsInbox() {
  const { data, error, loading, refetch } = usePendingApprovals();
  const approvals = data ?? [];
  const views = useCollaborationViews([...new Set(approvals.map((a) => a.collaborationId))]);

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
