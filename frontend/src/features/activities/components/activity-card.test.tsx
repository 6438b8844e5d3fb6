// @vitest-environment jsdom
import { render, screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import { offlineQueue } from '@/lib/offline-queue';
import type { Activity, Collaboration, Role } from '@/types/api';

import { ActivitiesBoard } from './activities-board';

const activity = (id: string, title: string, status: Activity['status']): Activity => ({
  id,
  title,
  status,
  description: null,
  dueAt: null,
  scheduledFor: status === 'scheduled' ? '2026-12-05T11:00:00Z' : null,
  assigneeId: null,
  createdBy: { type: 'user', id: 'u1' },
  createdAt: '2026-11-20T10:00:00Z',
  updatedAt: '2026-11-20T10:00:00Z',
});

function collaboration(overrides: Partial<Collaboration> = {}): Collaboration {
  return {
    id: 'col_1',
    title: 'Summer trip',
    description: null,
    status: 'active',
    members: [{ userId: 'u1', email: 'ann@example.com', role: 'owner', joinedAt: '' }],
    memberIds: ['u1'],
    activities: [activity('act_1', 'Plan picnic', 'proposed'), activity('act_2', 'Book the hut', 'scheduled')],
    settings: { protectedActions: [] },
    rules: [],
    version: 3,
    createdAt: '',
    updatedAt: '',
    lastActivityAt: '',
    ...overrides,
  };
}

// Activity changes go through the offline queue, which sends for the signed-in user.
beforeEach(() => offlineQueue.setUser('u1'));
afterEach(async () => {
  await offlineQueue.setUser(null);
  vi.unstubAllGlobals();
});

function buttons(role: Role | null, overrides: Partial<Collaboration> = {}) {
  const { unmount } = render(<ActivitiesBoard collaboration={collaboration(overrides)} role={role} />);
  const names = screen.queryAllByRole('button').map((button) => button.textContent);
  unmount();
  return names;
}

describe('activity actions by role (the least-role table)', () => {
  it('offers a viewer none of them, an editor and an owner all of them', () => {
    expect(buttons('viewer')).toEqual([]);
    expect(buttons(null)).toEqual([]);
    const all = ['Propose an activity', 'Schedule', 'Cancel activity', 'Mark done', 'Cancel activity'];
    expect(buttons('editor')).toEqual(all);
    expect(buttons('owner')).toEqual(all);
  });

  it('offers nothing on an archived collaboration', () => {
    expect(buttons('owner', { status: 'archived' })).toEqual([]);
  });
});

const json = (status: number, body: unknown) =>
  new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });

describe('an action that went to an owner for approval (202)', () => {
  it('says "Awaiting owner approval" on the card and does not offer that action again', async () => {
    const fetchMock = vi.fn(async () =>
      json(202, { approval: { id: 'apr_1', action: 'cancelActivity', status: 'pending', payload: { activityId: 'act_2' } } }),
    );
    vi.stubGlobal('fetch', fetchMock);
    render(<ActivitiesBoard collaboration={collaboration()} role="editor" />);
    const card = screen.getByRole('listitem', { name: 'Book the hut' });
    await userEvent.click(within(card).getByRole('button', { name: 'Cancel activity' }));
    await userEvent.click(within(card).getByRole('button', { name: 'Confirm cancel' }));

    expect(await within(card).findByText('Awaiting owner approval')).toBeInTheDocument();
    expect(within(card).getByRole('status')).toHaveTextContent('Awaiting owner approval (cancel)');
    expect(within(card).getByRole('button', { name: 'Cancel activity' })).toBeDisabled();
    // The other action is still there; the other card is not affected.
    expect(within(card).getByRole('button', { name: 'Mark done' })).toBeEnabled();
    const other = screen.getByRole('listitem', { name: 'Plan picnic' });
    expect(within(other).queryByText('Awaiting owner approval')).not.toBeInTheDocument();
    expect(within(other).getByRole('button', { name: 'Cancel activity' })).toBeEnabled();
    expect(fetchMock).toHaveBeenCalledTimes(1);
  });
});

