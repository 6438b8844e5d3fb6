// @vitest-environment jsdom
import { render, screen, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { afterEach, describe, expect, it, vi } from 'vitest';

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

describe('<MembersPanel> invitations', () => {
  afterEach(() => vi.unstubAllGlobals());

  const invited = (): Collaboration => {
    const c = collaboration('active');
    const inAMinute = new Date(Date.now() - 120_000).toISOString();
    c.members.push({ userId: 'u3', email: 'cy@example.com', role: 'viewer', joinedAt: '', invitedAt: inAMinute, invitedBy: 'u2' });
    c.members.push({ userId: 'u4', email: 'di@example.com', role: 'editor', joinedAt: '', invitedAt: inAMinute, invitedBy: 'u1' });
    return c;
  };

  it('shows who invited a person without an account, and when, until they sign in; last in the list', () => {
    render(<MembersPanel collaboration={invited()} role="editor" userId="u1" presence={[]} onLeft={() => undefined} />);
    const rows = within(screen.getByRole('list', { name: 'Members' })).getAllByRole('listitem');
    expect(rows.map((row) => row.getAttribute('data-testid'))).toEqual(['member-u1', 'member-u2', 'member-u3', 'member-u4']);
    expect(rows[2]).toHaveTextContent('Invited by bo@example.com 2 minutes ago; not signed in yet');
    expect(rows[2]).toHaveAttribute('data-invited', 'true');
    expect(rows[3]).toHaveTextContent('Invited by you');
    expect(rows[1]).not.toHaveTextContent('Invited');
    // An editor cannot cancel it.
    expect(screen.queryByRole('button', { name: /Cancel invitation/ })).not.toBeInTheDocument();
  });

  it("lets an owner cancel an invitation: removeMember for that member", async () => {
    const fetchMock = vi.fn(async () => new Response(JSON.stringify({ collaborationId: 'col_1', version: 4, result: {} }), { status: 200, headers: { 'Content-Type': 'application/json' } }));
    vi.stubGlobal('fetch', fetchMock);
    vi.spyOn(window, 'confirm').mockReturnValue(true);
    render(<MembersPanel collaboration={invited()} role="owner" userId="u1" presence={[]} onLeft={() => undefined} />);
    expect(screen.getByRole('button', { name: 'Remove bo@example.com' })).toHaveTextContent('Remove');
    const cancel = screen.getByRole('button', { name: 'Cancel invitation for cy@example.com' });
    expect(cancel).toHaveTextContent('Cancel invitation');
    await userEvent.click(cancel);
    const [url, init] = fetchMock.mock.calls[0] as unknown as [string, RequestInit];
    expect(url).toBe('/api/actions/removeMember');
    expect(JSON.parse(String(init.body))).toEqual({ collaborationId: 'col_1', payload: { userId: 'u3' } });
  });
});
