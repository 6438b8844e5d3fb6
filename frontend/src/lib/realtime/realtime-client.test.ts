import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import { FakeWebSocket } from '@/testing/fake-websocket';
import type { Collaboration, Message } from '@/types/api';

import { RealtimeClient, type RealtimeEvent, type RealtimeOptions } from './realtime-client';

const COL = 'col_1';

function collaboration(version: number, title = 'Trip'): Collaboration {
  return {
    id: COL,
    title,
    description: null,
    status: 'active',
    members: [{ userId: 'u1', email: 'ann@example.com', role: 'owner', joinedAt: '2026-01-01T00:00:00Z' }],
    memberIds: ['u1'],
    activities: [],
    settings: { protectedActions: [] },
    rules: [],
    version,
    createdAt: '2026-01-01T00:00:00Z',
    updatedAt: '2026-01-01T00:00:00Z',
    lastActivityAt: '2026-01-01T00:00:00Z',
  };
}

function message(id: string, text = id): Message {
  return { id, collaborationId: COL, author: { type: 'user', id: 'u1' }, text, createdAt: '2026-01-01T00:00:00Z' };
}

function jwt(expSeconds: number): string {
  const encode = (value: object) => btoa(JSON.stringify(value)).replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_');
  return `${encode({ alg: 'HS256' })}.${encode({ sub: 'u1', exp: expSeconds })}.sig`;
}

function update(version: number, updatedFields: Record<string, unknown>, removedFields: string[] = []) {
  return {
    type: 'collaboration_updated',
    collaborationId: COL,
    version,
    action: 'updateDetails',
    actor: { type: 'user', id: 'u1' },
    at: '2026-01-01T00:00:00Z',
    changes: { updatedFields: { ...updatedFields, version }, removedFields },
  };
}

let client: RealtimeClient;
let getToken: ReturnType<typeof vi.fn<(force: boolean) => Promise<string | null>>>;
let events: RealtimeEvent[];

function makeClient(options: Partial<RealtimeOptions> = {}) {
  getToken = vi.fn(async (force: boolean) => (force ? 'fresh-token' : 'token'));
  client = new RealtimeClient({
    url: 'ws://test/ws',
    getToken,
    createSocket: (url) => new FakeWebSocket(url),
    random: () => 0.5,
    linger: 0,
    pingInterval: 25_000,
    pongTimeout: 10_000,
    ...options,
  });
  events = [];
  client.onEvent((event) => events.push(event));
  return client;
}

/** Let the token promise resolve and the socket be created. */
async function flush(ms = 0) {
  await vi.advanceTimersByTimeAsync(ms);
}

/** Open the latest socket and answer `auth` with `ready`. */
function accept(socket = FakeWebSocket.latest()) {
  socket.open();
  socket.receive({ type: 'ready', userId: 'u1', connectionId: `c${FakeWebSocket.instances.length}` });
  return socket;
}

/** A subscribed, synced collaboration at `version`, with messages. */
async function synced(version = 3, messages: Message[] = [message('msg_01'), message('msg_02')]) {
  client.subscribe(COL);
  client.start();
  await flush();
  const socket = accept();
  socket.receive({ type: 'subscribed', collaborationId: COL, version });
  socket.receive({ type: 'snapshot', collaborationId: COL, version, collaboration: collaboration(version), messages });
  return socket;
}

beforeEach(() => {
  vi.useFakeTimers();
  FakeWebSocket.reset();
  makeClient();
});

afterEach(() => {
  client.stop();
  vi.useRealTimers();
});

