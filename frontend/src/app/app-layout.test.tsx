// @vitest-environment jsdom
import { render, screen, waitFor } from '@testing-library/react';
import { MemoryRouter, Route, Routes } from 'react-router';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import { AuthContext, type AuthContextValue } from '@/lib/auth/auth-context';
import type { AuthService } from '@/lib/auth/auth-service';
import { queryCache } from '@/lib/query-cache';
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
