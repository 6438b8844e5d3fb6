// The single realtime client: one WebSocket to /ws for the whole app.
//
// (Over 300 lines: the subscription store's state machine, seq, catch-up, snapshot and
// membership, reads in one place; the socket itself is realtime-connection.ts.)
//
// It keeps a copy of every collaboration the UI has subscribed to and keeps it
// current from the server's events:
//   - Stream sequence (DESIGN.md §5): where the server numbers its events, the
//     client keeps `lastSeq` per collaboration (from `snapshot`, then every
//     event) and applies a `collaboration_updated` or `message_created` only when
//     its `seq` is exactly lastSeq + 1; at or below it is a duplicate (ignored);
//     above it there is a gap, so it subscribes again with `sinceSeq` and the
//     server replays what is missing. Resubscribing after a reconnection uses
//     `sinceSeq` too. A server whose `subscribed` has no `seq` gets the older
//     version/message-id rules below.
//   - `snapshot` replaces the copy; `collaboration_updated` is applied only when
//     its version is exactly copy.version + 1. At or below the copy's version it
//     is a duplicate and ignored; above it there is a gap, so the client
//     subscribes again with `sinceVersion` and the server replays what is missing.
//   - `resync_required` subscribes again without `sinceVersion` (a new snapshot);
//     `membership_removed` drops the copy and tells the UI.
// On every (re)connection it authenticates first, then re-subscribes with
// `sinceVersion`/`sinceMessageId` where it holds a copy. The connection itself
// (realtime-connection.ts) is the socket: lost connections come back with
// exponential backoff and jitter; a ping every `pingInterval` finds dead ones;
// the token is refreshed (`refresh_token`) before it expires. This file is the
// subscription store on top of it, and the one public API (RealtimeClient).

import type { Collaboration, Message, PresenceEntry } from '@/types/api';

import { applyChanges } from './apply-changes';
import { DEFAULT_BACKOFF, type BackoffOptions } from './backoff';
import type { ClientFrame, ServerEvent, WebSocketFactory, WebSocketLike } from './protocol';
import { RealtimeConnection } from './realtime-connection';

export type ConnectionState = 'offline' | 'connecting' | 'live' | 'reconnecting' | 'resyncing';

/**
 * loading: no copy yet; synced: live; resyncing: catching up after a reconnect, gap or resync_required;
 * stale: a copy read over HTTP while the socket is down (no live updates); removed / not_found: ended;
 * error: the server refused the subscription (say, more than 100 on one connection: `error` and
 * `errorCode` say why). The copy read over HTTP is shown meanwhile; `retry()` or the next
 * reconnection subscribes again.
 */
export type SubscriptionStatus = 'idle' | 'loading' | 'synced' | 'resyncing' | 'stale' | 'removed' | 'not_found' | 'error';

/** What the UI sees of one subscribed collaboration. Replaced, never mutated. */
export type CollaborationView = {
  status: SubscriptionStatus;
  collaboration: Collaboration | null;
  /** The copy's version; 0 while there is no copy. */
  version: number;
  /** Messages in id order: the snapshot's latest ones, then every live one. */
  messages: Message[];
  /** Raised whenever `messages` was replaced by a snapshot (older pages may no longer join up). */
  messagesEpoch: number;
  presence: PresenceEntry[];
  /** The server's message for the last error about this collaboration, and its code. */
  error: string | null;
  errorCode: string | null;
};

/** Events the client adds to the server's own, for the UI. */
export type ClientEvent =
  | { type: 'auth_required' }
  | { type: 'gap_detected'; collaborationId: string; expected: number; received: number };

export type RealtimeEvent = ServerEvent | ClientEvent;

export type RealtimeOptions = {
  /** The WebSocket URL (a function is read on every connection). */
  url: string | (() => string);
  /**
   * The access token; `forceRefresh` asks for a new one (before expiry, or after 4401). Null: signed
   * out (the client stops). A rejection is a failure for now: the client keeps retrying with backoff.
   */
  getToken: (forceRefresh: boolean) => Promise<string | null>;
  createSocket?: WebSocketFactory;
  backoff?: BackoffOptions;
  random?: () => number;
  now?: () => number;
  /** Milliseconds between pings (0 disables). */
  pingInterval?: number;
  /** Close and reconnect when nothing arrives this long after a ping. */
  pongTimeout?: number;
  /** Refresh the token this long before it expires. */
  refreshMargin?: number;
  /** Keep a subscription this long after its last user lets go (navigation, React StrictMode). */
  linger?: number;
  /** At most this many messages kept per collaboration. */
  maxMessages?: number;
  /** Read a collaboration over HTTP while the socket is not up, so pages show something (status 'stale'). */
  fetchCollaboration?: (collaborationId: string) => Promise<Collaboration>;
  /** How long to wait for the socket before the first HTTP read, and between reads. */
  fallbackDelay?: number;
  fallbackInterval?: number;
};

