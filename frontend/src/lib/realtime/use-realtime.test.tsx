// @vitest-environment jsdom
import { act, render, screen } from '@testing-library/react';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import { ConnectionStatus } from '@/components/connection-status';
import { FakeWebSocket } from '@/testing/fake-websocket';

import { RealtimeClient } from './realtime-client';
import { RealtimeContext } from './realtime-context';
import { useCollaborationSubscription, usePresence } from './use-realtime';

function Title({ id }: { id: string }) {
  const view = useCollaborationSubscription(id);
  return <h1>{view.collaboration ? `${view.collaboration.title} v${view.version}` : view.status}</h1>;
}

function Page({ id, visible = true }: { id: string; visible?: boolean }) {
  const view = useCollaborationSubscription(id);
  usePresence(id, { status: visible ? 'online' : 'away', view: 'collaboration' });
  return <p>{view.status}</p>;
}

let client: RealtimeClient;

beforeEach(() => {
  vi.useFakeTimers();
  FakeWebSocket.reset();
  client = new RealtimeClient({
    url: 'ws://test/ws',
    getToken: async () => 'token',
    createSocket: (url) => new FakeWebSocket(url),
    random: () => 0.5,
    linger: 0,
  });
});

afterEach(() => {
  client.stop();
  vi.useRealTimers();
});

describe('React bindings', () => {
  it('renders the live copy and the connection state', async () => {
    render(
      <RealtimeContext.Provider value={client}>
        <ConnectionStatus />
        <Title id="col_1" />
      </RealtimeContext.Provider>,
    );
    expect(screen.getByRole('heading')).toHaveTextContent('loading');
    client.start();
    await act(() => vi.advanceTimersByTimeAsync(0));
    expect(screen.getByTestId('connection-state')).toHaveTextContent('Connecting…');

    const socket = FakeWebSocket.latest();
    act(() => {
      socket.open();
      socket.receive({ type: 'ready', userId: 'u1', connectionId: 'c1' });
    });
    expect(socket.lastSent()).toEqual({ type: 'subscribe', collaborationId: 'col_1' });
    act(() => {
      socket.receive({ type: 'subscribed', collaborationId: 'col_1', version: 2 });
      socket.receive({
        type: 'snapshot',
        collaborationId: 'col_1',
        version: 2,
        collaboration: { id: 'col_1', title: 'Trip', version: 2, members: [], activities: [] },
        messages: [],
      });
    });
    expect(screen.getByRole('heading')).toHaveTextContent('Trip v2');
    expect(screen.getByTestId('connection-state')).toHaveAttribute('data-state', 'live');

    act(() => {
      socket.receive({
        type: 'collaboration_updated',
        collaborationId: 'col_1',
        version: 3,
        action: 'updateDetails',
        actor: { type: 'user', id: 'u2' },
        at: '2026-01-01T00:00:00Z',
        changes: { updatedFields: { title: 'Road trip', version: 3 }, removedFields: [] },
      });
    });
    expect(screen.getByRole('heading')).toHaveTextContent('Road trip v3');

    act(() => socket.drop(1006));
    expect(screen.getByTestId('connection-state')).toHaveTextContent('Reconnecting…');
    expect(screen.getByRole('button', { name: 'Retry now' })).toBeInTheDocument();
  });

  it('unsubscribes when the component unmounts', async () => {
    client.start();
    await vi.advanceTimersByTimeAsync(0);
    const socket = FakeWebSocket.latest();
    socket.open();
    socket.receive({ type: 'ready', userId: 'u1', connectionId: 'c1' });
    const { unmount } = render(
      <RealtimeContext.Provider value={client}>
        <Title id="col_9" />
      </RealtimeContext.Provider>,
    );
    expect(socket.sentOfType('subscribe')).toEqual([{ type: 'subscribe', collaborationId: 'col_9' }]);
    unmount();
    expect(socket.lastSent()).toEqual({ type: 'unsubscribe', collaborationId: 'col_9' });
  });

  it('announces my presence on the page and says I am away once I leave it, even if it stays subscribed', async () => {
    client.start();
    await vi.advanceTimersByTimeAsync(0);
    const socket = FakeWebSocket.latest();
    socket.open();
    socket.receive({ type: 'ready', userId: 'u1', connectionId: 'c1' });
    const shell = client.subscribe('col_1'); // the shell keeps it (an owner's collaboration)
    socket.receive({ type: 'subscribed', collaborationId: 'col_1', version: 1 });
    socket.receive({
      type: 'snapshot',
      collaborationId: 'col_1',
      version: 1,
      collaboration: { id: 'col_1', title: 'Trip', version: 1, members: [], activities: [] },
      messages: [],
    });
    const { rerender, unmount } = render(
      <RealtimeContext.Provider value={client}>
        <Page id="col_1" />
      </RealtimeContext.Provider>,
    );
    expect(socket.sentOfType('presence')).toEqual([
      { type: 'presence', collaborationId: 'col_1', state: { status: 'online', view: 'collaboration' } },
    ]);
    rerender(
      <RealtimeContext.Provider value={client}>
        <Page id="col_1" visible={false} />
      </RealtimeContext.Provider>,
    );
    expect(socket.lastSent()).toEqual({ type: 'presence', collaborationId: 'col_1', state: { status: 'away', view: 'collaboration' } });

    unmount();
    expect(socket.lastSent()).toEqual({ type: 'presence', collaborationId: 'col_1', state: { status: 'away' } });
    expect(socket.sentOfType('unsubscribe')).toEqual([]);
    // Resubscribing (resync_required) does not bring the old state back.
    socket.receive({ type: 'resync_required', collaborationId: 'col_1', reason: 'test' });
    socket.receive({ type: 'subscribed', collaborationId: 'col_1', version: 1 });
    expect(socket.sentOfType('presence')).toHaveLength(3);
    shell();
  });
});
