import { ErrorMessage } from '@/components/ui/error-message';
import { useMutation } from '@/hooks/use-mutation';
import { notifications } from '@/stores/notifications';
import type { Approval, Collaboration } from '@/types/api';
import { actionLabel, describeAction, fieldsInSummary, payloadFacts } from '@/utils/describe-action';
import { formatDateTime, formatRelative } from '@/utils/format';

import { approveApproval } from '../api/approve-approval';
import { rejectApproval } from '../api/reject-approval';

/** "Approved: <summary>." without a second full stop when the summary ends a sentence itself. */
function sentence(text: string): string {
  return /[.!?…]$/.test(text) ? text : `${text}.`;
}

function proposer(approval: Approval, collaboration: Collaboration | null): string {
  if (approval.proposedBy?.type === 'ai') return 'the AI assistant';
  const member = collaboration?.members.find((m) => m.userId === approval.proposedBy?.id);
  return member?.email ?? 'a member';
}

export function ApprovalCard({ approval, collaboration }: { approval: Approval; collaboration: Collaboration | null }) {
  const summary = describeAction(approval.action, approval.payload ?? {}, collaboration);
  const facts = payloadFacts(approval.payload ?? {}, collaboration, fieldsInSummary(approval.action));
  const decide = useMutation(async (verdict: 'approve' | 'reject') => {
    const decided = verdict === 'approve' ? await approveApproval(approval.id) : await rejectApproval(approval.id);
    if (decided?.status === 'failed') {
      notifications.show(sentence(`Approved, but it could not be carried out: ${decided.error?.message ?? 'the action failed'}`), 'error', 10000);
    } else {
      notifications.show(sentence(`${verdict === 'approve' ? 'Approved' : 'Rejected'}: ${summary}`), 'success');
    }
  });

  return (
    <li className="card approval stack tight" aria-label={summary} data-testid={`approval-${approval.id}`}>
      <p className="approval-summary">
        <strong>{summary}</strong>
      </p>
      {approval.reason && (
        <p className="approval-reason">
          <span className="muted">Reason:</span> {approval.reason}
        </p>
      )}
      <p className="meta small">
        <span>
          In <strong>{collaboration?.title ?? 'a collaboration'}</strong>
        </span>
        <span>proposed by {proposer(approval, collaboration)}</span>
        <span title={formatDateTime(approval.createdAt)}>{formatRelative(approval.createdAt)}</span>
        {approval.expiresAt && <span>expires {formatRelative(approval.expiresAt)}</span>}
      </p>
      {facts.length > 0 && (
        <details className="small">
          <summary>Details</summary>
          <dl className="facts">
            <div className="fact">
              <dt>Action</dt>
              <dd>{actionLabel(approval.action)}</dd>
            </div>
            {facts.map((fact) => (
              <div key={fact.key} className="fact">
                <dt>{fact.label}</dt>
                <dd>{fact.value}</dd>
              </div>
            ))}
          </dl>
        </details>
      )}
      {decide.error !== null && <ErrorMessage error={decide.error} onDismiss={decide.reset} />}
      <div className="row">
        <button type="button" className="button primary" disabled={decide.pending} onClick={() => void decide.run('approve')}>
          Approve
        </button>
        <button type="button" className="button danger-outline" disabled={decide.pending} onClick={() => void decide.run('reject')}>
          Reject
        </button>
      </div>
    </li>
  );
}
