import { useState, type FormEvent } from 'react';

import { QueuedActionStatus } from '@/components/queued-action-status';
import { ErrorMessage } from '@/components/ui/error-message';
import { useMutation } from '@/hooks/use-mutation';
import { firstAnswer, useQueuedActions, type Submitted } from '@/lib/offline-queue';
import { announceOutcome } from '@/lib/run-action';
import type { ActionOutcome, Activity, Collaboration, Role } from '@/types/api';
import { formatDateTime, isoToLocalInput, localInputToIso } from '@/utils/format';
import { canRun } from '@/utils/roles';

import { cancelActivity } from '../api/cancel-activity';
import { completeActivity } from '../api/complete-activity';
import { scheduleActivity } from '../api/schedule-activity';

/** `role`: my role, or null when I may change nothing (not a member, or the collaboration is archived). */
type Props = { collaboration: Collaboration; activity: Activity; role: Role | null };
type Mode = 'idle' | 'schedule' | 'cancel';
type ActivityAction = 'scheduleActivity' | 'completeActivity' | 'cancelActivity';

const AWAITING_LABELS: Record<ActivityAction, string> = {
  scheduleActivity: 'schedule',
  completeActivity: 'mark done',
  cancelActivity: 'cancel',
};

const QUEUED_NAMES: Record<ActivityAction, string> = {
  scheduleActivity: 'Schedule',
  completeActivity: 'Mark done',
  cancelActivity: 'Cancel',
};
const ACTIVITY_ACTIONS = Object.keys(QUEUED_NAMES);