describe('connecting and subscribing', () => {
  it('authenticates first, then subscribes, then shows the snapshot', async () => {
    const states: string[] = [];
    client.onStateChange((state) => states.push(state));
    client.subscribe(COL);
    client.start();
    await flush();
    const socket = FakeWebSocket.latest();
    expect(socket.url).toBe('ws://test/ws');
    socket.open();
    expect(socket.sent).toEqual([{ type: 'auth', token: 'token' }]);
    expect(client.getState()).toBe('connecting');

    socket.receive({ type: 'ready', userId: 'u1', connectionId: 'c1' });
    expect(socket.lastSent()).toEqual({ type: 'subscribe', collaborationId: COL });
    expect(client.getView(COL).status).toBe('loading');

    socket.receive({ type: 'subscribed', collaborationId: COL, version: 3 });
    socket.receive({
      type: 'snapshot',
      collaborationId: COL,
      version: 3,
      collaboration: collaboration(3),
      messages: [message('msg_02'), message('msg_01')],
    });
    const view = client.getView(COL);
    expect(view.status).toBe('synced');
    expect(view.version).toBe(3);
    expect(view.collaboration?.title).toBe('Trip');
    expect(view.messages.map((m) => m.id)).toEqual(['msg_01', 'msg_02']);
    expect(states).toEqual(['connecting', 'live']);
  });

  it('subscribes at once when already connected, and unsubscribes on release', async () => {
    client.start();
    await flush();
    const socket = accept();
    const release = client.subscribe(COL);
    expect(socket.lastSent()).toEqual({ type: 'subscribe', collaborationId: COL });
    release();
    expect(socket.lastSent()).toEqual({ type: 'unsubscribe', collaborationId: COL });
    expect(client.getView(COL).status).toBe('idle');
  });

  it('shares one subscription between several users of it', async () => {
    client.start();
    await flush();
    const socket = accept();
    const first = client.subscribe(COL);
    const second = client.subscribe(COL);
    expect(socket.sentOfType('subscribe')).toHaveLength(1);
    first();
    expect(socket.sentOfType('unsubscribe')).toHaveLength(0);
    second();
    expect(socket.sentOfType('unsubscribe')).toHaveLength(1);
  });

  it('notifies watchers with a new view object on every change', async () => {
    const seen: unknown[] = [];
    client.watch(COL, () => seen.push(client.getView(COL)));
    await synced(3);
    const before = client.getView(COL);
    FakeWebSocket.latest().receive(update(4, { title: 'New' }));
    expect(client.getView(COL)).not.toBe(before);
    expect(seen.at(-1)).toBe(client.getView(COL));
  });

  it('reports not_found errors for a collaboration', async () => {
    client.subscribe(COL);
    client.start();
    await flush();
    const socket = accept();
    socket.receive({ type: 'error', code: 'not_found', collaborationId: COL });
    expect(client.getView(COL).status).toBe('not_found');
  });

  it('says why when the server refuses a subscription (100 per connection), reads it over HTTP, and retries', async () => {
    const fetchCollaboration = vi.fn(async () => collaboration(7, 'From HTTP'));
    makeClient({ fetchCollaboration });
    client.subscribe(COL);
    client.start();
    await flush();
    const socket = accept();
    socket.receive({
      type: 'error',
      code: 'invalid_request',
      message: 'At most 100 subscriptions per connection.',
      collaborationId: COL,
    });
    let view = client.getView(COL);
    expect(view.status).toBe('error');
    expect(view.errorCode).toBe('invalid_request');
    expect(view.error).toBe('At most 100 subscriptions per connection.');
    await flush();
    expect(fetchCollaboration).toHaveBeenCalledWith(COL);
    expect(client.getView(COL).collaboration?.title).toBe('From HTTP');
    expect(client.getState()).toBe('live');

    client.retry(COL);
    expect(socket.lastSent()).toEqual({ type: 'subscribe', collaborationId: COL }); // a full snapshot: the HTTP copy has no messages
    expect(client.getView(COL).status).toBe('resyncing');
    socket.receive({ type: 'subscribed', collaborationId: COL, version: 8 });
    socket.receive({ type: 'snapshot', collaborationId: COL, version: 8, collaboration: collaboration(8, 'Live'), messages: [] });
    view = client.getView(COL);
    expect(view).toMatchObject({ status: 'synced', version: 8, error: null, errorCode: null });
    expect(view.collaboration?.title).toBe('Live');
  });

  it('subscribes again after a reconnection when the server had refused it', async () => {
    client.subscribe(COL);
    client.start();
    await flush();
    const socket = accept();
    socket.receive({ type: 'error', code: 'unavailable', message: 'The database did not answer; try again.', collaborationId: COL });
    expect(client.getView(COL).status).toBe('error');
    socket.drop(1006);
    await flush(375);
    const next = accept();
    expect(next.sentOfType('subscribe')).toEqual([{ type: 'subscribe', collaborationId: COL }]);
  });

  it('does not end a live subscription for an error about another frame (a refused presence state)', async () => {
    const socket = await synced(3);
    socket.receive({ type: 'error', code: 'validation_failed', message: 'state: keys may not start with $', collaborationId: COL });
    expect(client.getView(COL)).toMatchObject({ status: 'synced', errorCode: 'validation_failed' });
    socket.receive(update(4, { title: 'Still live' }));
    expect(client.getView(COL).collaboration?.title).toBe('Still live');
  });
});

