import type { ActivityStatus, Collaboration, Role } from '@/types/api';
import { canRun } from '@/utils/roles';

import { ActivityCard } from './activity-card';
import { ProposeActivityForm } from './propose-activity-form';

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

  return (
    <section className="card stack" aria-labelledby="activities-heading">
      <h2 id="activities-heading">
        Activities <span className="count">{activities.length}</span>
      </h2>
      {active && canRun(role, 'proposeActivity') && <ProposeActivityForm collaboration={collaboration} />}
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
