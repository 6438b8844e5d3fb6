// @vitest-environment jsdom
import { act, render, screen, waitFor } from '@testing-library/react';
import { MemoryRouter, Route, Routes } from 'react-router';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import { Notifications } from '@/components/ui/notifications';
import { AuthContext, type AuthContextValue } from '@/lib/auth/auth-context';
import type { AuthService } from '@/lib/auth/auth-service';
import { queryCache } from '@/lib/query-cache';
import { unreadStore } from '@/stores/unread';
import { FakeWebSocket } from '@/testing/fake-websocket';
import type { Collaboration, Role } from '@/types/api';

import { AppLayout } from './app-layout';
import { SHELL_SUBSCRIPTION_CAP } from './subscription-policy';

function collaboration(i: number, role: Role): Collaboration {
  return {
    id: `col_${String(i).padStart(3, '0')}`,
    title: `Collaboration ${i}`,
    description: null,
    status: 'active',
    members: [{ userId: 'u1', email: 'ann@example.com', role, joinedAt: '' }],
    memberIds: ['u1'],
    activities: [],
    settings: { protectedActions: [] },
    rules: [],
    version: 1,
    createdAt: '',
    updatedAt: '',
    lastActivityAt: `2026-11-01T00:00:${String(i % 60).padStart(2, '0')}Z`,
  };
}

const json = (status: number, body: unknown) =>
  new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });

const service = {
  getAccessToken: async () => 'token',
  refreshAccessToken: async () => 'token',
  signOut: async () => undefined,
} as unknown as AuthService;

const auth: AuthContextValue = {
  config: { authMode: 'dev', maxMessageChars: 4000 },
  session: { user: { id: 'u1', email: 'ann@example.com' }, accessToken: 'token', expiresAt: null, method: 'dev' },
  service,
};

beforeEach(() => {
  queryCache.clear();
  FakeWebSocket.reset();
  vi.stubGlobal('WebSocket', FakeWebSocket);
});

afterEach(() => vi.unstubAllGlobals());

describe('the signed-in shell', () => {
  it('subscribes to the collaborations it needs, not to all 150 of mine (the server allows 100 per connection)', async () => {
    // 150 collaborations: I own the first 120.
    const mine = Array.from({ length: 150 }, (_, i) => collaboration(i, i < 120 ? 'owner' : 'editor'));
    vi.stubGlobal(
      'fetch',
      vi.fn(async (url: string) => (url.startsWith('/api/collaborations') ? json(200, { collaborations: mine }) : json(200, { approvals: [] }))),
    );
    const { unmount } = render(
      <AuthContext.Provider value={auth}>
        <MemoryRouter>
          <Routes>
            <Route element={<AppLayout />}>
              <Route index element={<p>Home</p>} />
            </Route>
          </Routes>
        </MemoryRouter>
      </AuthContext.Provider>,
    );
    expect(await screen.findByText('Home')).toBeInTheDocument();
    await waitFor(() => expect(FakeWebSocket.instances).toHaveLength(1));
    const socket = FakeWebSocket.latest();
    socket.open();
    socket.receive({ type: 'ready', userId: 'u1', connectionId: 'c1' });

    await waitFor(() => expect(socket.sentOfType('subscribe').length).toBeGreaterThan(0));
    const subscribed = socket.sentOfType('subscribe').map((frame) => frame.collaborationId as string);
    expect(subscribed).toHaveLength(SHELL_SUBSCRIPTION_CAP);
    // Only ones I own (approval events reach subscribed owners), the most recently active.
    const owned = new Set(mine.slice(0, 120).map((c) => c.id));
    expect(subscribed.every((id) => owned.has(id))).toBe(true);
    unmount();
  });
});

