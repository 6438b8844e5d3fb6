// @vitest-environment jsdom
import { act, render, screen, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import { queryCache } from '@/lib/query-cache';
import { notifications } from '@/stores/notifications';
import { RealtimeClient } from '@/lib/realtime/realtime-client';
import { RealtimeContext } from '@/lib/realtime/realtime-context';
import { FakeWebSocket } from '@/testing/fake-websocket';
import type { Approval } from '@/types/api';

import { ApprovalsInbox } from './approvals-inbox';

function approval(id: string, overrides: Partial<Approval> = {}): Approval {
  return {
    id,
    collaborationId: 'col_1',
    action: 'cancelActivity',
    payload: { activityId: 'act_1', reason: 'It rained' },
    reason: 'Scheduled more than a week ago and not done',
    proposedBy: { type: 'ai', runId: 'run_1' },
    status: 'pending',
    createdAt: '2026-11-20T02:00:00Z',
    expiresAt: '2026-11-23T02:00:00Z',
    ...overrides,
  };
}

const json = (status: number, body: unknown) =>
  new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });

let client: RealtimeClient;
let socket: FakeWebSocket;

beforeEach(async () => {
  queryCache.clear();
  FakeWebSocket.reset();
  client = new RealtimeClient({ url: 'ws://test/ws', getToken: async () => 't', createSocket: (u) => new FakeWebSocket(u), linger: 0 });
  client.subscribe('col_1');
  client.start();
  await new Promise((resolve) => setTimeout(resolve, 0));
  socket = FakeWebSocket.latest();
  socket.open();
  socket.receive({ type: 'ready', userId: 'u1', connectionId: 'c1' });
  socket.receive({ type: 'subscribed', collaborationId: 'col_1', version: 4 });
  socket.receive({
    type: 'snapshot',
    collaborationId: 'col_1',
    version: 4,
    collaboration: {
      id: 'col_1',
      title: 'Summer trip',
      version: 4,
      members: [
        { userId: 'u1', email: 'ann@example.com', role: 'owner', joinedAt: '' },
        { userId: 'u2', email: 'bo@example.com', role: 'editor', joinedAt: '' },
      ],
      activities: [{ id: 'act_1', title: 'Plan picnic', status: 'scheduled' }],
    },
    messages: [],
  });
});

afterEach(() => {
  client.stop();
  vi.unstubAllGlobals();
});

function renderInbox() {
  return render(
    <RealtimeContext.Provider value={client}>
      <ApprovalsInbox />
    </RealtimeContext.Provider>,
  );
}

