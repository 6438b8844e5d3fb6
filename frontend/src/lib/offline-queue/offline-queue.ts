// The offline queue: actions the SPA could not send yet, kept durably and sent
// in order, each with its own Idempotency-Key, once the connection is back.
//
// (Over 300 lines: the queue's persistence, its one-at-a-time sender with backoff and the
// cross-tab lock must agree on every state an item can be in; the store is behind an interface.)
//
// Every queued action is written to the store (IndexedDB) before its first
// attempt, with a fresh key that goes with every attempt until the server
// answers, so an answer lost on the way (the request ran) is never run twice:
// the resend gets the stored answer (Idempotent-Replayed). The queue sends one
// action at a time, oldest first. What happens to an attempt:
//   - an answer (200, 202, a replay): done, removed from the queue;
//   - no answer (network), a 5xx, 429, 401 or a 409 request_in_progress that
//     would not end: kept, and the queue waits (backoff; at once when the
//     browser says it is online again or `flush()` is called);
//   - a refusal (any other 4xx: version conflict, rule, permission…): given
//     back to the submitter when it is still waiting for this first answer
//     (`settled`: the form shows the error and keeps what was typed, as without
//     a queue); once the action was parked (offline, no answer) the submitter
//     has moved on, so it is kept as `failed` with the server's error, for the
//     person to retry (a new attempt, with a new key) or discard. The actions
//     after it are still sent.
// While the browser says it is offline nothing is tried.

import { ApiError } from '@/lib/api-client';
import { backoffDelay, type BackoffOptions } from '@/lib/realtime/backoff';
import type { ActionOutcome } from '@/types/api';

import { memoryQueueStore, type QueuedAction, type QueuedError, type QueueStore } from './queue-store';

export type { QueuedAction, QueuedError, QueueStore } from './queue-store';

/** sending: being sent now; waiting: not sent yet (offline, or the server could not be reached); failed: refused. */
export type QueueEntryStatus = 'sending' | 'waiting' | 'failed';

export type QueueEntry = QueuedAction & { status: QueueEntryStatus };

export type SendAction = (action: QueuedAction) => Promise<ActionOutcome>;

export type OfflineQueueOptions = {
  store: QueueStore;
  send: SendAction;
  /** What the browser says (navigator.onLine); false: do not try. */
  isOnline?: () => boolean;
  backoff?: BackoffOptions;
  random?: () => number;
  newKey: () => string;
  /** An action answered whose submitter is gone (a reload, another page): tell the person if it matters. */
  onUnclaimed?: (action: QueuedAction, outcome: ActionOutcome) => void;
  /** Serialise flushes across tabs (Web Locks); runs `fn` directly when absent. */
  lock?: <T>(fn: () => Promise<T>) => Promise<T>;
  /** An attempt without an answer this long counts as lost (sent again later, with the same key). */
  sendTimeout?: number;
};

/**
 * How a submitted action first settles: answered; refused (handed back, no longer queued); or
 * parked in the queue because there is no connection (it shows in place and is sent later).
 */
export type Settled = { kind: 'answered'; outcome: ActionOutcome } | { kind: 'refused'; error: unknown } | { kind: 'queued' };

export type Submitted = {
  key: string;
  /** The first of: the answer, the refusal, or "parked for the connection". */
  settled: Promise<Settled>;
  /** The server's answer whenever it comes; null when the action is refused or discarded. */
  outcome: Promise<ActionOutcome | null>;
};

const QUEUE_BACKOFF: BackoffOptions = { initial: 1_000, max: 30_000, factor: 2 };

/** No answer, or one that says "not now": keep the action and try again later with the same key. */
export function isTransient(error: unknown): boolean {
  if (!(error instanceof ApiError)) return false;
  if (error.status === 0 || error.status >= 500) return true;
  if (error.status === 401 || error.status === 408 || error.status === 429) return true;
  return error.status === 409 && error.code === 'request_in_progress';
}

function toQueuedError(error: unknown): QueuedError {
  if (error instanceof ApiError) return { status: error.status, code: error.code, message: error.message, details: error.details };
  return { status: 0, code: 'unknown', message: error instanceof Error ? error.message : String(error), details: {} };
}

/** The stored error as the ApiError it was (for <ErrorMessage>). */
export function queuedErrorToApiError(error: QueuedError): ApiError {
  return new ApiError(error.status, { code: error.code, message: error.message, details: error.details });
}