type Phase = 'waiting' | 'subscribing' | 'catching_up' | 'synced' | 'failed' | 'ended';

type Subscription = {
  id: string;
  refs: number;
  view: CollaborationView;
  phase: Phase;
  /** The version the server said it is at in `subscribed`. */
  target: number;
  /** The seq of the last event applied to the copy (from the snapshot on); null: the server sends none. */
  lastSeq: number | null;
  /** The seq the server said it is at in `subscribed` (null: it did not say). */
  targetSeq: number | null;
  /** Drop the copy's version on the next subscribe (resync_required). */
  full: boolean;
  lastMessageId: string | null;
  presenceState: Record<string, unknown> | null;
  releaseTimer: ReturnType<typeof setTimeout> | null;
  fallbackTimer: ReturnType<typeof setTimeout> | null;
  listeners: Set<() => void>;
};

const EMPTY_VIEW: CollaborationView = Object.freeze({
  status: 'idle',
  collaboration: null,
  version: 0,
  messages: [],
  messagesEpoch: 0,
  presence: [],
  error: null,
  errorCode: null,
}) as CollaborationView;

/** The presence state sent when I leave a collaboration's page while still subscribed to it. */
export const AWAY_STATE: Readonly<Record<string, unknown>> = Object.freeze({ status: 'away' });

function newSub(id: string, refs: number, view: CollaborationView): Subscription {
  return {
    id, refs, view, phase: 'waiting', target: 0, lastSeq: null, targetSeq: null, full: false, lastMessageId: null, presenceState: null,
    releaseTimer: null, fallbackTimer: null, listeners: new Set(),
  };
}

