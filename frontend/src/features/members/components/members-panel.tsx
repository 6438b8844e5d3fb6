import { useState, type FormEvent } from 'react';

import { ErrorMessage } from '@/components/ui/error-message';
import { useMutation } from '@/hooks/use-mutation';
import { announceOutcome } from '@/lib/run-action';
import type { Collaboration, Member, PresenceEntry, Role } from '@/types/api';
import { formatDateTime, formatRelative } from '@/utils/format';
import { canRun, ROLES, roleLabel } from '@/utils/roles';

import { addMember } from '../api/add-member';
import { changeRole } from '../api/change-role';
import { leaveCollaboration } from '../api/leave-collaboration';
import { removeMember } from '../api/remove-member';

type Props = {
  collaboration: Collaboration;
  role: Role | null;
  userId: string;
  presence: PresenceEntry[];
  onLeft: () => void;
};

type PresenceKind = 'here' | 'away' | 'absent';

/**
 * Where a member is, from their presence state: "here" only while their state says they are viewing
 * this collaboration (`{"status": "online", "view": "collaboration"}`); "away" while that page is in a
 * background tab (`status: "away"`, same view); otherwise (no entry, or a state without that view,
 * such as the `{"status": "away"}` sent on leaving the page) not here.
 */
function presenceKind(entry: PresenceEntry | undefined): PresenceKind {
  if (!entry || entry.state?.view !== 'collaboration') return 'absent';
  return entry.state?.status === 'online' ? 'here' : 'away';
}

const PRESENCE_TEXT: Record<PresenceKind, string> = {
  here: 'here now',
  away: 'away (the page is in the background)',
  absent: 'not here',
};

const PRESENCE_ORDER: Record<PresenceKind, number> = { here: 0, away: 1, absent: 2 };

export function MembersPanel({ collaboration, role, userId, presence, onLeft }: Props) {
  // An archived collaboration takes no new members; the server still lets owners change roles and
  // remove members there (docs/actions.md), so an owner can still take someone's access away.
  const archived = collaboration.status === 'archived';
  const canAdd = !archived && canRun(role, 'addMember');
  const canChangeRole = canRun(role, 'changeRole');
  const canRemove = canRun(role, 'removeMember');
  const leave = useMutation(async () => {
    const outcome = await leaveCollaboration(collaboration.id);
    announceOutcome(outcome, `You left “${collaboration.title}”.`);
    if (outcome.kind === 'applied') onLeft();
  });
  const online = new Map(presence.map((entry) => [entry.userId, entry]));
  // Invited people (added by email, not signed in yet) come last.
  const rank = (member: Member) => (member.invitedAt ? 3 : PRESENCE_ORDER[presenceKind(online.get(member.userId))]);
  const members = [...collaboration.members].sort((a, b) => rank(a) - rank(b));
  const inviter = (id: string | null | undefined) =>
    id === userId ? 'you' : (collaboration.members.find((m) => m.userId === id)?.email ?? 'a former member');

  return (
    <section className="card stack" aria-labelledby="members-heading">
      <h2 id="members-heading">
        Members <span className="count">{collaboration.members.length}</span>
      </h2>
      <ul className="member-list" aria-label="Members">
        {members.map((member) => (
          <MemberRow
            key={member.userId}
            collaborationId={collaboration.id}
            member={member}
            presence={online.get(member.userId)}
            invitedBy={member.invitedAt ? inviter(member.invitedBy) : null}
            isMe={member.userId === userId}
            canChangeRole={canChangeRole && member.userId !== userId}
            canRemove={canRemove && member.userId !== userId}
          />
        ))}
      </ul>
      {canAdd && <AddMemberForm collaborationId={collaboration.id} />}
      {archived && canRemove && (
        <p className="muted small">This collaboration is archived: no one can be added, but you can still change roles or remove members.</p>
      )}
      {leave.error !== null && <ErrorMessage error={leave.error} onDismiss={leave.reset} />}
      {canRun(role, 'leaveCollaboration') && (
        <div className="row">
          <button
            type="button"
            className="button danger-outline"
            disabled={leave.pending}
            onClick={() => {
              if (window.confirm(`Leave “${collaboration.title}”?`)) void leave.run();
            }}
          >
            Leave collaboration
          </button>
        </div>
      )}
    </section>
  );
}

type RowProps = {
  collaborationId: string;
  member: Member;
  presence: PresenceEntry | undefined;
  /** Who invited them (an email, or "you") while they have not signed in yet; null for a member who has. */
  invitedBy: string | null;
  isMe: boolean;
  canChangeRole: boolean;
  canRemove: boolean;
};