export class OfflineQueue {
  private readonly options: Required<Omit<OfflineQueueOptions, 'onUnclaimed' | 'lock'>> & Pick<OfflineQueueOptions, 'onUnclaimed' | 'lock'>;
  private store: QueueStore;
  private userId: string | null = null;
  private items: QueuedAction[] = [];
  private snapshot: QueueEntry[] = [];
  private readonly listeners = new Set<() => void>();
  private readonly waiters = new Map<string, (outcome: ActionOutcome | null) => void>();
  /** Submitters still waiting for how their action first settles. */
  private readonly settlers = new Map<string, (settled: Settled) => void>();
  private sendingKey: string | null = null;
  /** The last attempt found no connection: say "Waiting for connection", not "Sending…". */
  private unreachable = false;
  private flushing = false;
  private again = false;
  private attempt = 0;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private lastOrder = 0;
  private loaded: Promise<void> = Promise.resolve();

  constructor(options: OfflineQueueOptions) {
    this.options = {
      isOnline: () => typeof navigator === 'undefined' || navigator.onLine !== false,
      backoff: QUEUE_BACKOFF,
      random: Math.random,
      sendTimeout: 30_000,
      ...options,
    };
    this.store = options.store;
  }

  // ---- who -------------------------------------------------------------

  /** The signed-in user (null: signed out). Loads that user's queue and starts sending it. */
  setUser(userId: string | null): Promise<void> {
    if (userId === this.userId) return this.loaded;
    this.userId = userId;
    this.parkAll();
    this.items = [];
    this.unreachable = false;
    this.attempt = 0;
    this.clearRetry();
    this.publish();
    if (!userId) return (this.loaded = Promise.resolve());
    this.loaded = this.reload();
    void this.loaded.then(() => this.flush());
    return this.loaded;
  }

  // ---- what the UI uses ------------------------------------------------

  /** Queue `name` and start sending; resolves once it is stored (before any answer). */
  async submit(name: string, collaborationId: string, payload: Record<string, unknown>): Promise<Submitted> {
    const userId = this.userId;
    if (!userId) throw new Error('the offline queue has no signed-in user');
    await this.loaded;
    const action: QueuedAction = {
      key: this.options.newKey(),
      order: this.nextOrder(),
      userId,
      name,
      collaborationId,
      payload,
      createdAt: new Date().toISOString(),
      state: 'queued',
    };
    const outcome = new Promise<ActionOutcome | null>((resolve) => this.waiters.set(action.key, resolve));
    const settled = new Promise<Settled>((resolve) => this.settlers.set(action.key, resolve));
    await this.persist(action);
    if (this.userId === userId) {
      this.items = [...this.items.filter((item) => item.key !== action.key), action];
      this.publish();
    }
    void this.flush();
    return { key: action.key, settled, outcome };
  }

  /** Send a refused action again: a new attempt (new key), at the end of the queue. */
  async retry(key: string): Promise<void> {
    const item = this.items.find((candidate) => candidate.key === key);
    if (!item || item.state !== 'failed') return;
    const again: QueuedAction = { ...item, key: this.options.newKey(), order: this.nextOrder(), state: 'queued' };
    delete again.error;
    const waiter = this.waiters.get(key);
    this.waiters.delete(key);
    if (waiter) this.waiters.set(again.key, waiter);
    await this.persist(again);
    await this.store.remove(key).catch(() => undefined);
    this.items = [...this.items.filter((candidate) => candidate.key !== key), again];
    this.publish();
    void this.flush();
  }

  /** Drop a refused (or waiting) action for good. */
  async discard(key: string): Promise<void> {
    if (key === this.sendingKey) return;
    await this.store.remove(key).catch(() => undefined);
    this.items = this.items.filter((item) => item.key !== key);
    this.settle(key, { kind: 'queued' });
    this.resolve(key, null);
    this.publish();
  }

  /** The signed-in user's queued actions, oldest first (the same array until something changes). */
  getEntries(): QueueEntry[] {
    return this.snapshot;
  }

  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Try to send now (the browser is online again, the socket came back, "Retry now"). */
  async flush(): Promise<void> {
    if (!this.userId) return;
    if (this.flushing) {
      this.again = true;
      return;
    }
    this.flushing = true;
    this.clearRetry();
    try {
      const lock = this.options.lock ?? ((fn) => fn());
      await lock(async () => {
        do {
          this.again = false;
          // Another tab may have sent (or added) some while we waited for the lock.
          await this.reload();
          if (!(await this.sendAll())) return;
        } while (this.again);
      });
    } finally {
      this.flushing = false;
    }
    // Asked again while this flush was stopping early (offline, no answer): the connection may be back.
    if (this.again && this.userId) {
      this.again = false;
      void this.flush();
    }
  }

  /** The browser went online or offline: update what the entries say, and send when online. */
  networkChanged(): void {
    this.publish();
    if (this.options.isOnline()) {
      this.attempt = 0;
      void this.flush();
    }
  }

  // ---- inside ----------------------------------------------------------