describe('<ApprovalsInbox>', () => {
  it('shows each proposed action readably and approves it', async () => {
    const fetchMock = vi.fn(async (url: string, init?: RequestInit) => {
      if (url.startsWith('/api/approvals?')) return json(200, { approvals: [approval('apr_1')] });
      if (url === '/api/approvals/apr_1/approve' && init?.method === 'POST') {
        return json(200, { approval: approval('apr_1', { status: 'approved' }) });
      }
      return json(404, { error: { code: 'not_found', message: 'no' } });
    });
    vi.stubGlobal('fetch', fetchMock);
    renderInbox();

    const card = await screen.findByRole('listitem', { name: "Cancel activity 'Plan picnic'" });
    expect(card).toHaveTextContent('Reason: Scheduled more than a week ago and not done');
    expect(card).toHaveTextContent('In Summer trip');
    expect(card).toHaveTextContent('proposed by the AI assistant');

    await userEvent.click(within(card).getByRole('button', { name: 'Approve' }));
    expect(fetchMock).toHaveBeenCalledWith('/api/approvals/apr_1/approve', expect.objectContaining({ method: 'POST' }));
    expect(await screen.findByText('Nothing is waiting for your approval.')).toBeInTheDocument();
  });

  it('adds and removes approvals as events arrive', async () => {
    vi.stubGlobal('fetch', vi.fn(async () => json(200, { approvals: [] })));
    renderInbox();
    await screen.findByText('Nothing is waiting for your approval.');

    act(() =>
      socket.receive({
        type: 'approval_created',
        collaborationId: 'col_1',
        approval: approval('apr_2', { action: 'addMember', payload: { email: 'cy@example.com', role: 'editor' }, reason: null }),
      }),
    );
    expect(screen.getByRole('listitem', { name: 'Add cy@example.com as editor' })).toBeInTheDocument();

    act(() =>
      socket.receive({ type: 'approval_updated', collaborationId: 'col_1', approval: approval('apr_2', { status: 'expired' }) }),
    );
    expect(screen.queryByRole('listitem')).not.toBeInTheDocument();
  });

  it.each([
    ['the AI gives the same reason twice', 'Not done for a week', 'Not done for a week'],
    ['only the payload has one', 'It rained', null],
    ['only the proposal has one', undefined, 'Not done for a week'],
  ])('shows the reason of a cancel proposal once when %s', async (_case, payloadReason, proposalReason) => {
    const payload = payloadReason === undefined ? { activityId: 'act_1' } : { activityId: 'act_1', reason: payloadReason };
    vi.stubGlobal('fetch', vi.fn(async () => json(200, { approvals: [approval('apr_6', { payload, reason: proposalReason })] })));
    renderInbox();
    const card = await screen.findByRole('listitem', { name: "Cancel activity 'Plan picnic'" });
    const expected = (proposalReason ?? payloadReason)!;
    expect(within(card).getByText(/^Reason:/).parentElement).toHaveTextContent(`Reason: ${expected}`);
    expect(card.textContent!.split(expected).length - 1).toBe(1);
    expect(card.querySelector('details')).not.toHaveTextContent('reason');
  });

  it('lists the details in words: labels, the activity title, the member email, and the reason once', async () => {
    vi.stubGlobal(
      'fetch',
      vi.fn(async () =>
        json(200, {
          approvals: [
            approval('apr_4'),
            approval('apr_5', { action: 'changeRole', payload: { userId: 'u2', role: 'viewer' }, reason: 'Bo asked' }),
          ],
        }),
      ),
    );
    renderInbox();
    const cancel = await screen.findByRole('listitem', { name: "Cancel activity 'Plan picnic'" });
    const facts = cancel.querySelector('details')!;
    expect(facts).toHaveTextContent('ActionCancel an activity');
    expect(facts).toHaveTextContent('ActivityPlan picnic');
    expect(facts).not.toHaveTextContent('activityId');
    expect(facts).not.toHaveTextContent('act_1');
    // One "Reason:" line (the proposal's); the payload's own, saying something else, is the
    // reason the activity will record: in the details, once.
    expect(within(cancel).getAllByText(/^Reason:/)).toHaveLength(1);
    expect(facts).toHaveTextContent('Cancellation reasonIt rained');
    expect(cancel.textContent!.split('It rained').length - 1).toBe(1);
    expect(cancel.textContent!.split('Scheduled more than a week ago').length - 1).toBe(1);

    const role = screen.getByRole('listitem', { name: 'Make bo@example.com viewer' });
    const roleFacts = role.querySelector('details')!;
    expect(roleFacts).toHaveTextContent("ActionChange a member's role");
    expect(roleFacts).toHaveTextContent('Memberbo@example.com');
    expect(roleFacts).toHaveTextContent('RoleViewer');
    expect(roleFacts).not.toHaveTextContent('u2');
  });

  it('says once, with one full stop, when an approved action could not be carried out', async () => {
    const shown = vi.spyOn(notifications, 'show');
    vi.stubGlobal(
      'fetch',
      vi.fn(async (url: string) =>
        url.startsWith('/api/approvals?')
          ? json(200, { approvals: [approval('apr_6')] })
          : json(200, {
              approval: approval('apr_6', {
                status: 'failed',
                error: { code: 'invalid_transition', message: 'An activity that is done cannot become cancelled.' },
              }),
            }),
      ),
    );
    renderInbox();
    const card = await screen.findByRole('listitem');
    await userEvent.click(within(card).getByRole('button', { name: 'Approve' }));
    expect(shown).toHaveBeenCalledWith(
      'Approved, but it could not be carried out: An activity that is done cannot become cancelled.',
      'error',
      10000,
    );
  });

  it('explains a failed decision', async () => {
    vi.stubGlobal(
      'fetch',
      vi.fn(async (url: string) =>
        url.startsWith('/api/approvals?')
          ? json(200, [approval('apr_3')])
          : json(409, { error: { code: 'conflict', message: 'Already decided.' } }),
      ),
    );
    renderInbox();
    const card = await screen.findByRole('listitem');
    await userEvent.click(within(card).getByRole('button', { name: 'Reject' }));
    expect(await within(card).findByRole('alert')).toHaveTextContent('That has already been decided by someone else.');
  });
});