describe('applying events with version checks', () => {
  it('applies the next version and ignores duplicates', async () => {
    const socket = await synced(3);
    socket.receive(update(4, { title: 'Winter trip' }));
    expect(client.getView(COL).collaboration?.title).toBe('Winter trip');
    expect(client.getView(COL).version).toBe(4);

    const view = client.getView(COL);
    socket.receive(update(4, { title: 'duplicate' }));
    socket.receive(update(2, { title: 'old' }));
    expect(client.getView(COL)).toBe(view);
    expect(client.getView(COL).collaboration?.title).toBe('Winter trip');
  });

  it('applies nested paths, appended elements and removed fields', async () => {
    const socket = await synced(3);
    const activity = { id: 'act_1', title: 'Plan picnic', status: 'proposed' };
    socket.receive(update(4, { activities: [activity] }));
    socket.receive(update(5, { 'activities.0.status': 'scheduled', 'activities.0.scheduledFor': '2026-07-01T10:00:00Z' }));
    socket.receive(
      update(6, { 'members.1': { userId: 'u2', email: 'bo@example.com', role: 'editor', joinedAt: 'x' } }, ['description']),
    );
    const copy = client.getView(COL).collaboration!;
    expect(copy.activities[0]).toMatchObject({ status: 'scheduled', scheduledFor: '2026-07-01T10:00:00Z' });
    expect(copy.members.map((m) => m.userId)).toEqual(['u1', 'u2']);
    expect('description' in copy).toBe(false);
    expect(copy.version).toBe(6);
  });

  it('resubscribes with sinceVersion on a gap, ignores events until subscribed, then applies the replay', async () => {
    const socket = await synced(3);
    socket.receive(update(6, { title: 'from the future' }));
    expect(client.getView(COL).collaboration?.title).toBe('Trip');
    expect(events).toContainEqual({ type: 'gap_detected', collaborationId: COL, expected: 4, received: 6 });
    expect(socket.sent.slice(-2)).toEqual([
      { type: 'unsubscribe', collaborationId: COL },
      { type: 'subscribe', collaborationId: COL, sinceVersion: 3, sinceMessageId: 'msg_02' },
    ]);
    expect(client.getState()).toBe('resyncing');

    socket.receive(update(7, { title: 'still in flight from the old subscription' }));
    expect(client.getView(COL).version).toBe(3);

    socket.receive({ type: 'subscribed', collaborationId: COL, version: 6 });
    expect(client.getState()).toBe('resyncing');
    socket.receive(update(4, { title: 'four' }));
    socket.receive(update(5, { title: 'five' }));
    expect(client.getState()).toBe('resyncing');
    socket.receive(update(6, { title: 'six' }));
    expect(client.getView(COL).collaboration?.title).toBe('six');
    expect(client.getView(COL).status).toBe('synced');
    expect(client.getState()).toBe('live');
  });

  it('takes a snapshot when the server cannot replay the gap', async () => {
    const socket = await synced(3);
    socket.receive(update(9, { title: 'gap' }));
    socket.receive({ type: 'subscribed', collaborationId: COL, version: 9 });
    socket.receive({ type: 'snapshot', collaborationId: COL, version: 9, collaboration: collaboration(9, 'Nine'), messages: [] });
    expect(client.getView(COL)).toMatchObject({ status: 'synced', version: 9 });
    expect(client.getView(COL).collaboration?.title).toBe('Nine');
    socket.receive(update(10, { title: 'Ten' }));
    expect(client.getView(COL).collaboration?.title).toBe('Ten');
  });

  it('resubscribes without sinceVersion on resync_required and keeps the old copy meanwhile', async () => {
    const socket = await synced(3);
    socket.receive({ type: 'resync_required', collaborationId: COL, reason: 'history lost' });
    expect(socket.lastSent()).toEqual({ type: 'subscribe', collaborationId: COL });
    expect(client.getView(COL).status).toBe('resyncing');
    expect(client.getView(COL).collaboration?.title).toBe('Trip');
    expect(client.getState()).toBe('resyncing');

    socket.receive(update(4, { title: 'ignored until the snapshot' }));
    socket.receive({ type: 'subscribed', collaborationId: COL, version: 12 });
    socket.receive({ type: 'snapshot', collaborationId: COL, version: 12, collaboration: collaboration(12, 'Fresh'), messages: [] });
    expect(client.getView(COL)).toMatchObject({ status: 'synced', version: 12 });
    expect(client.getView(COL).collaboration?.title).toBe('Fresh');
    expect(client.getView(COL).messagesEpoch).toBe(2);
    expect(client.getState()).toBe('live');
  });

  it('drops the copy on membership_removed and does not subscribe again after a reconnect', async () => {
    const socket = await synced(3);
    socket.receive({ type: 'membership_removed', collaborationId: COL });
    expect(client.getView(COL)).toMatchObject({ status: 'removed', collaboration: null, messages: [] });
    expect(events.at(-1)).toEqual({ type: 'membership_removed', collaborationId: COL });

    socket.receive(update(4, { title: 'must not arrive' }));
    expect(client.getView(COL).collaboration).toBeNull();

    socket.drop(1006);
    await flush(1_000);
    const next = accept();
    expect(next.sentOfType('subscribe')).toHaveLength(0);
  });

  it('keeps messages in id order without duplicates', async () => {
    const socket = await synced(3);
    socket.receive({ type: 'message_created', collaborationId: COL, message: message('msg_04') });
    socket.receive({ type: 'message_created', collaborationId: COL, message: message('msg_03') });
    socket.receive({ type: 'message_created', collaborationId: COL, message: message('msg_04') });
    expect(client.getView(COL).messages.map((m) => m.id)).toEqual(['msg_01', 'msg_02', 'msg_03', 'msg_04']);
  });

  it('passes presence and approval events on', async () => {
    const socket = await synced(3);
    const members = [{ userId: 'u1', state: { status: 'online' }, since: '2026-01-01T00:00:00Z' }];
    socket.receive({ type: 'presence', collaborationId: COL, members });
    expect(client.getView(COL).presence).toEqual(members);
    const approval = { id: 'apr_1', collaborationId: COL, action: 'cancelActivity', status: 'pending' };
    socket.receive({ type: 'approval_created', collaborationId: COL, approval });
    expect(events.at(-1)).toEqual({ type: 'approval_created', collaborationId: COL, approval });
  });
});

