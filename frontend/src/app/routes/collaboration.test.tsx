// @vitest-environment jsdom
import { act, render, screen } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { MemoryRouter, Route, Routes } from 'react-router';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import { AuthContext, type AuthContextValue } from '@/lib/auth/auth-context';
import type { AuthService } from '@/lib/auth/auth-service';
import { RealtimeClient } from '@/lib/realtime/realtime-client';
import { RealtimeContext } from '@/lib/realtime/realtime-context';
import { FakeWebSocket } from '@/testing/fake-websocket';
import type { Collaboration } from '@/types/api';

import { CollaborationRoute } from './collaboration';

const auth: AuthContextValue = {
  config: { authMode: 'dev', maxMessageChars: 4000 },
  session: { user: { id: 'u1', email: 'ann@example.com' }, accessToken: 'token', expiresAt: null, method: 'dev' },
  service: {} as AuthService,
};

const trip: Collaboration = {
  id: 'col_1',
  title: 'Summer trip',
  description: null,
  status: 'active',
  members: [{ userId: 'u1', email: 'ann@example.com', role: 'owner', joinedAt: '' }],
  memberIds: ['u1'],
  activities: [],
  settings: { protectedActions: [] },
  rules: [],
  version: 4,
  createdAt: '',
  updatedAt: '',
  lastActivityAt: '',
};

let client: RealtimeClient;
let socket: FakeWebSocket;

beforeEach(async () => {
  FakeWebSocket.reset();
  client = new RealtimeClient({ url: 'ws://test/ws', getToken: async () => 't', createSocket: (u) => new FakeWebSocket(u), linger: 0 });
  client.start();
  await new Promise((resolve) => setTimeout(resolve, 0));
  socket = FakeWebSocket.latest();
  socket.open();
  socket.receive({ type: 'ready', userId: 'u1', connectionId: 'c1' });
});

afterEach(() => {
  client.stop();
  vi.unstubAllGlobals();
});

function renderPage() {
  return render(
    <AuthContext.Provider value={auth}>
      <RealtimeContext.Provider value={client}>
        <MemoryRouter initialEntries={['/collaborations/col_1']}>
          <Routes>
            <Route path="/collaborations/:collaborationId" element={<CollaborationRoute />} />
          </Routes>
        </MemoryRouter>
      </RealtimeContext.Provider>
    </AuthContext.Provider>,
  );
}

describe('<CollaborationRoute> when the server refuses the subscription', () => {
  it('says why in words with a Try again button instead of spinning forever, and loads once it works', async () => {
    renderPage();
    expect(screen.getByText('Loading collaboration…')).toBeInTheDocument();
    expect(socket.sentOfType('subscribe')).toEqual([{ type: 'subscribe', collaborationId: 'col_1' }]);

    act(() =>
      socket.receive({ type: 'error', code: 'invalid_request', message: 'At most 100 subscriptions per connection.', collaborationId: 'col_1' }),
    );
    const alert = screen.getByRole('alert');
    expect(alert).toHaveTextContent('This collaboration could not be opened');
    expect(alert).toHaveTextContent('Too many collaborations are open in this browser at once');
    expect(screen.queryByText('Loading collaboration…')).not.toBeInTheDocument();

    await userEvent.click(screen.getByRole('button', { name: 'Try again' }));
    expect(socket.sentOfType('subscribe')).toHaveLength(2);
    act(() => {
      socket.receive({ type: 'subscribed', collaborationId: 'col_1', version: 4 });
      socket.receive({ type: 'snapshot', collaborationId: 'col_1', version: 4, collaboration: trip, messages: [] });
    });
    expect(screen.getByRole('heading', { level: 1, name: 'Summer trip' })).toBeInTheDocument();
    expect(screen.queryByRole('button', { name: 'Try again' })).not.toBeInTheDocument();
  });

  it('shows the copy read over HTTP with a banner that says live updates are off', async () => {
    client.stop();
    FakeWebSocket.reset();
    client = new RealtimeClient({
      url: 'ws://test/ws',
      getToken: async () => 't',
      createSocket: (u) => new FakeWebSocket(u),
      linger: 0,
      fetchCollaboration: async () => trip,
    });
    client.start();
    await new Promise((resolve) => setTimeout(resolve, 0));
    socket = FakeWebSocket.latest();
    socket.open();
    socket.receive({ type: 'ready', userId: 'u1', connectionId: 'c1' });
    vi.stubGlobal('fetch', vi.fn(async () => new Response(JSON.stringify({ messages: [], hasMore: false }), { status: 200 })));
    renderPage();
    act(() => socket.receive({ type: 'error', code: 'unavailable', message: 'The database did not answer; try again.', collaborationId: 'col_1' }));
    expect(await screen.findByRole('heading', { level: 1, name: 'Summer trip' })).toBeInTheDocument();
    const banner = screen.getAllByRole('alert').find((el) => el.textContent?.includes('Live updates'))!;
    expect(banner).toHaveTextContent('Live updates for this collaboration are off: the server is briefly unavailable.');
    await userEvent.click(screen.getByRole('button', { name: 'Try again' }));
    expect(socket.sentOfType('subscribe')).toHaveLength(2);
  });
});
