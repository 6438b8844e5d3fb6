import { IDBFactory } from 'fake-indexeddb';
import { describe, expect, it, vi } from 'vitest';

import { ApiError } from '@/lib/api-client';
import type { ActionOutcome } from '@/types/api';

import { isTransient, OfflineQueue, type QueuedAction, type SendAction } from './offline-queue';
import { indexedDbQueueStore, type QueueStore } from './queue-store';

const APPLIED: ActionOutcome = { kind: 'applied', collaborationId: 'c1', version: 2, result: null };

function apiError(status: number, code: string) {
  return new ApiError(status, { code, message: code, details: {} });
}

async function until(check: () => boolean, what = 'condition'): Promise<void> {
  const start = Date.now();
  while (!check()) {
    if (Date.now() - start > 2_000) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

let keys = 0;

function makeQueue(store: QueueStore, send: SendAction, extra: Partial<ConstructorParameters<typeof OfflineQueue>[0]> = {}) {
  return new OfflineQueue({
    store,
    send,
    newKey: () => `key-${++keys}`,
    backoff: { initial: 20, max: 20, factor: 1 },
    random: () => 0.5,
    ...extra,
  });
}

function idbStore(factory: IDBFactory): QueueStore {
  const store = indexedDbQueueStore('test-queue', factory);
  if (!store) throw new Error('no IndexedDB');
  return store;
}

describe('IndexedDB queue store', () => {
  it('keeps actions across a new store on the same database (a reload)', async () => {
    const factory = new IDBFactory();
    const first = idbStore(factory);
    const action: QueuedAction = {
      key: 'k1', order: 1, userId: 'u1', name: 'sendMessage', collaborationId: 'c1', payload: { text: 'hi' },
      createdAt: '2026-01-01T00:00:00Z', state: 'queued',
    };
    await first.put(action);
    await first.put({ ...action, key: 'k2', order: 2 });
    await first.remove('k1');
    const second = idbStore(factory);
    expect(await second.load()).toEqual([{ ...action, key: 'k2', order: 2 }]);
  });

  it('is null where the browser has no IndexedDB', () => {
    expect(indexedDbQueueStore('x', undefined)).toBeNull();
  });
});

describe('offline queue', () => {
  it('sends in order, each action with its own key, and keeps the key when the network fails', async () => {
    const store = idbStore(new IDBFactory());
    const sent: Array<[string, unknown]> = [];
    let failures = 1;
    const queue = makeQueue(store, async (action) => {
      sent.push([action.key, action.payload.text]);
      if (failures > 0) {
        failures -= 1;
        throw apiError(0, 'network'); // the answer was lost: the same key goes again
      }
      return APPLIED;
    });
    await queue.setUser('u1');
    const a = await queue.submit('sendMessage', 'c1', { text: 'one' });
    const b = await queue.submit('sendMessage', 'c1', { text: 'two' });
    await expect(a.outcome).resolves.toEqual(APPLIED);
    await expect(b.outcome).resolves.toEqual(APPLIED);
    expect(sent).toEqual([[a.key, 'one'], [a.key, 'one'], [b.key, 'two']]);
    expect(a.key).not.toBe(b.key);
    expect(queue.getEntries()).toEqual([]);
    expect(await store.load()).toEqual([]);
  });

  it('sends nothing while offline, shows the actions as waiting, and sends them once online', async () => {
    let online = false;
    const send = vi.fn(async (_action: QueuedAction) => APPLIED);
    const queue = makeQueue(idbStore(new IDBFactory()), send, { isOnline: () => online });
    await queue.setUser('u1');
    await queue.submit('sendMessage', 'c1', { text: 'one' });
    await queue.submit('completeActivity', 'c1', { activityId: 'a1' });
    expect(send).not.toHaveBeenCalled();
    expect(queue.getEntries().map((entry) => [entry.name, entry.status])).toEqual([
      ['sendMessage', 'waiting'],
      ['completeActivity', 'waiting'],
    ]);
    online = true;
    queue.networkChanged();
    await until(() => queue.getEntries().length === 0, 'the queue to empty');
    expect(send.mock.calls.map(([action]) => action.name)).toEqual(['sendMessage', 'completeActivity']);
  });

  it('waits and tries again after a 5xx, with the same key', async () => {
    const keysSent: string[] = [];
    let answers = [apiError(503, 'unavailable'), apiError(500, 'internal')];
    const queue = makeQueue(idbStore(new IDBFactory()), async (action) => {
      keysSent.push(action.key);
      const next = answers[0];
      answers = answers.slice(1);
      if (next) throw next;
      return APPLIED;
    });
    await queue.setUser('u1');
    const submitted = await queue.submit('sendMessage', 'c1', { text: 'x' });
    await expect(submitted.outcome).resolves.toEqual(APPLIED);
    expect(keysSent).toEqual([submitted.key, submitted.key, submitted.key]);
  });

  it('hands a refusal back to a submitter still waiting, and keeps nothing', async () => {
    const store = idbStore(new IDBFactory());
    const queue = makeQueue(store, async () => {
      throw apiError(409, 'version_conflict');
    });
    await queue.setUser('u1');
    const submitted = await queue.submit('sendMessage', 'c1', { text: 'x' });
    const settled = await submitted.settled;
    expect(settled).toMatchObject({ kind: 'refused', error: { code: 'version_conflict' } });
    await expect(submitted.outcome).resolves.toBeNull();
    expect(queue.getEntries()).toEqual([]);
    expect(await store.load()).toEqual([]);
  });

  it('parks actions without a connection; refused later, one is kept as failed and the next goes on; retry (new key), discard', async () => {
    const store = idbStore(new IDBFactory());
    const sent: string[] = [];
    let online = false;
    let refuse = true;
    const queue = makeQueue(
      store,
      async (action) => {
        sent.push(`${action.name}:${action.key}`);
        if (action.name === 'completeActivity' && refuse) throw apiError(403, 'rule_denied');
        return APPLIED;
      },
      { isOnline: () => online },
    );
    await queue.setUser('u1');
    const refused = await queue.submit('completeActivity', 'c1', { activityId: 'a1' });
    const after = await queue.submit('sendMessage', 'c1', { text: 'after' });
    await expect(refused.settled).resolves.toEqual({ kind: 'queued' });
    await expect(after.settled).resolves.toEqual({ kind: 'queued' });
    online = true;
    queue.networkChanged();
    await expect(refused.outcome).resolves.toBeNull();
    await expect(after.outcome).resolves.toEqual(APPLIED);
    const [failed] = queue.getEntries();
    expect(failed).toMatchObject({ key: refused.key, status: 'failed', error: { status: 403, code: 'rule_denied' } });
    // Still there after a reload.
    expect((await store.load()).map((item) => [item.key, item.state])).toEqual([[refused.key, 'failed']]);

    refuse = false;
    await queue.retry(refused.key);
    await until(() => queue.getEntries().length === 0, 'the retried action to be sent');
    expect(sent).toHaveLength(3);
    expect(sent[2]).toMatch(/^completeActivity:/);
    expect(sent[2]).not.toBe(`completeActivity:${refused.key}`);

    refuse = true;
    online = false;
    const again = await queue.submit('completeActivity', 'c1', { activityId: 'a2' });
    await again.settled;
    online = true;
    queue.networkChanged();
    await again.outcome;
    expect(queue.getEntries()).toMatchObject([{ key: again.key, status: 'failed' }]);
    await queue.discard(again.key);
    expect(queue.getEntries()).toEqual([]);
    expect(await store.load()).toEqual([]);
  });

  it('after a reload, a new queue on the same database sends what was left, with the original keys', async () => {
    const factory = new IDBFactory();
    const before = makeQueue(idbStore(factory), async () => APPLIED, { isOnline: () => false });
    await before.setUser('u1');
    const one = await before.submit('sendMessage', 'c1', { text: 'one' });
    const two = await before.submit('sendMessage', 'c1', { text: 'two' });
    // Someone else's queued action in the same browser is neither shown nor sent.
    await before.setUser('u2');
    await before.submit('sendMessage', 'c1', { text: 'not mine' });

    const sent: Array<[string, unknown]> = [];
    const unclaimed = vi.fn();
    const after = makeQueue(
      idbStore(factory),
      async (action) => {
        sent.push([action.key, action.payload.text]);
        return APPLIED;
      },
      { onUnclaimed: unclaimed },
    );
    await after.setUser('u1');
    await until(() => after.getEntries().length === 0, 'the old queue to be sent');
    expect(sent).toEqual([[one.key, 'one'], [two.key, 'two']]);
    expect(unclaimed).toHaveBeenCalledTimes(2);
  });

  it('counts an attempt without an answer in time as lost, and sends it again with the same key', async () => {
    const keysSent: string[] = [];
    const queue = makeQueue(
      idbStore(new IDBFactory()),
      (action) => {
        keysSent.push(action.key);
        // The first attempt never answers (a half-open connection).
        return keysSent.length === 1 ? new Promise<ActionOutcome>(() => undefined) : Promise.resolve(APPLIED);
      },
      { sendTimeout: 30 },
    );
    await queue.setUser('u1');
    const submitted = await queue.submit('sendMessage', 'c1', { text: 'x' });
    await expect(submitted.settled).resolves.toEqual({ kind: 'queued' });
    await expect(submitted.outcome).resolves.toEqual(APPLIED);
    expect(keysSent).toEqual([submitted.key, submitted.key]);
  });

  it('does not make a new action wait for the queue loaded at sign-in to be sent', async () => {
    const factory = new IDBFactory();
    const before = makeQueue(idbStore(factory), async () => APPLIED, { isOnline: () => false });
    await before.setUser('u1');
    await before.submit('sendMessage', 'c1', { text: 'old' });
    let release: (() => void) | null = null;
    const after = makeQueue(idbStore(factory), async (action) => {
      if (action.payload.text === 'old') await new Promise<void>((resolve) => (release = resolve));
      return APPLIED;
    });
    await after.setUser('u1');
    await until(() => release !== null, 'the old one to be sent');
    // Stored at once (and shown) while the old one is still on its way.
    const submitted = await after.submit('sendMessage', 'c1', { text: 'new' });
    expect(after.getEntries().map((entry) => entry.payload.text)).toEqual(['old', 'new']);
    release!();
    await expect(submitted.outcome).resolves.toEqual(APPLIED);
  });

  it('tells a lost answer and a "not now" from a refusal', () => {
    expect(isTransient(apiError(0, 'network'))).toBe(true);
    expect(isTransient(apiError(502, 'unavailable'))).toBe(true);
    expect(isTransient(apiError(429, 'rate_limited'))).toBe(true);
    expect(isTransient(apiError(409, 'request_in_progress'))).toBe(true);
    expect(isTransient(apiError(409, 'version_conflict'))).toBe(false);
    expect(isTransient(apiError(403, 'forbidden'))).toBe(false);
    expect(isTransient(apiError(422, 'validation_failed'))).toBe(false);
    expect(isTransient(new Error('bug'))).toBe(false);
  });
});

describe('offline queue, signed-in user changes', () => {
  it('does not stall when the user is set again while a send is under way (React StrictMode)', async () => {
    let release: (() => void) | null = null;
    const sent: string[] = [];
    const queue = makeQueue(idbStoreForStall(), async (action) => {
      sent.push(action.key);
      if (sent.length === 1) await new Promise<void>((resolve) => (release = resolve));
      return APPLIED;
    });
    await queue.setUser('u1');
    const first = await queue.submit('sendMessage', 'c1', { text: 'one' });
    await until(() => release !== null, 'the first send');
    // Effects run twice in StrictMode: signed out and in again while the first send waits; meanwhile
    // another action is queued.
    void queue.setUser(null);
    const again = queue.setUser('u1');
    await again;
    const second = await queue.submit('sendMessage', 'c1', { text: 'two' });
    release!();
    await until(() => queue.getEntries().length === 0, 'the queue to empty');
    expect(sent).toEqual([first.key, second.key]);
  });
});

function idbStoreForStall(): QueueStore {
  return idbStore(new IDBFactory());
}