describe('reconnection', () => {
  it('backs off exponentially with jitter while the server is unreachable', async () => {
    client.subscribe(COL);
    client.start();
    await flush();
    expect(FakeWebSocket.instances).toHaveLength(1);

    // random() = 0.5 → delay = 3/4 of the ceiling: 375, 750, 1500, 3000 ms.
    const expected = [375, 750, 1500, 3000];
    for (const [index, delay] of expected.entries()) {
      FakeWebSocket.latest().drop(1006);
      expect(client.getState()).toBe('connecting');
      await flush(delay - 1);
      expect(FakeWebSocket.instances).toHaveLength(index + 1);
      await flush(1);
      expect(FakeWebSocket.instances).toHaveLength(index + 2);
    }
  });

  it('caps the delay and resets it after a successful connection', async () => {
    makeClient({ backoff: { initial: 1000, max: 4000, factor: 2 }, random: () => 1 });
    client.start();
    await flush();
    for (const delay of [1000, 2000, 4000, 4000]) {
      FakeWebSocket.latest().drop(1006);
      await flush(delay);
    }
    const count = FakeWebSocket.instances.length;
    accept();
    FakeWebSocket.latest().drop(1001);
    expect(client.getState()).toBe('reconnecting');
    await flush(999);
    expect(FakeWebSocket.instances).toHaveLength(count);
    await flush(1);
    expect(FakeWebSocket.instances).toHaveLength(count + 1);
  });

  it('resumes after the last message received, which need not have the largest id', async () => {
    const socket = await synced(3);
    socket.receive({ type: 'message_created', collaborationId: COL, message: message('msg_09') });
    socket.receive({ type: 'message_created', collaborationId: COL, message: message('msg_05') }); // committed later
    socket.receive({ type: 'message_created', collaborationId: COL, message: message('msg_09') }); // a duplicate
    expect(client.getView(COL).messages.map((m) => m.id)).toEqual(['msg_01', 'msg_02', 'msg_05', 'msg_09']);
    socket.drop(1006);
    await flush(375);
    const next = FakeWebSocket.latest();
    next.open();
    next.receive({ type: 'ready', userId: 'u1', connectionId: 'c2' });
    expect(next.lastSent()).toEqual({ type: 'subscribe', collaborationId: COL, sinceVersion: 3, sinceMessageId: 'msg_05' });
  });

  it('resumes every subscription with sinceVersion and sinceMessageId after a reconnect', async () => {
    const socket = await synced(3);
    socket.receive(update(4, { title: 'Four' }));
    socket.receive({ type: 'message_created', collaborationId: COL, message: message('msg_07') });
    const states: string[] = [];
    client.onStateChange((state) => states.push(state));

    socket.drop(1006);
    expect(client.getState()).toBe('reconnecting');
    await flush(375);
    const next = FakeWebSocket.latest();
    expect(next).not.toBe(socket);
    next.open();
    expect(next.sent[0]).toEqual({ type: 'auth', token: 'token' });
    next.receive({ type: 'ready', userId: 'u1', connectionId: 'c2' });
    expect(next.lastSent()).toEqual({ type: 'subscribe', collaborationId: COL, sinceVersion: 4, sinceMessageId: 'msg_07' });
    expect(client.getState()).toBe('resyncing');
    // The old copy stays on screen while catching up.
    expect(client.getView(COL).collaboration?.title).toBe('Four');

    next.receive({ type: 'subscribed', collaborationId: COL, version: 5 });
    next.receive(update(5, { title: 'Five' }));
    expect(client.getView(COL).collaboration?.title).toBe('Five');
    expect(states).toEqual(['reconnecting', 'resyncing', 'live']);
  });

  it('is live at once when nothing was missed', async () => {
    const socket = await synced(3);
    socket.drop(1001);
    await flush(375);
    const next = accept();
    next.receive({ type: 'subscribed', collaborationId: COL, version: 3 });
    expect(client.getState()).toBe('live');
    expect(client.getView(COL).status).toBe('synced');
  });

  it('re-authenticates with a fresh token after 4401', async () => {
    const socket = await synced(3);
    expect(getToken).toHaveBeenLastCalledWith(false);
    socket.drop(4401, 'token expired');
    await flush(375);
    expect(getToken).toHaveBeenLastCalledWith(true);
    const next = FakeWebSocket.latest();
    next.open();
    expect(next.sent[0]).toEqual({ type: 'auth', token: 'fresh-token' });
  });

  it('goes offline and tells the UI when there is no token any more', async () => {
    const socket = await synced(3);
    getToken.mockResolvedValue(null);
    socket.drop(4401);
    await flush(375);
    expect(client.getState()).toBe('offline');
    expect(events.at(-1)).toEqual({ type: 'auth_required' });
    await flush(60_000);
    expect(FakeWebSocket.instances).toHaveLength(1);
  });

  it('keeps reconnecting with backoff while a token refresh fails for now (network, 5xx)', async () => {
    const socket = await synced(3);
    getToken.mockRejectedValue(new Error('sign-in service unreachable'));
    socket.drop(4401, 'token expired');
    await flush(375);
    expect(getToken).toHaveBeenLastCalledWith(true);
    expect(client.getState()).toBe('reconnecting');
    // The next attempts come after a growing delay and still ask for a fresh token.
    await flush(749);
    expect(getToken).toHaveBeenCalledTimes(2);
    await flush(1);
    expect(getToken).toHaveBeenCalledTimes(3);
    expect(getToken).toHaveBeenLastCalledWith(true);
    expect(events).not.toContainEqual({ type: 'auth_required' });

    getToken.mockImplementation(async (force: boolean) => (force ? 'fresh-token' : 'token'));
    await flush(1_500);
    const next = FakeWebSocket.latest();
    expect(FakeWebSocket.instances).toHaveLength(2);
    next.open();
    expect(next.sent[0]).toEqual({ type: 'auth', token: 'fresh-token' });
    next.receive({ type: 'ready', userId: 'u1', connectionId: 'c2' });
    expect(client.getState()).not.toBe('offline');
  });

  it('comes back quickly after 4009 (too slow) and resumes with sinceVersion', async () => {
    const socket = await synced(3);
    socket.drop(4009, 'slow consumer');
    await flush(375);
    const next = accept();
    expect(next.lastSent()).toMatchObject({ type: 'subscribe', sinceVersion: 3 });
  });

  it('waits at least five seconds after 4429 (rate limited)', async () => {
    const socket = await synced(3);
    socket.drop(4429, 'rate limited');
    await flush(4_999);
    expect(FakeWebSocket.instances).toHaveLength(1);
    await flush(1);
    expect(FakeWebSocket.instances).toHaveLength(2);
  });

  it('retries after 4408 (auth too slow) with backoff', async () => {
    client.start();
    await flush();
    FakeWebSocket.latest().open();
    FakeWebSocket.latest().drop(4408);
    await flush(375);
    expect(FakeWebSocket.instances).toHaveLength(2);
  });

  it('stops for good on stop() and goes offline', async () => {
    const socket = await synced(3);
    client.stop();
    expect(socket.closedWith?.code).toBe(1000);
    expect(client.getState()).toBe('offline');
    await flush(60_000);
    expect(FakeWebSocket.instances).toHaveLength(1);
  });

  it('waits for the network to come back', async () => {
    const socket = await synced(3);
    client.setNetworkAvailable(false);
    expect(client.getState()).toBe('offline');
    expect(socket.closedWith).not.toBeNull();
    await flush(60_000);
    expect(FakeWebSocket.instances).toHaveLength(1);
    client.setNetworkAvailable(true);
    await flush();
    expect(FakeWebSocket.instances).toHaveLength(2);
  });
});

