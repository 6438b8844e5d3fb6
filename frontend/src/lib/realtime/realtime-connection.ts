// The realtime connection: one WebSocket, its authentication, reconnection with backoff and
// jitter, the ping that finds dead connections and the token refresh before expiry. It knows
// nothing of collaborations: every frame goes to its host (the subscription store,
// realtime-client.ts), which also owns the state listeners.
// (Over 300 lines: auth, backoff, ping and token refresh are each short, and all four act on
// the one socket's life, so they live with it.)

import { backoffDelay, type BackoffOptions } from './backoff';
import { CloseCode, OPEN, type ClientFrame, type ServerEvent, type WebSocketFactory, type WebSocketLike } from './protocol';
import { tokenExpiry } from './token-expiry';

/** A 4029 (rate limited) waits at least this long before reconnecting. */
const RATE_LIMITED_MIN_DELAY = 5_000;
/** After a failed token refresh, try again this soon (while the token still works). */
const REFRESH_RETRY_MS = 5_000;

export type ConnectionOptions = {
  url: string | (() => string);
  getToken: (forceRefresh: boolean) => Promise<string | null>;
  createSocket: WebSocketFactory;
  backoff: BackoffOptions;
  random: () => number;
  now: () => number;
  pingInterval: number;
  pongTimeout: number;
  refreshMargin: number;
};

/** What the connection tells its host. */
export type ConnectionHost = {
  /** A frame from the server (parsed JSON), after `ready` has been handled for a `ready` frame. */
  frame(event: ServerEvent): void;
  /** The socket is gone (closed, torn down, dead): nothing is subscribed any more. */
  lost(): void;
  /** `connecting` / `reconnecting` / `offline`, as the connection moves. */
  setState(state: 'offline' | 'connecting' | 'reconnecting'): void;
  /** The connection's state may have changed: the host recomputes its own. */
  updateState(): void;
  /** The token source said signed out (null): the connection stopped. */
  authRequired(): void;
};

export class RealtimeConnection {
  private socket: WebSocketLike | null = null;
  private isReady = false;
  private started = false;
  private networkUp = true;
  private everReady = false;
  private attempt = 0;
  private forceRefresh = false;
  private generation = 0;
  private reconnectTimer: ReturnType<typeof setTimeout> | null = null;
  private pingTimer: ReturnType<typeof setInterval> | null = null;
  private pongTimer: ReturnType<typeof setTimeout> | null = null;
  private refreshTimer: ReturnType<typeof setTimeout> | null = null;
  private token: string | null = null;
  private user: string | null = null;

  constructor(
    private readonly options: ConnectionOptions,
    private readonly host: ConnectionHost,
  ) {}

  /** Authenticated (`ready` received) on the current socket. */
  get ready(): boolean {
    return this.isReady;
  }

  /** Started and the network up: the connection is wanted. */
  get wanted(): boolean {
    return this.started && this.networkUp;
  }

  /** The state while not ready: reconnecting once it has been ready before, else connecting. */
  get pending(): 'connecting' | 'reconnecting' {
    return this.everReady ? 'reconnecting' : 'connecting';
  }

  get userId(): string | null {
    return this.user;
  }

  start(): void {
    if (this.started) return;
    this.started = true;
    this.connect();
  }

  stop(): void {
    this.started = false;
    this.everReady = false;
    this.attempt = 0;
    this.teardown(CloseCode.normal, 'client stopped');
    this.host.setState('offline');
  }

  setNetworkAvailable(up: boolean): void {
    if (this.networkUp === up) return;
    this.networkUp = up;
    if (!up) {
      this.teardown(CloseCode.normal, 'network offline');
      this.host.updateState();
    } else if (this.started) {
      this.attempt = 0;
      this.connect();
    }
  }

  reconnectNow(): void {
    if (!this.started) return;
    this.attempt = 0;
    this.teardown(CloseCode.normal, 'reconnect');
    this.connect();
  }

  /** Send a frame; dropped unless the socket is open and authenticated (or `beforeReady`). */
  send(frame: ClientFrame, beforeReady = false): void {
    const socket = this.socket;
    if (!socket || socket.readyState !== OPEN || (!this.isReady && !beforeReady)) return;
    socket.send(JSON.stringify(frame));
  }

  /** The server said `ready`: authenticated as `userId`. */
  onReady(userId: string): void {
    this.isReady = true;
    this.everReady = true;
    this.attempt = 0;
    this.user = userId;
    this.startPing();
    this.scheduleRefresh();
  }

  private url(): string {
    return typeof this.options.url === 'function' ? this.options.url() : this.options.url;
  }

