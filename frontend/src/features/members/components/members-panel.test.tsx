// @vitest-environment jsdom
import { render, screen, within } from '@testing-library/react';
import { describe, expect, it } from 'vitest';

import type { Collaboration, PresenceEntry, Role } from '@/types/api';

import { MembersPanel } from './members-panel';

function collaboration(status: Collaboration['status']): Collaboration {
  return {
    id: 'col_1',
    title: 'Summer trip',
    description: null,
    status,
    members: [
      { userId: 'u1', email: 'ann@example.com', role: 'owner', joinedAt: '' },
      { userId: 'u2', email: 'bo@example.com', role: 'editor', joinedAt: '' },
    ],
    memberIds: ['u1', 'u2'],
    activities: [],
    settings: { protectedActions: [] },
    rules: [],
    version: 3,
    createdAt: '',
    updatedAt: '',
    lastActivityAt: '',
  };
}

function renderPanel(status: Collaboration['status'], role: Role) {
  return render(
    <MembersPanel collaboration={collaboration(status)} role={role} userId="u1" presence={[]} onLeft={() => undefined} />,
  );
}

describe('<MembersPanel> controls', () => {
  it('gives an owner of an active collaboration every member control', () => {
    renderPanel('active', 'owner');
    expect(screen.getByRole('form', { name: 'Add a member' })).toBeInTheDocument();
    expect(screen.getByLabelText('Role for bo@example.com')).toBeInTheDocument();
    expect(screen.getByRole('button', { name: 'Remove bo@example.com' })).toBeInTheDocument();
  });

  it('offers no "Add a member" on an archived collaboration (the server refuses it), only what the server still allows', () => {
    renderPanel('archived', 'owner');
    expect(screen.queryByRole('form', { name: 'Add a member' })).not.toBeInTheDocument();
    expect(screen.getByText(/archived: no one can be added/)).toBeInTheDocument();
    // removeMember, changeRole and leaveCollaboration are allowed when archived (ALLOWED_WHEN_ARCHIVED).
    expect(screen.getByRole('button', { name: 'Remove bo@example.com' })).toBeInTheDocument();
    expect(screen.getByRole('button', { name: 'Leave collaboration' })).toBeInTheDocument();
  });

  it('gives an editor no member management', () => {
    renderPanel('active', 'editor');
    expect(screen.queryByRole('form', { name: 'Add a member' })).not.toBeInTheDocument();
    expect(screen.queryByLabelText('Role for bo@example.com')).not.toBeInTheDocument();
    expect(screen.queryByRole('button', { name: /^Remove/ })).not.toBeInTheDocument();
  });
});

describe('<MembersPanel> presence', () => {
  const since = '2026-11-20T10:00:00Z';

  function presenceOf(entries: PresenceEntry[]) {
    render(<MembersPanel collaboration={collaboration('active')} role="owner" userId="u1" presence={entries} onLeft={() => undefined} />);
    const bo = screen.getByTestId('member-u2');
    return { kind: bo.getAttribute('data-presence'), text: within(bo).getByLabelText(/^bo@example.com is/).textContent };
  }

  it('shows a member as here only while their state says they view the collaboration', () => {
    expect(presenceOf([{ userId: 'u2', state: { status: 'online', view: 'collaboration' }, since }])).toMatchObject({
      kind: 'here',
      text: 'here now',
    });
  });

  it('says away while their page is in a background tab', () => {
    expect(presenceOf([{ userId: 'u2', state: { status: 'away', view: 'collaboration' }, since }]).kind).toBe('away');
  });

  it('does not show someone who left the page (state without the view) or has no entry as here', () => {
    expect(presenceOf([{ userId: 'u2', state: { status: 'away' }, since }])).toEqual({ kind: 'absent', text: 'not here' });
  });

  it('does not show someone without a presence entry as here', () => {
    expect(presenceOf([])).toEqual({ kind: 'absent', text: 'not here' });
  });
});