describe('keeping the connection healthy', () => {
  it('pings periodically and reconnects when nothing comes back', async () => {
    const socket = await synced(3);
    await flush(25_000);
    expect(socket.lastSent()).toEqual({ type: 'ping' });
    socket.receive({ type: 'pong' });
    await flush(25_000);
    expect(socket.sentOfType('ping')).toHaveLength(2);
    // No pong this time: after the timeout the socket is given up.
    await flush(10_000);
    expect(socket.closedWith?.code).toBe(4000);
    expect(client.getState()).toBe('reconnecting');
    await flush(375);
    expect(FakeWebSocket.instances).toHaveLength(2);
  });

  it('refreshes the token before it expires', async () => {
    vi.setSystemTime(new Date('2026-01-01T00:00:00Z'));
    makeClient({ pingInterval: 0 });
    const now = Date.now() / 1000;
    getToken.mockImplementation(async (force: boolean) => (force ? jwt(now + 3600) : jwt(now + 120)));
    const socket = await synced(3);
    await flush(59_000);
    expect(socket.sentOfType('refresh_token')).toHaveLength(0);
    await flush(1_000);
    expect(getToken).toHaveBeenLastCalledWith(true);
    expect(socket.sentOfType('refresh_token')).toEqual([{ type: 'refresh_token', token: jwt(now + 3600) }]);
  });

  it('tries the refresh again a little later when it fails for now, without dropping the socket', async () => {
    vi.setSystemTime(new Date('2026-01-01T00:00:00Z'));
    makeClient({ pingInterval: 0 });
    const now = Date.now() / 1000;
    getToken.mockImplementation(async () => jwt(now + 120));
    const socket = await synced(3);
    getToken.mockRejectedValueOnce(new Error('503 from the sign-in service'));
    await flush(60_000);
    expect(getToken).toHaveBeenLastCalledWith(true);
    expect(socket.sentOfType('refresh_token')).toHaveLength(0);
    expect(socket.closedWith).toBeNull();
    getToken.mockImplementation(async (force: boolean) => (force ? jwt(now + 3600) : jwt(now + 120)));
    await flush(5_000);
    expect(socket.sentOfType('refresh_token')).toEqual([{ type: 'refresh_token', token: jwt(now + 3600) }]);
  });

  it('re-sends my presence after resubscribing', async () => {
    client.subscribe(COL);
    client.setPresence(COL, { status: 'online', view: 'activities' });
    client.start();
    await flush();
    const socket = accept();
    expect(socket.sentOfType('presence')).toHaveLength(0);
    socket.receive({ type: 'subscribed', collaborationId: COL, version: 1 });
    expect(socket.lastSent()).toEqual({ type: 'presence', collaborationId: COL, state: { status: 'online', view: 'activities' } });
    socket.drop(1006);
    await flush(375);
    const next = accept();
    next.receive({ type: 'subscribed', collaborationId: COL, version: 1 });
    expect(next.sentOfType('presence')).toHaveLength(1);
  });

  it('says I am away when I leave the page, and does not announce me again after a resubscribe', async () => {
    client.start();
    await flush();
    const socket = accept();
    const release = client.subscribe(COL); // kept by someone else too (the shell), so it stays subscribed
    client.subscribe(COL);
    socket.receive({ type: 'subscribed', collaborationId: COL, version: 1 });
    socket.receive({ type: 'snapshot', collaborationId: COL, version: 1, collaboration: collaboration(1), messages: [] });
    client.setPresence(COL, { status: 'online', view: 'collaboration' });
    expect(socket.lastSent()).toEqual({ type: 'presence', collaborationId: COL, state: { status: 'online', view: 'collaboration' } });

    client.clearPresence(COL);
    release();
    expect(socket.lastSent()).toEqual({ type: 'presence', collaborationId: COL, state: { status: 'away' } });
    const sent = socket.sentOfType('presence').length;
    client.clearPresence(COL); // nothing more to say
    expect(socket.sentOfType('presence')).toHaveLength(sent);

    // A gap makes the client subscribe again: my old state is not re-sent.
    socket.receive(update(3, { title: 'Gap' }));
    expect(socket.lastSent()).toEqual({ type: 'subscribe', collaborationId: COL, sinceVersion: 1 });
    socket.receive({ type: 'subscribed', collaborationId: COL, version: 3 });
    expect(socket.sentOfType('presence')).toHaveLength(sent);

    // Nor after a reconnection.
    socket.drop(1006);
    await flush(375);
    const next = accept();
    next.receive({ type: 'subscribed', collaborationId: COL, version: 3 });
    expect(next.sentOfType('presence')).toHaveLength(0);
  });
});