function MemberRow({ collaborationId, member, presence, invitedBy, isMe, canChangeRole, canRemove }: RowProps) {
  const name = member.email ?? member.userId;
  const change = useMutation(async (next: Role) => announceOutcome(await changeRole(collaborationId, member.userId, next)));
  const remove = useMutation(async () =>
    announceOutcome(await removeMember(collaborationId, member.userId), member.invitedAt ? `Invitation of ${name} cancelled.` : undefined),
  );
  const invited = Boolean(member.invitedAt);
  const kind = invited ? 'absent' : presenceKind(presence);
  const state = PRESENCE_TEXT[kind];

  return (
    <li
      className={`member${invited ? ' invited' : ''}`}
      data-testid={`member-${member.userId}`}
      data-presence={kind}
      data-online={kind === 'here' ? 'true' : 'false'}
      data-invited={invited ? 'true' : undefined}
    >
      <span className={`presence-dot ${kind === 'here' ? 'on' : kind === 'away' ? 'away' : 'off'}`} aria-hidden="true" />
      <div className="member-main">
        <span className="member-name">
          {name}
          {isMe && <span className="muted"> (you)</span>}
        </span>
        {invited ? (
          <span className="muted small">
            Invited by {invitedBy ?? 'a former member'}{' '}
            <time dateTime={member.invitedAt ?? undefined} title={formatDateTime(member.invitedAt ?? '')}>
              {formatRelative(member.invitedAt ?? '')}
            </time>
            ; not signed in yet
          </span>
        ) : (
          <span
            className="muted small"
            aria-label={`${name} is ${state}`}
            title={kind !== 'absent' && presence?.since ? `Connected since ${formatRelative(presence.since)}` : undefined}
          >
            {state}
          </span>
        )}
      </div>
      {invited && <span className="badge muted">Invited</span>}
      <span className={`badge role-${member.role}`}>{roleLabel(member.role)}</span>
      {(canChangeRole || canRemove) && (
        <div className="row tight member-controls">
          {canChangeRole && (
            <select
              aria-label={`Role for ${name}`}
              value={member.role}
              disabled={change.pending}
              onChange={(e) => void change.run(e.target.value as Role)}
            >
              {ROLES.map((r) => (
                <option key={r} value={r}>
                  {roleLabel(r)}
                </option>
              ))}
            </select>
          )}
          {canRemove && (
            <button
              type="button"
              className="button small danger-outline"
              aria-label={invited ? `Cancel invitation for ${name}` : `Remove ${name}`}
              disabled={remove.pending}
              onClick={() => {
                if (window.confirm(invited ? `Cancel the invitation of ${name}?` : `Remove ${name} from this collaboration?`)) void remove.run();
              }}
            >
              {invited ? 'Cancel invitation' : 'Remove'}
            </button>
          )}
        </div>
      )}
      {change.error !== null && <ErrorMessage error={change.error} onDismiss={change.reset} />}
      {remove.error !== null && <ErrorMessage error={remove.error} onDismiss={remove.reset} />}
    </li>
  );
}

function AddMemberForm({ collaborationId }: { collaborationId: string }) {
  const [email, setEmail] = useState('');
  const [role, setRole] = useState<Role>('editor');
  const add = useMutation(async () => {
    const outcome = await addMember(collaborationId, email.trim(), role);
    announceOutcome(outcome, `Added ${email.trim()} as ${role}. Someone without an account yet is listed as invited until they first sign in.`);
    setEmail('');
  });

  const submit = (event: FormEvent) => {
    event.preventDefault();
    void add.run();
  };

  return (
    <form className="stack add-member" onSubmit={submit} aria-label="Add a member">
      <h3>Add a member</h3>
      <div className="row wrap">
        <label className="field grow">
          <span>Email</span>
          <input type="email" value={email} onChange={(e) => setEmail(e.target.value)} required placeholder="friend@example.com" />
        </label>
        <label className="field">
          <span>Role</span>
          <select value={role} onChange={(e) => setRole(e.target.value as Role)}>
            {ROLES.map((r) => (
              <option key={r} value={r}>
                {roleLabel(r)}
              </option>
            ))}
          </select>
        </label>
      </div>
      {add.error !== null && <ErrorMessage error={add.error} onDismiss={add.reset} />}
      <div className="row">
        <button type="submit" className="button primary" disabled={add.pending || !email.trim()}>
          {add.pending ? 'Adding…' : 'Add member'}
        </button>
      </div>
    </form>
  );
}