function byId(a: Message, b: Message): number {
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

export class RealtimeClient {
  private readonly options: Required<Omit<RealtimeOptions, 'createSocket' | 'fetchCollaboration'>> &
    Pick<RealtimeOptions, 'fetchCollaboration'> & { createSocket: WebSocketFactory };
  private readonly subs = new Map<string, Subscription>();
  private readonly stateListeners = new Set<(state: ConnectionState) => void>();
  private readonly eventListeners = new Set<(event: RealtimeEvent) => void>();

  private readonly connection: RealtimeConnection;
  private state: ConnectionState = 'offline';

  constructor(options: RealtimeOptions) {
    this.options = {
      backoff: DEFAULT_BACKOFF,
      random: Math.random,
      now: Date.now,
      pingInterval: 25_000,
      pongTimeout: 10_000,
      refreshMargin: 60_000,
      linger: 2_000,
      maxMessages: 1_000,
      fallbackDelay: 1_500,
      fallbackInterval: 15_000,
      createSocket: (url) => new WebSocket(url) as unknown as WebSocketLike,
      ...options,
    } as RealtimeClient['options'];
    this.connection = new RealtimeConnection(this.options, {
      frame: (event) => this.handle(event),
      lost: () => {
        for (const sub of this.subs.values()) {
          if (sub.phase !== 'ended') sub.phase = 'waiting';
        }
      },
      setState: (state) => this.setState(state),
      updateState: () => this.updateState(),
      authRequired: () => this.emit({ type: 'auth_required' }),
    });
  }

  /** Authenticated on the current socket. */
  private get ready(): boolean {
    return this.connection.ready;
  }

  // ---- lifecycle -------------------------------------------------------

  /** Connect (idempotent). */
  start(): void {
    this.connection.start();
  }

  /** Disconnect for good (sign-out); subscriptions and copies are kept for a later start(). */
  stop(): void {
    this.connection.stop();
  }

  /** The browser went offline or online (window events). */
  setNetworkAvailable(up: boolean): void {
    this.connection.setNetworkAvailable(up);
  }

  /** Reconnect at once (a "retry now" button). */
  reconnectNow(): void {
    this.connection.reconnectNow();
  }

  getState(): ConnectionState {
    return this.state;
  }

  getUserId(): string | null {
    return this.connection.userId;
  }

  onStateChange(listener: (state: ConnectionState) => void): () => void {
    this.stateListeners.add(listener);
    return () => this.stateListeners.delete(listener);
  }

  /** Every server event (after the client has applied it) and the client's own events. */
  onEvent(listener: (event: RealtimeEvent) => void): () => void {
    this.eventListeners.add(listener);
    return () => this.eventListeners.delete(listener);
  }

  // ---- subscriptions ---------------------------------------------------

  /** Keep `collaborationId` subscribed until the returned function is called. */
  subscribe(collaborationId: string): () => void {
    let sub = this.subs.get(collaborationId);
    if (sub) {
      if (sub.releaseTimer) clearTimeout(sub.releaseTimer);
      sub.releaseTimer = null;
      sub.refs += 1;
      if (sub.refs === 1 && (sub.phase === 'waiting' || sub.phase === 'failed' || sub.phase === 'ended')) {
        // A placeholder made by watch(), or one that had ended (removed, not found) or was refused: start afresh.
        sub.phase = 'waiting';
        if (sub.view.status !== 'synced' && sub.view.status !== 'resyncing') this.setView(sub, { ...EMPTY_VIEW, status: 'loading' });
        if (this.ready) this.sendSubscribe(sub);
      }
    } else {
      sub = newSub(collaborationId, 1, { ...EMPTY_VIEW, status: 'loading' });
      this.subs.set(collaborationId, sub);
      if (this.ready) this.sendSubscribe(sub);
    }
    this.scheduleFallback(sub, this.options.fallbackDelay);
    const held = sub;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      held.refs -= 1;
      if (held.refs > 0) return;
      const drop = () => this.drop(held);
      if (this.options.linger > 0) held.releaseTimer = setTimeout(drop, this.options.linger);
      else drop();
    };
  }

  /** Listen to changes of one collaboration's view (does not subscribe by itself). */
  watch(collaborationId: string, listener: () => void): () => void {
    let sub = this.subs.get(collaborationId);
    if (!sub) {
      // Watching before subscribing: hold a placeholder without refs.
      sub = newSub(collaborationId, 0, EMPTY_VIEW);
      this.subs.set(collaborationId, sub);
    }
    sub.listeners.add(listener);
    const held = sub;
    return () => {
      held.listeners.delete(listener);
      if (held.refs === 0 && held.listeners.size === 0 && held.releaseTimer === null && this.subs.get(held.id) === held) {
        this.subs.delete(held.id);
      }
    };
  }

  getView(collaborationId: string): CollaborationView {
    return this.subs.get(collaborationId)?.view ?? EMPTY_VIEW;
  }

  /** Tell the others what I am doing here; re-sent after every reconnection until clearPresence(). */
  setPresence(collaborationId: string, state: Record<string, unknown>): void {
    const sub = this.subs.get(collaborationId);
    if (!sub) return;
    sub.presenceState = state;
    if (this.ready && (sub.phase === 'catching_up' || sub.phase === 'synced')) {
      this.send({ type: 'presence', collaborationId, state });
    }
  }

  /**
   * I left the collaboration's page: tell the others at once (state `AWAY_STATE`, without a `view`)
   * and forget my state, so a resubscription (the shell may keep the collaboration subscribed)
   * does not announce me there again. After a reconnection I am simply not present.
   */
  clearPresence(collaborationId: string): void {
    const sub = this.subs.get(collaborationId);
    if (!sub || sub.presenceState === null) return;
    sub.presenceState = null;
    if (this.ready && (sub.phase === 'catching_up' || sub.phase === 'synced')) {
      this.send({ type: 'presence', collaborationId, state: { ...AWAY_STATE } });
    }
  }

  /** Ask for a fresh snapshot of one collaboration. */
  resync(collaborationId: string): void {
    const sub = this.subs.get(collaborationId);
    if (!sub || sub.refs === 0) return;
    sub.full = true;
    if (this.ready) this.resubscribe(sub);
  }

  /** Subscribe again to a collaboration whose subscription the server refused (status 'error'). */
  retry(collaborationId: string): void {
    const sub = this.subs.get(collaborationId);
    if (!sub || sub.refs === 0 || sub.phase !== 'failed') return;
    sub.phase = 'waiting';
    this.setView(sub, { ...sub.view, status: sub.view.collaboration ? 'resyncing' : 'loading', error: null, errorCode: null });
    if (this.ready) this.sendSubscribe(sub);
    this.updateState();
  }

  private onSubscribeFailed(sub: Subscription, code: string, message: string): void {
    sub.phase = 'failed';
    this.setView(sub, { ...sub.view, status: 'error', error: message, errorCode: code });
    const fetchCollaboration = this.options.fetchCollaboration;
    if (!fetchCollaboration || sub.view.collaboration) return;
    fetchCollaboration(sub.id).then(
      (collaboration) => {
        if (sub.phase !== 'failed' || sub.refs === 0 || sub.view.collaboration) return;
        // Take a full snapshot when subscribing again: this copy has no messages and may fall behind.
        sub.full = true;
        this.setView(sub, { ...sub.view, collaboration, version: 0 });
      },
      () => undefined,
    );
  }

  private drop(sub: Subscription): void {
    sub.releaseTimer = null;
    if (sub.refs > 0) return;
    if (sub.fallbackTimer) clearTimeout(sub.fallbackTimer);
    sub.fallbackTimer = null;
    if (this.ready && sub.phase !== 'waiting' && sub.phase !== 'failed' && sub.phase !== 'ended') {
      this.send({ type: 'unsubscribe', collaborationId: sub.id });
    }
    if (sub.listeners.size === 0) {
      this.subs.delete(sub.id);
    } else {
      sub.phase = 'waiting';
      this.setView(sub, { ...EMPTY_VIEW });
    }
    this.updateState();
  }

  /** While the socket is down, read the collaboration over HTTP now and then (a stale copy). */
  private scheduleFallback(sub: Subscription, delay: number): void {
    const fetchCollaboration = this.options.fetchCollaboration;
    if (!fetchCollaboration || sub.fallbackTimer) return;
    sub.fallbackTimer = setTimeout(() => {
      sub.fallbackTimer = null;
      if (sub.refs === 0 || this.ready || sub.phase === 'ended' || this.subs.get(sub.id) !== sub) return;
      // Only for a first load: a copy kept current by the socket is better than a fresh read without messages.
      if (sub.view.collaboration && sub.view.status !== 'stale') return;
      fetchCollaboration(sub.id).then(
        (collaboration) => {
          if (this.ready || sub.refs === 0 || sub.phase === 'ended') return;
          if (sub.view.collaboration && sub.view.status !== 'stale') return;
          // Take a full snapshot once the socket is up: this copy has no messages and may be behind.
          sub.full = true;
          this.setView(sub, { ...sub.view, status: 'stale', collaboration, version: 0 });
        },
        () => undefined,
      );
      this.scheduleFallback(sub, this.options.fallbackInterval);
    }, delay);
  }

  // ---- the connection (realtime-connection.ts) -------------------------

  private send(frame: ClientFrame): void {
    this.connection.send(frame);
  }

  // ---- server events ---------------------------------------------------

  private handle(event: ServerEvent): void {
    switch (event.type) {
      case 'ready':
        this.onReady();
        break;
      case 'subscribed':
        this.onSubscribed(event.collaborationId, event.version, typeof event.seq === 'number' ? event.seq : null);
        break;
      case 'snapshot':
        this.onSnapshot(event);
        break;
      case 'collaboration_updated':
        this.onUpdated(event);
        break;
      case 'message_created':
        this.onMessage(event.collaborationId, event.message, typeof event.seq === 'number' ? event.seq : null);
        break;
      case 'presence':
        this.withSub(event.collaborationId, (sub) => this.setView(sub, { ...sub.view, presence: event.members ?? [] }));
        break;
      case 'membership_removed':
        this.withSub(event.collaborationId, (sub) => {
          sub.phase = 'ended';
          sub.lastMessageId = null;
          sub.lastSeq = null;
          this.setView(sub, { ...EMPTY_VIEW, status: 'removed' });
        });
        break;
      case 'resync_required':
        this.withSub(event.collaborationId, (sub) => {
          sub.full = true;
          this.resubscribe(sub);
        });
        break;
      case 'error':
        if (event.collaborationId) {
          this.withSub(event.collaborationId, (sub) => {
            if (event.code === 'not_found' && sub.phase !== 'catching_up' && sub.phase !== 'synced') {
              sub.phase = 'ended';
              this.setView(sub, { ...EMPTY_VIEW, status: 'not_found', error: event.message ?? null, errorCode: event.code });
            } else if (sub.phase === 'subscribing') {
              // The server refused the subscription itself (too many on this connection, the
              // database not answering…): no spinner forever — say so, and read it over HTTP.
              this.onSubscribeFailed(sub, event.code, event.message ?? event.code);
            } else {
              this.setView(sub, { ...sub.view, error: event.message ?? event.code, errorCode: event.code });
            }
          });
        }
        break;
      default:
        break;
    }
    this.updateState();
    this.emit(event);
  }

  private withSub(collaborationId: string | undefined, fn: (sub: Subscription) => void): void {
    const sub = collaborationId ? this.subs.get(collaborationId) : undefined;
    // Lingering subscriptions (released, not yet dropped) stay current too.
    if (sub && (sub.refs > 0 || sub.releaseTimer !== null)) fn(sub);
  }

  /** Authenticated (the connection took note first): subscribe what is waiting. */
  private onReady(): void {
    for (const sub of this.subs.values()) {
      if (sub.refs > 0 && sub.phase === 'waiting') this.sendSubscribe(sub);
    }
  }

  private sendSubscribe(sub: Subscription): void {
    const frame: Extract<ClientFrame, { type: 'subscribe' }> = { type: 'subscribe', collaborationId: sub.id };
    if (sub.full) {
      sub.full = false;
      sub.phase = 'subscribing';
      sub.target = 0;
      sub.lastSeq = null;
      // Keep showing the old copy, but apply nothing more to it until the snapshot.
      if (sub.view.collaboration) this.setView(sub, { ...sub.view, status: 'resyncing', version: 0 });
    } else {
      sub.phase = 'subscribing';
      if (sub.view.collaboration && sub.view.version > 0) {
        if (sub.lastSeq !== null) {
          frame.sinceSeq = sub.lastSeq;
        } else {
          // A server that does not number its events: resume by version and last message.
          frame.sinceVersion = sub.view.version;
          if (sub.lastMessageId) frame.sinceMessageId = sub.lastMessageId;
        }
        if (sub.view.status !== 'resyncing') this.setView(sub, { ...sub.view, status: 'resyncing' });
      }
    }
    this.send(frame);
  }

  private resubscribe(sub: Subscription): void {
    if (sub.phase !== 'waiting' && sub.phase !== 'failed' && sub.phase !== 'ended') {
      this.send({ type: 'unsubscribe', collaborationId: sub.id });
    }
    this.sendSubscribe(sub);
  }

  private onSubscribed(collaborationId: string, version: number, seq: number | null): void {
    this.withSub(collaborationId, (sub) => {
      // 'failed': an error arrived meanwhile, but it was not this subscription's (it went through).
      if (sub.phase !== 'subscribing' && sub.phase !== 'failed') return;
      sub.target = version;
      sub.targetSeq = seq;
      if (seq === null) sub.lastSeq = null; // this server does not number events: the version rules apply
      const caughtUp =
        sub.lastSeq !== null && seq !== null
          ? sub.view.collaboration !== null && sub.view.version > 0 && sub.lastSeq >= seq
          : sub.view.collaboration !== null && sub.view.version >= version;
      if (caughtUp) this.markSynced(sub);
      else sub.phase = 'catching_up';
      if (sub.presenceState) this.send({ type: 'presence', collaborationId, state: sub.presenceState });
    });
  }

  private markSynced(sub: Subscription): void {
    sub.phase = 'synced';
    if (sub.view.status !== 'synced' || sub.view.error) this.setView(sub, { ...sub.view, status: 'synced', error: null, errorCode: null });
  }

  private onSnapshot(event: Extract<ServerEvent, { type: 'snapshot' }>): void {
    this.withSub(event.collaborationId, (sub) => {
      if (sub.phase !== 'catching_up' && sub.phase !== 'synced') return;
      const sent = event.messages ?? [];
      const messages = this.mergeMessages([], sent);
      // The server lists them in commit order: resume after the last one it listed, not the largest id.
      sub.lastMessageId = sent.length > 0 ? sent[sent.length - 1]!.id : null;
      sub.lastSeq = typeof event.seq === 'number' ? event.seq : null;
      const collaboration = { ...event.collaboration, version: event.version };
      this.setView(sub, {
        ...sub.view,
        collaboration,
        version: event.version,
        messages,
        messagesEpoch: sub.view.messagesEpoch + 1,
        error: null,
        errorCode: null,
      });
      this.markSynced(sub);
    });
  }

  private onUpdated(event: Extract<ServerEvent, { type: 'collaboration_updated' }>): void {
    this.withSub(event.collaborationId, (sub) => {
      const copy = sub.view.collaboration;
      if ((sub.phase !== 'catching_up' && sub.phase !== 'synced') || !copy || sub.view.version === 0) return;
      const seq = typeof event.seq === 'number' ? event.seq : null;
      if (seq !== null && sub.lastSeq !== null) {
        if (!this.nextInSequence(sub, seq)) return;
        if (event.version !== sub.view.version + 1) {
          // The stream and the copy disagree: start again from a snapshot.
          sub.full = true;
          this.resubscribe(sub);
          return;
        }
      } else {
        if (event.version <= sub.view.version) return; // a duplicate: already applied
        if (event.version !== sub.view.version + 1) {
          // A gap: ask the server for what we missed.
          this.emit({ type: 'gap_detected', collaborationId: sub.id, expected: sub.view.version + 1, received: event.version });
          this.resubscribe(sub);
          return;
        }
      }
      let next: Collaboration;
      try {
        next = applyChanges(copy, event.changes ?? {});
      } catch {
        sub.full = true;
        this.resubscribe(sub);
        return;
      }
      next = next.version === event.version ? next : { ...next, version: event.version };
      if (seq !== null && sub.lastSeq !== null) sub.lastSeq = seq;
      this.setView(sub, { ...sub.view, collaboration: next, version: event.version });
      this.checkCaughtUp(sub);
    });
  }

  /**
   * Stream sequence: true when `seq` is the one to apply next (lastSeq + 1). At or below lastSeq it
   * is a duplicate (false); above it a gap: subscribe again with sinceSeq (false).
   */
  private nextInSequence(sub: Subscription, seq: number): boolean {
    const last = sub.lastSeq ?? 0;
    if (seq <= last) return false;
    if (seq === last + 1) return true;
    this.emit({ type: 'gap_detected', collaborationId: sub.id, expected: last + 1, received: seq });
    this.resubscribe(sub);
    return false;
  }

  /** While catching up after `subscribed`: synced once the copy reached what the server said it was at. */
  private checkCaughtUp(sub: Subscription): void {
    if (sub.phase !== 'catching_up') return;
    const done = sub.lastSeq !== null && sub.targetSeq !== null ? sub.lastSeq >= sub.targetSeq : sub.view.version >= sub.target;
    if (done) this.markSynced(sub);
  }

  private onMessage(collaborationId: string, message: Message, seq: number | null): void {
    this.withSub(collaborationId, (sub) => {
      if (seq !== null && sub.lastSeq !== null) {
        if (sub.phase !== 'catching_up' && sub.phase !== 'synced') return;
        if (!this.nextInSequence(sub, seq)) return;
        sub.lastSeq = seq;
        if (message && !sub.view.messages.some((m) => m.id === message.id)) {
          sub.lastMessageId = message.id;
          this.setView(sub, { ...sub.view, messages: this.mergeMessages(sub.view.messages, [message]) });
        }
        this.checkCaughtUp(sub);
        return;
      }
      if (!message || sub.view.messages.some((m) => m.id === message.id)) return;
      const messages = this.mergeMessages(sub.view.messages, [message]);
      // "After sinceMessageId" is by commit order, and messages arrive in it: an earlier id can
      // commit later (docs/protocol.md), so the last one received is where to resume.
      sub.lastMessageId = message.id;
      this.setView(sub, { ...sub.view, messages });
    });
  }

  private mergeMessages(current: Message[], incoming: Message[]): Message[] {
    const seen = new Set(current.map((m) => m.id));
    const merged = current.slice();
    for (const message of incoming) {
      if (!message || seen.has(message.id)) continue;
      seen.add(message.id);
      merged.push(message);
    }
    merged.sort(byId);
    const excess = merged.length - this.options.maxMessages;
    return excess > 0 ? merged.slice(excess) : merged;
  }

  // ---- notifications ---------------------------------------------------

  private setView(sub: Subscription, view: CollaborationView): void {
    sub.view = view;
    for (const listener of [...sub.listeners]) listener();
  }

  private emit(event: RealtimeEvent): void {
    for (const listener of [...this.eventListeners]) listener(event);
  }

  private setState(state: ConnectionState): void {
    if (state === this.state) return;
    this.state = state;
    for (const listener of [...this.stateListeners]) listener(state);
  }

  private updateState(): void {
    if (!this.connection.wanted) {
      this.setState('offline');
      return;
    }
    if (!this.ready) {
      this.setState(this.connection.pending);
      return;
    }
    for (const sub of this.subs.values()) {
      if (sub.refs > 0 && sub.view.status === 'resyncing') {
        this.setState('resyncing');
        return;
      }
    }
    this.setState('live');
  }
}