describe('reading over HTTP while the socket is down', () => {
  it('shows a stale copy, then takes a full snapshot once connected', async () => {
    const fetchCollaboration = vi.fn(async () => collaboration(5, 'From HTTP'));
    makeClient({ fetchCollaboration, fallbackDelay: 1_000, fallbackInterval: 10_000 });
    client.subscribe(COL);
    client.start();
    await flush();
    FakeWebSocket.latest().drop(1006); // the socket cannot connect
    await flush(1_000);
    expect(fetchCollaboration).toHaveBeenCalledWith(COL);
    expect(client.getView(COL)).toMatchObject({ status: 'stale', version: 0 });
    expect(client.getView(COL).collaboration?.title).toBe('From HTTP');

    await flush(10_000);
    expect(fetchCollaboration).toHaveBeenCalledTimes(2);

    const socket = accept();
    expect(socket.lastSent()).toEqual({ type: 'subscribe', collaborationId: COL });
    socket.receive({ type: 'subscribed', collaborationId: COL, version: 6 });
    socket.receive(update(6, { title: 'not applied to a stale copy' }));
    expect(client.getView(COL).collaboration?.title).toBe('From HTTP');
    socket.receive({ type: 'snapshot', collaborationId: COL, version: 6, collaboration: collaboration(6, 'Live'), messages: [] });
    expect(client.getView(COL)).toMatchObject({ status: 'synced', version: 6 });
    await flush(30_000);
    expect(fetchCollaboration).toHaveBeenCalledTimes(2);
  });

  it('does not read over HTTP when the snapshot comes in time', async () => {
    const fetchCollaboration = vi.fn(async () => collaboration(5));
    makeClient({ fetchCollaboration, fallbackDelay: 1_000 });
    await synced(3);
    await flush(5_000);
    expect(fetchCollaboration).not.toHaveBeenCalled();
  });
});