  private connect(): void {
    this.clearTimer('reconnectTimer');
    if (!this.started || !this.networkUp || this.socket) {
      this.host.updateState();
      return;
    }
    const generation = ++this.generation;
    this.host.setState(this.pending);
    const force = this.forceRefresh;
    this.forceRefresh = false;
    this.options.getToken(force).then(
      (token) => {
        if (generation !== this.generation || !this.started) return;
        if (!token) {
          this.started = false;
          this.host.setState('offline');
          this.host.authRequired();
          return;
        }
        this.token = token;
        this.open(token, generation);
      },
      () => {
        // No token for now (the sign-in service is unreachable): keep the session and try again
        // with backoff, still asking for a fresh token if that was what failed.
        if (generation !== this.generation) return;
        this.forceRefresh ||= force;
        this.scheduleReconnect();
      },
    );
  }

  private open(token: string, generation: number): void {
    let socket: WebSocketLike;
    try {
      socket = this.options.createSocket(this.url());
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.socket = socket;
    socket.onopen = () => {
      if (generation === this.generation) this.send({ type: 'auth', token }, true);
    };
    socket.onmessage = (event) => {
      if (generation !== this.generation) return;
      this.clearTimer('pongTimer'); // alive
      let frame: ServerEvent;
      try {
        frame = JSON.parse(String(event.data)) as ServerEvent;
      } catch {
        return;
      }
      if (frame.type === 'ready') this.onReady(frame.userId);
      this.host.frame(frame);
    };
    socket.onerror = () => {
      // A close event always follows; reconnection is decided there.
    };
    socket.onclose = (event) => {
      if (generation !== this.generation) return;
      this.onClosed(event.code);
    };
  }

  /** Close the socket (if any) without reacting to its close event. */
  private teardown(code: number, reason: string): void {
    this.generation += 1;
    this.clearTimer('reconnectTimer');
    const socket = this.socket;
    this.lostConnection();
    if (socket) {
      try {
        socket.close(code, reason);
      } catch {
        // already closed
      }
    }
  }

  private lostConnection(): void {
    this.socket = null;
    this.isReady = false;
    this.clearTimer('pongTimer');
    this.clearTimer('refreshTimer');
    if (this.pingTimer) clearInterval(this.pingTimer);
    this.pingTimer = null;
    this.host.lost();
  }

  private onClosed(code: number): void {
    this.lostConnection();
    if (!this.started) {
      this.host.setState('offline');
      return;
    }
    let minimum = 0;
    switch (code) {
      case CloseCode.unauthenticated:
        // The token was refused or ran out: get a new one, then come back.
        this.forceRefresh = true;
        break;
      case CloseCode.slowConsumer:
        // We fell behind: come back quickly and resume from our copies' versions.
        this.attempt = Math.min(this.attempt, 1);
        break;
      case CloseCode.rateLimited:
        minimum = RATE_LIMITED_MIN_DELAY;
        break;
      default:
        // 4408 (auth too slow), 1001 (server going away), network failures.
        break;
    }
    this.scheduleReconnect(minimum);
  }

  private scheduleReconnect(minimum = 0): void {
    this.clearTimer('reconnectTimer');
    if (!this.started || !this.networkUp) {
      this.host.updateState();
      return;
    }
    const delay = Math.max(minimum, backoffDelay(this.attempt, this.options.backoff, this.options.random));
    this.attempt += 1;
    this.host.setState(this.pending);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      this.connect();
    }, delay);
  }

  private startPing(): void {
    if (this.pingTimer) clearInterval(this.pingTimer);
    if (this.options.pingInterval <= 0) return;
    this.pingTimer = setInterval(() => {
      if (!this.isReady) return;
      this.send({ type: 'ping' });
      if (!this.pongTimer) {
        this.pongTimer = setTimeout(() => {
          this.pongTimer = null;
          // Nothing came back: the connection is dead even if the browser has not noticed.
          const socket = this.socket;
          this.generation += 1;
          this.lostConnection();
          try {
            socket?.close(4000, 'ping timeout');
          } catch {
            // ignore
          }
          this.scheduleReconnect();
        }, this.options.pongTimeout);
      }
    }, this.options.pingInterval);
  }

  private scheduleRefresh(retry = false): void {
    this.clearTimer('refreshTimer');
    const expiry = this.token ? tokenExpiry(this.token) : null;
    if (expiry === null) return;
    const left = expiry - this.options.now();
    // After a failed refresh, try again a little later while the token still works.
    if (retry && left <= 0) return;
    const delay = retry ? Math.min(REFRESH_RETRY_MS, left) : Math.max(1_000, left - this.options.refreshMargin);
    const generation = this.generation;
    this.refreshTimer = setTimeout(() => {
      this.refreshTimer = null;
      this.options.getToken(true).then(
        (token) => {
          if (generation !== this.generation || !token || !this.isReady) return;
          this.token = token;
          this.send({ type: 'refresh_token', token });
          this.scheduleRefresh();
        },
        () => {
          // Not now (network, 5xx): retry; once the token has run out the server closes with 4401
          // and the reconnection asks again.
          if (generation === this.generation && this.isReady) this.scheduleRefresh(true);
        },
      );
    }, delay);
  }

  private clearTimer(name: 'reconnectTimer' | 'pongTimer' | 'refreshTimer'): void {
    const timer = this[name];
    if (timer) clearTimeout(timer);
    this[name] = null;
  }
}