export function ActivityCard({ collaboration, activity, role }: Props) {
  const [mode, setMode] = useState<Mode>('idle');
  const [when, setWhen] = useState(() => isoToLocalInput(activity.dueAt) || '');
  const [reason, setReason] = useState('');
  const assignee = collaboration.members.find((m) => m.userId === activity.assigneeId);
  const open = activity.status === 'proposed' || activity.status === 'scheduled';
  const canSchedule = open && activity.status === 'proposed' && canRun(role, 'scheduleActivity');
  const canComplete = open && activity.status === 'scheduled' && canRun(role, 'completeActivity');
  const canCancel = open && canRun(role, 'cancelActivity');

  // Actions of mine that went to an owner (202): said on the card and not offered again. The card is
  // mounted anew when the activity changes status (it moves to another group), which clears this.
  const [awaiting, setAwaiting] = useState<ActivityAction[]>([]);
  const isAwaiting = (action: ActivityAction) => awaiting.includes(action);

  // My changes to this activity still in the offline queue: shown here until the server has them.
  const queued = useQueuedActions(collaboration.id, ACTIVITY_ACTIONS).filter((entry) => entry.payload.activityId === activity.id);
  const isQueued = (action: ActivityAction) => queued.some((entry) => entry.name === action && entry.status !== 'failed');

  // Through the offline queue: a refusal shows here as before; without a connection the change is
  // parked (shown on the card) and its answer, when it comes, is announced.
  const act = useMutation(async (action: ActivityAction, run: () => Promise<Submitted>, applied: string) => {
    const submitted = await run();
    const answer = await firstAnswer(submitted);
    setMode('idle');
    setReason('');
    const answered = (outcome: ActionOutcome | null) => {
      if (!outcome) return;
      announceOutcome(outcome, applied);
      if (outcome.kind === 'pending_approval') setAwaiting((current) => (current.includes(action) ? current : [...current, action]));
    };
    if (answer) answered(answer);
    else void submitted.outcome.then(answered);
  });

  const schedule = (event: FormEvent) => {
    event.preventDefault();
    const iso = localInputToIso(when);
    if (!iso) return;
    void act.run('scheduleActivity', () => scheduleActivity(collaboration.id, activity.id, iso), `Scheduled “${activity.title}”.`);
  };

  const cancel = (event: FormEvent) => {
    event.preventDefault();
    void act.run(
      'cancelActivity',
      () => cancelActivity(collaboration.id, activity.id, reason.trim() || undefined),
      `Cancelled “${activity.title}”.`,
    );
  };

  return (
    <li className={`activity status-${activity.status}`} data-testid={`activity-${activity.id}`} aria-label={activity.title}>
      <div className="activity-head">
        <strong className="activity-title">{activity.title}</strong>
        {activity.createdBy?.type === 'ai' && <span className="badge ai">AI</span>}
      </div>
      {awaiting.length > 0 && (
        <p className="awaiting small" role="status">
          <span className="badge pending">Awaiting owner approval</span>{' '}
          <span className="muted">({awaiting.map((action) => AWAITING_LABELS[action]).join(', ')})</span>
        </p>
      )}
      {queued.length > 0 && (
        <ul className="queued-actions small" aria-label={`Changes to ${activity.title} not sent yet`}>
          {queued.map((entry) => (
            <li key={entry.key} className={`queued queued-${entry.status}`} data-testid="pending-activity-change">
              <span className="badge pending">{QUEUED_NAMES[entry.name as ActivityAction] ?? entry.name}</span>{' '}
              <QueuedActionStatus entry={entry} label={`${(QUEUED_NAMES[entry.name as ActivityAction] ?? entry.name).toLowerCase()} “${activity.title}”`} />
            </li>
          ))}
        </ul>
      )}
      {activity.description && <p className="small">{activity.description}</p>}
      <dl className="facts small">
        {activity.scheduledFor && (
          <>
            <dt>Scheduled for</dt>
            <dd>{formatDateTime(activity.scheduledFor)}</dd>
          </>
        )}
        {activity.dueAt && (
          <>
            <dt>Due</dt>
            <dd>{formatDateTime(activity.dueAt)}</dd>
          </>
        )}
        {assignee && (
          <>
            <dt>Assignee</dt>
            <dd>{assignee.email ?? assignee.userId}</dd>
          </>
        )}
        {activity.status === 'cancelled' && activity.cancelReason && (
          <>
            <dt>Reason</dt>
            <dd>{activity.cancelReason}</dd>
          </>
        )}
      </dl>
      {(canSchedule || canComplete || canCancel) && mode === 'idle' && (
        <div className="row tight wrap">
          {canSchedule && (
            <button
              type="button"
              className="button small"
              disabled={isAwaiting('scheduleActivity') || isQueued('scheduleActivity')}
              onClick={() => setMode('schedule')}
            >
              Schedule
            </button>
          )}
          {canComplete && (
            <button
              type="button"
              className="button small primary"
              disabled={act.pending || isAwaiting('completeActivity') || isQueued('completeActivity')}
              onClick={() =>
                void act.run('completeActivity', () => completeActivity(collaboration.id, activity.id), `“${activity.title}” is done.`)
              }
            >
              Mark done
            </button>
          )}
          {canCancel && (
            <button
              type="button"
              className="button small danger-outline"
              disabled={isAwaiting('cancelActivity') || isQueued('cancelActivity')}
              onClick={() => setMode('cancel')}
            >
              Cancel activity
            </button>
          )}
        </div>
      )}
      {mode === 'schedule' && (
        <form className="stack tight" onSubmit={schedule} aria-label={`Schedule ${activity.title}`}>
          <label className="field">
            <span>Date and time</span>
            <input type="datetime-local" value={when} onChange={(e) => setWhen(e.target.value)} required />
          </label>
          <div className="row tight">
            <button type="submit" className="button small primary" disabled={act.pending || !when}>
              Save schedule
            </button>
            <button type="button" className="button small" onClick={() => setMode('idle')}>
              Back
            </button>
          </div>
        </form>
      )}
      {mode === 'cancel' && (
        <form className="stack tight" onSubmit={cancel} aria-label={`Cancel ${activity.title}`}>
          <label className="field">
            <span>Reason (optional)</span>
            <input value={reason} onChange={(e) => setReason(e.target.value)} maxLength={1000} />
          </label>
          <div className="row tight">
            <button type="submit" className="button small danger" disabled={act.pending}>
              Confirm cancel
            </button>
            <button type="button" className="button small" onClick={() => setMode('idle')}>
              Back
            </button>
          </div>
        </form>
      )}
      {act.error !== null && <ErrorMessage error={act.error} onDismiss={act.reset} />}
    </li>
  );
}