describe('stream sequence (seq)', () => {
  /** A subscribed, synced collaboration at `version`, whose stream is at `seq`. */
  async function syncedWithSeq(version: number, seq: number) {
    client.subscribe(COL);
    client.start();
    await flush();
    const socket = accept();
    socket.receive({ type: 'subscribed', collaborationId: COL, version, seq });
    socket.receive({ type: 'snapshot', collaborationId: COL, version, seq, collaboration: collaboration(version), messages: [message('msg_01')] });
    return socket;
  }

  function messageAt(seq: number, id: string) {
    return { type: 'message_created', collaborationId: COL, seq, message: message(id) };
  }

  it('applies an event only at lastSeq + 1 and ignores one at or below it', async () => {
    const socket = await syncedWithSeq(3, 10);
    socket.receive(messageAt(11, 'msg_02'));
    socket.receive({ ...update(4, { title: 'Four' }), seq: 12 });
    // Duplicates (a replay overlapping live events): the same seq again, or an older one.
    socket.receive(messageAt(11, 'msg_02b'));
    socket.receive({ ...update(4, { title: 'Four again' }), seq: 12 });
    socket.receive(messageAt(5, 'msg_00'));
    const view = client.getView(COL);
    expect(view.messages.map((m) => m.id)).toEqual(['msg_01', 'msg_02']);
    expect(view.collaboration?.title).toBe('Four');
    expect(view.version).toBe(4);
    expect(events.some((event) => event.type === 'gap_detected')).toBe(false);
  });

  it('on a gap subscribes again with sinceSeq, ignores what is in flight, and applies the replay in order', async () => {
    const socket = await syncedWithSeq(3, 10);
    socket.receive(messageAt(11, 'msg_02'));
    socket.receive(messageAt(13, 'msg_04'));
    expect(events).toContainEqual({ type: 'gap_detected', collaborationId: COL, expected: 12, received: 13 });
    expect(socket.sent.slice(-2)).toEqual([
      { type: 'unsubscribe', collaborationId: COL },
      { type: 'subscribe', collaborationId: COL, sinceSeq: 11 },
    ]);
    expect(client.getView(COL).messages.map((m) => m.id)).toEqual(['msg_01', 'msg_02']);
    socket.receive(messageAt(14, 'msg_05')); // still from the old subscription
    expect(client.getView(COL).messages.map((m) => m.id)).toEqual(['msg_01', 'msg_02']);

    socket.receive({ type: 'subscribed', collaborationId: COL, version: 4, seq: 14 });
    expect(client.getState()).toBe('resyncing');
    socket.receive({ ...update(4, { title: 'Four' }), seq: 12 });
    socket.receive(messageAt(13, 'msg_04'));
    expect(client.getState()).toBe('resyncing');
    socket.receive(messageAt(14, 'msg_05'));
    expect(client.getView(COL).messages.map((m) => m.id)).toEqual(['msg_01', 'msg_02', 'msg_04', 'msg_05']);
    expect(client.getView(COL)).toMatchObject({ status: 'synced', version: 4 });
    expect(client.getState()).toBe('live');
  });

  it('resumes with sinceSeq alone after a reconnect', async () => {
    const socket = await syncedWithSeq(3, 10);
    socket.receive({ ...update(4, { title: 'Four' }), seq: 11 });
    socket.receive(messageAt(12, 'msg_02'));
    socket.drop(1006);
    await flush(375);
    const next = accept();
    expect(next.lastSent()).toEqual({ type: 'subscribe', collaborationId: COL, sinceSeq: 12 });
    next.receive({ type: 'subscribed', collaborationId: COL, version: 4, seq: 12 });
    expect(client.getState()).toBe('live');
  });

  it('falls back to sinceVersion and sinceMessageId when the server sends no seq', async () => {
    const socket = await synced(3);
    socket.receive({ type: 'message_created', collaborationId: COL, message: message('msg_03') });
    socket.drop(1006);
    await flush(375);
    const next = accept();
    expect(next.lastSent()).toEqual({ type: 'subscribe', collaborationId: COL, sinceVersion: 3, sinceMessageId: 'msg_03' });
  });

  it('takes a fresh snapshot when an event in sequence does not follow the copy version', async () => {
    const socket = await syncedWithSeq(3, 10);
    socket.receive({ ...update(6, { title: 'Six' }), seq: 11 });
    expect(client.getView(COL).collaboration?.title).toBe('Trip');
    expect(socket.lastSent()).toEqual({ type: 'subscribe', collaborationId: COL });
  });
});