describe('a change made offline, or refused', () => {
  it('shows "Waiting for connection" on the activity while offline, then sends it once online', async () => {
    const online = vi.spyOn(navigator, 'onLine', 'get').mockReturnValue(false);
    const fetchMock = vi.fn(async () => json(200, { collaborationId: 'col_1', version: 4, result: null }));
    vi.stubGlobal('fetch', fetchMock);
    render(<ActivitiesBoard collaboration={collaboration()} role="editor" />);
    const card = screen.getByRole('listitem', { name: 'Book the hut' });
    await userEvent.click(within(card).getByRole('button', { name: 'Mark done' }));

    const pending = await within(card).findByTestId('pending-activity-change');
    expect(pending).toHaveTextContent('Mark done');
    expect(pending).toHaveTextContent('Waiting for connection');
    expect(within(card).getByRole('button', { name: 'Mark done' })).toBeDisabled();
    expect(fetchMock).not.toHaveBeenCalled();

    online.mockReturnValue(true);
    offlineQueue.networkChanged();
    await waitFor(() => expect(within(card).queryByTestId('pending-activity-change')).not.toBeInTheDocument());
    expect(fetchMock).toHaveBeenCalledTimes(1);
    const [url, init] = fetchMock.mock.calls[0] as unknown as [string, RequestInit];
    expect(url).toBe('/api/actions/completeActivity');
    expect(JSON.parse(init.body as string)).toEqual({ collaborationId: 'col_1', payload: { activityId: 'act_2' } });
  });

  it('shows a refusal in place while waiting for it, as before, and queues nothing', async () => {
    vi.stubGlobal(
      'fetch',
      vi.fn(async () => json(409, { error: { code: 'invalid_transition', message: 'The activity is already done.', details: {} } })),
    );
    render(<ActivitiesBoard collaboration={collaboration()} role="editor" />);
    const card = screen.getByRole('listitem', { name: 'Book the hut' });
    await userEvent.click(within(card).getByRole('button', { name: 'Mark done' }));
    expect(await within(card).findByRole('alert')).toHaveTextContent('The activity is already done.');
    expect(within(card).queryByTestId('pending-activity-change')).not.toBeInTheDocument();
    expect(offlineQueue.getEntries()).toEqual([]);
  });

  it('shows a refusal that came after the connection was back on the activity, with Retry and Discard', async () => {
    const online = vi.spyOn(navigator, 'onLine', 'get').mockReturnValue(false);
    const fetchMock = vi
      .fn()
      .mockResolvedValueOnce(json(409, { error: { code: 'invalid_transition', message: 'The activity is already done.', details: {} } }))
      .mockResolvedValueOnce(json(200, { collaborationId: 'col_1', version: 4, result: null }));
    vi.stubGlobal('fetch', fetchMock);
    render(<ActivitiesBoard collaboration={collaboration()} role="editor" />);
    const card = screen.getByRole('listitem', { name: 'Book the hut' });
    await userEvent.click(within(card).getByRole('button', { name: 'Mark done' }));
    await within(card).findByTestId('pending-activity-change');
    online.mockReturnValue(true);
    offlineQueue.networkChanged();

    const pending = within(card).getByTestId('pending-activity-change');
    expect(await within(pending).findByRole('alert')).toHaveTextContent('The activity is already done.');
    const retry = within(card).getByRole('button', { name: 'Retry mark done “Book the hut”' });
    expect(within(card).getByRole('button', { name: 'Discard mark done “Book the hut”' })).toBeEnabled();
    await userEvent.click(retry);
    await waitFor(() => expect(within(card).queryByTestId('pending-activity-change')).not.toBeInTheDocument());
    // The retry is a new attempt: a new key.
    const keys = fetchMock.mock.calls.map(([, init]) => ((init as RequestInit).headers as Record<string, string>)['Idempotency-Key']);
    expect(keys).toHaveLength(2);
    expect(keys[1]).not.toBe(keys[0]);

    online.mockReturnValue(false);
    await userEvent.click(within(card).getByRole('button', { name: 'Mark done' }));
    await within(card).findByTestId('pending-activity-change');
    fetchMock.mockResolvedValueOnce(json(403, { error: { code: 'forbidden', message: 'no', details: {} } }));
    online.mockReturnValue(true);
    offlineQueue.networkChanged();
    await userEvent.click(await within(card).findByRole('button', { name: 'Discard mark done “Book the hut”' }));
    await waitFor(() => expect(within(card).queryByTestId('pending-activity-change')).not.toBeInTheDocument());
    expect(offlineQueue.getEntries()).toEqual([]);
  });
});
