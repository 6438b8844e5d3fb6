import { QueuedActionStatus } from '@/components/queued-action-status';
import { useQueuedActions } from '@/lib/offline-queue';
import type { ActivityStatus, Collaboration, Role } from '@/types/api';
import { canRun } from '@/utils/roles';

import { ActivityCard } from './activity-card';
import { ProposeActivityForm } from './propose-activity-form';

const PROPOSE = ['proposeActivity'] as const;

const GROUPS: Array<{ status: ActivityStatus; title: string; empty: string }> = [
  { status: 'proposed', title: 'Proposed', empty: 'Nothing proposed.' },
  { status: 'scheduled', title: 'Scheduled', empty: 'Nothing scheduled.' },
  { status: 'done', title: 'Done', empty: 'Nothing done yet.' },
  { status: 'cancelled', title: 'Cancelled', empty: 'Nothing cancelled.' },
];

export function ActivitiesBoard({ collaboration, role }: { collaboration: Collaboration; role: Role | null }) {
  // An archived collaboration is read-only; otherwise each action is offered to the roles that may run it.
  const active = collaboration.status !== 'archived';
  const activities = collaboration.activities ?? [];
  // Proposals of mine still in the offline queue (they have no activity yet).
  const proposals = useQueuedActions(collaboration.id, PROPOSE);

  return (
    <section className="card stack" aria-labelledby="activities-heading">
      <h2 id="activities-heading">
        Activities <span className="count">{activities.length}</span>
      </h2>
      {active && canRun(role, 'proposeActivity') && <ProposeActivityForm collaboration={collaboration} />}
      {proposals.length > 0 && (
        <ul className="activity-list queued-proposals" aria-label="Proposals not sent yet">
          {proposals.map((entry) => {
            const title = typeof entry.payload.title === 'string' ? entry.payload.title : '';
            return (
              <li key={entry.key} className={`activity queued queued-${entry.status}`} data-testid="pending-proposal">
                <div className="activity-head">
                  <strong className="activity-title">{title}</strong> <span className="badge pending">Proposal</span>
                </div>
                <QueuedActionStatus entry={entry} label={`the proposal “${title}”`} />
              </li>
            );
          })}
        </ul>
      )}
      <div className="activity-groups">
        {GROUPS.map((group) => {
          const items = activities.filter((activity) => activity.status === group.status);
          const headingId = `activities-${group.status}`;
          return (
            <section key={group.status} className={`activity-group group-${group.status}`} aria-labelledby={headingId}>
              <h3 id={headingId}>
                {group.title} <span className="count">{items.length}</span>
              </h3>
              {items.length === 0 ? (
                <p className="muted small">{group.empty}</p>
              ) : (
                <ul className="activity-list" aria-label={`${group.title} activities`}>
                  {items.map((activity) => (
                    <ActivityCard key={activity.id} collaboration={collaboration} activity={activity} role={active ? role : null} />
                  ))}
                </ul>
              )}
            </section>
          );
        })}
      </div>
    </section>
  );
}
