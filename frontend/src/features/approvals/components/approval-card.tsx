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

/**
 * The reason, once. A proposal has its own reason (why it is proposed) and cancelActivity's payload
 * one more (what the activity will record); the AI writes the same thing twice. The card names
 * the action without the payload's reason and shows one "Reason:" line: the proposal's, else the
 * payload's. A payload reason that says something else goes to the details, as the cancellation's.
 */
function reasons(approval: Approval): { shown: string | null; recorded: string | null } {
  const payloadReason = typeof approval.payload?.reason === 'string' && approval.payload.reason.trim() ? approval.payload.reason.trim() : null;
  const proposalReason = approval.reason?.trim() || null;
  const shown = proposalReason ?? payloadReason;
  return { shown, recorded: payloadReason !== null && payloadReason !== shown ? payloadReason : null };
}

export function ApprovalCard({ approval, collaboration }: { approval: Approval; collaboration: Collaboration | null }) {
  const { reason: _reason, ...payload } = approval.payload ?? {};
  const summary = describeAction(approval.action, payload, collaboration);
  const reason = reasons(approval);
  const facts = payloadFacts(payload, collaboration, fieldsInSummary(approval.action));
  if (reason.recorded) {
    facts.push({ key: 'reason', label: approval.action === 'cancelActivity' ? 'Cancellation reason' : 'Reason given', value: reason.recorded });
  }
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
      {reason.shown && (
        <p className="approval-reason">
          <span className="muted">Reason:</span> {reason.shown}
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