describe('telling people what happened', () => {
  let hidden = false;
  beforeEach(() => {
    hidden = false;
    Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => (hidden ? 'hidden' : 'visible') });
    localStorage.clear();
    unreadStore.reset();
  });
  afterEach(() => {
    delete (document as unknown as Record<string, unknown>).visibilityState;
  });

  const setHidden = (value: boolean) =>
    act(() => {
      hidden = value;
      document.dispatchEvent(new Event('visibilitychange'));
    });

  it('toasts what someone else did while the tab was hidden, counts unread messages in the tab title, and announces them', async () => {
    const trip: Collaboration = {
      ...collaboration(1, 'owner'),
      title: 'Summer trip',
      members: [
        { userId: 'u1', email: 'ann@example.com', role: 'owner', joinedAt: '' },
        { userId: 'u2', email: 'bob@example.com', role: 'editor', joinedAt: '' },
      ],
      activities: [
        {
          id: 'act_1', title: 'Check the tent', description: null, status: 'proposed', dueAt: null, scheduledFor: null,
          assigneeId: null, createdBy: { type: 'user', id: 'u2' }, createdAt: '', updatedAt: '2026-11-01T00:00:00Z',
        },
      ],
    };
    // I visited it before: the last message I saw is msg_1.
    localStorage.setItem('tandem:last-seen:u1', JSON.stringify({ [trip.id]: 'msg_1' }));
    vi.stubGlobal(
      'fetch',
      vi.fn(async (url: string) =>
        url.startsWith('/api/collaborations/col_001/messages') ? json(200, { messages: [], hasMore: false })
          : url.startsWith('/api/collaborations') ? json(200, { collaborations: [trip] }) : json(200, { approvals: [] }),
      ),
    );
    const { unmount } = render(
      <AuthContext.Provider value={auth}>
        <MemoryRouter>
          <Routes>
            <Route element={<AppLayout />}>
              <Route index element={<p>Home</p>} />
            </Route>
          </Routes>
        </MemoryRouter>
        <Notifications />
      </AuthContext.Provider>,
    );
    await screen.findByText('Home');
    await waitFor(() => expect(FakeWebSocket.instances).toHaveLength(1));
    const socket = FakeWebSocket.latest();
    socket.open();
    socket.receive({ type: 'ready', userId: 'u1', connectionId: 'c1' });
    await waitFor(() => expect(socket.sentOfType('subscribe')).toHaveLength(1));
    act(() => {
      socket.receive({ type: 'subscribed', collaborationId: trip.id, version: 1 });
      socket.receive({ type: 'snapshot', collaborationId: trip.id, version: 1, collaboration: trip, messages: [] });
    });

    setHidden(true);
    const at = '2026-11-02T10:00:00Z';
    act(() => {
      socket.receive({
        type: 'collaboration_updated', collaborationId: trip.id, version: 2, action: 'scheduleActivity', actor: { type: 'user', id: 'u2' }, at,
        changes: { updatedFields: { 'activities.0.status': 'scheduled', 'activities.0.scheduledFor': at, 'activities.0.updatedAt': at, version: 2 }, removedFields: [] },
      });
      socket.receive({ type: 'message_created', collaborationId: trip.id, message: { id: 'msg_2', collaborationId: trip.id, author: { type: 'user', id: 'u2' }, text: 'Tent is fine', createdAt: at } });
      socket.receive({ type: 'message_created', collaborationId: trip.id, message: { id: 'msg_3', collaborationId: trip.id, author: { type: 'user', id: 'u1' }, text: 'Mine', createdAt: at } });
    });
    expect(screen.getByTestId('live-announcer')).toHaveTextContent('Bob wrote in “Summer trip”: “Tent is fine”');
    await waitFor(() => expect(document.title).toBe('(1) Tandem'));
    expect(screen.queryByText(/Bob scheduled/)).not.toBeInTheDocument();

    setHidden(false);
    expect(await screen.findByText("Bob scheduled 'Check the tent' in “Summer trip”")).toBeInTheDocument();
    expect(screen.getByText('Bob wrote in “Summer trip”: “Tent is fine”', { selector: '.notice span' })).toBeInTheDocument();
    // My own message is neither toasted nor unread.
    expect(screen.queryByText(/Mine/)).not.toBeInTheDocument();
    unmount();
  });
});