  /** Send queued actions in order; false when it stopped for the connection. */
  private async sendAll(): Promise<boolean> {
    for (;;) {
      const userId = this.userId;
      const next = this.items.find((item) => item.state === 'queued');
      if (!next || !userId) {
        this.setUnreachable(false);
        return true;
      }
      if (!this.options.isOnline()) {
        this.setUnreachable(true);
        this.parkAll();
        return false; // the 'online' event calls flush()
      }
      this.sendingKey = next.key;
      this.publish();
      let outcome: ActionOutcome | null = null;
      let failure: unknown = null;
      try {
        outcome = await this.sendWithTimeout(next);
      } catch (error) {
        failure = error;
      } finally {
        this.sendingKey = null;
      }
      if (this.userId !== userId) return false;
      if (outcome) {
        this.attempt = 0;
        this.unreachable = false;
        await this.store.remove(next.key).catch(() => undefined);
        this.items = this.items.filter((item) => item.key !== next.key);
        this.publish();
        this.settle(next.key, { kind: 'answered', outcome });
        if (!this.resolve(next.key, outcome)) this.options.onUnclaimed?.(next, outcome);
        continue;
      }
      if (isTransient(failure)) {
        this.setUnreachable(true);
        const wait = failure instanceof ApiError && failure.retryAfter ? failure.retryAfter * 1000 : 0;
        this.scheduleRetry(Math.max(wait, backoffDelay(this.attempt, this.options.backoff, this.options.random)));
        this.attempt += 1;
        this.parkAll();
        return false;
      }
      if (this.settlers.has(next.key)) {
        // Refused while its submitter still waits: hand the refusal back (the form shows it), drop it here.
        await this.store.remove(next.key).catch(() => undefined);
        this.items = this.items.filter((item) => item.key !== next.key);
        this.publish();
        this.settle(next.key, { kind: 'refused', error: failure });
        this.resolve(next.key, null);
        continue;
      }
      // Refused after it was parked: keep it, say why, and go on with the next one.
      const failed: QueuedAction = { ...next, state: 'failed', error: toQueuedError(failure) };
      await this.persist(failed);
      this.items = this.items.map((item) => (item.key === next.key ? failed : item));
      this.publish();
      this.resolve(next.key, null);
    }
  }

  /** A request that hangs (a half-open connection) must not hold the queue: no answer in time is a lost one. */
  private sendWithTimeout(action: QueuedAction): Promise<ActionOutcome> {
    let timer: ReturnType<typeof setTimeout> | null = null;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new ApiError(0, { code: 'network', message: 'No answer in time', details: {} })),
        this.options.sendTimeout,
      );
    });
    return Promise.race([this.options.send(action), timeout]).finally(() => {
      if (timer) clearTimeout(timer);
    });
  }

  private async reload(): Promise<void> {
    const userId = this.userId;
    if (!userId) return;
    let stored: QueuedAction[];
    try {
      stored = await this.store.load();
    } catch {
      return; // keep what we hold
    }
    if (this.userId !== userId) return;
    const mine = stored.filter((item) => item.userId === userId).sort((a, b) => a.order - b.order);
    for (const item of mine) this.lastOrder = Math.max(this.lastOrder, item.order);
    this.items = mine;
    this.publish();
  }

  private async persist(action: QueuedAction): Promise<void> {
    try {
      await this.store.put(action);
    } catch {
      // The store is gone (private mode, quota): keep the queue in this tab's memory from now on.
      this.store = memoryQueueStore(this.items);
      await this.store.put(action);
    }
  }

  private nextOrder(): number {
    this.lastOrder = Math.max(Date.now() * 1000, this.lastOrder + 1);
    return this.lastOrder;
  }

  private settle(key: string, settled: Settled): void {
    const settler = this.settlers.get(key);
    if (!settler) return;
    this.settlers.delete(key);
    settler(settled);
  }

  /** No connection: every submitter still waiting learns its action is parked in the queue. */
  private parkAll(): void {
    for (const key of [...this.settlers.keys()]) this.settle(key, { kind: 'queued' });
  }

  private resolve(key: string, outcome: ActionOutcome | null): boolean {
    const waiter = this.waiters.get(key);
    if (!waiter) return false;
    this.waiters.delete(key);
    waiter(outcome);
    return true;
  }

  private scheduleRetry(delay: number): void {
    this.clearRetry();
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      void this.flush();
    }, delay);
  }

  private clearRetry(): void {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
  }

  private setUnreachable(value: boolean): void {
    if (this.unreachable === value) return;
    this.unreachable = value;
    this.publish();
  }

  private publish(): void {
    const offline = this.unreachable || !this.options.isOnline();
    this.snapshot = this.items.map((item) => ({
      ...item,
      status: item.state === 'failed' ? 'failed' : item.key === this.sendingKey || !offline ? 'sending' : 'waiting',
    }));
    for (const listener of [...this.listeners]) listener();
  }
}
