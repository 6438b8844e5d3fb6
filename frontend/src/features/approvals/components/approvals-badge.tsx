import { usePendingApprovals } from '../api/get-approvals';

/** The number of pending approvals, for the navigation. */
export function ApprovalsBadge() {
  const { data } = usePendingApprovals();
  const count = data?.length ?? 0;
  if (count === 0) return null;
  return (
    <span className="badge count-badge" aria-label={`${count} pending`}>
      {count}
    </span>
  );
}
