// The single HTTP client. Every request of the SPA goes through `api`: it adds
// the bearer token, turns `{"error": {...}}` bodies into ApiError, and retries
// once with a refreshed token on 401.
//
// Every mutation (any method but GET/HEAD) carries an `Idempotency-Key`
// (shared/DESIGN.md section 4): a fresh one unless the caller passes its own
// (the offline queue keeps one per queued action). The same key goes with
// every resend of that request: the 401 retry, and the waits after `409
// request_in_progress` (Retry-After). A replayed answer (`Idempotent-Replayed:
// true`) is the stored answer of the first run, so it is a success like any.

import { env } from '@/config/env';

export type ErrorBody = { code: string; message: string; details: Record<string, unknown> };

export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly details: Record<string, unknown>;
  /** Seconds to wait before retrying (rate_limited), from Retry-After or details. */
  readonly retryAfter: number | null;

  constructor(status: number, body: ErrorBody, retryAfter: number | null = null) {
    super(body.message);
    this.name = 'ApiError';
    this.status = status;
    this.code = body.code;
    this.details = body.details;
    this.retryAfter = retryAfter;
  }
}

/** Where the client gets its token; installed by the auth provider. */
export type TokenSource = {
  getAccessToken(): Promise<string | null>;
  /** Called after a 401: return a fresh token, or null (the session has ended). */
  refreshAccessToken(): Promise<string | null>;
};

type RequestOptions = {
  body?: unknown;
  params?: Record<string, string | number | undefined | null>;
  /** Send the bearer token (default true). */
  auth?: boolean;
  signal?: AbortSignal;
  /** The Idempotency-Key of a mutation; made fresh when not given. Ignored for GET/HEAD. */
  idempotencyKey?: string;
};

/** `replayed`: the server answered from its idempotency record (the request had run already). */
export type ApiResponse<T> = { status: number; data: T; replayed: boolean };

/** How many times a mutation waits and resends after `409 request_in_progress`. */
const IN_PROGRESS_RETRIES = 5;
const IN_PROGRESS_MAX_WAIT_S = 10;

/** A fresh key: 1–128 of [A-Za-z0-9_-] (a UUID where the browser has one, else 32 random hex digits). */
export function newIdempotencyKey(): string {
  const c = globalThis.crypto;
  if (c && typeof c.randomUUID === 'function') return c.randomUUID();
  const bytes = new Uint8Array(16);
  if (c && typeof c.getRandomValues === 'function') c.getRandomValues(bytes);
  else for (let i = 0; i < bytes.length; i += 1) bytes[i] = Math.floor(Math.random() * 256);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

function isMutation(method: string): boolean {
  const upper = method.toUpperCase();
  return upper !== 'GET' && upper !== 'HEAD';
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

let tokenSource: TokenSource | null = null;

export function setTokenSource(source: TokenSource | null): void {
  tokenSource = source;
}

export function apiUrl(path: string, params?: RequestOptions['params']): string {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params ?? {})) {
    if (value !== undefined && value !== null && value !== '') search.set(key, String(value));
  }
  const query = search.toString();
  return `${env.apiUrl}${path}${query ? `?${query}` : ''}`;
}

async function send(method: string, path: string, options: RequestOptions, token: string | null): Promise<Response> {
  const headers: Record<string, string> = { Accept: 'application/json' };
  if (options.body !== undefined) headers['Content-Type'] = 'application/json';
  if (token) headers.Authorization = `Bearer ${token}`;
  if (options.idempotencyKey) headers['Idempotency-Key'] = options.idempotencyKey;
  try {
    return await fetch(apiUrl(path, options.params), {
      method,
      headers,
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
      signal: options.signal,
    });
  } catch (error) {
    if (error instanceof DOMException && error.name === 'AbortError') throw error;
    throw new ApiError(0, { code: 'network', message: String(error), details: {} });
  }
}

async function readBody(response: Response): Promise<unknown> {
  const text = await response.text();
  if (!text) return null;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

export function toErrorBody(status: number, body: unknown): ErrorBody {
  const error = (body as { error?: Partial<ErrorBody> } | null)?.error;
  if (error && typeof error === 'object' && typeof error.code === 'string') {
    return {
      code: error.code,
      message: typeof error.message === 'string' ? error.message : '',
      details: error.details && typeof error.details === 'object' ? error.details : {},
    };
  }
  const fallback: Record<number, string> = {
    400: 'invalid_request', 401: 'unauthenticated', 403: 'forbidden', 404: 'not_found',
    409: 'version_conflict', 413: 'payload_too_large', 422: 'validation_failed', 429: 'rate_limited',
    502: 'unavailable', 503: 'unavailable', 504: 'unavailable',
  };
  return { code: fallback[status] ?? 'internal', message: typeof body === 'string' ? body.slice(0, 200) : '', details: {} };
}

function retryAfterOf(response: Response, body: ErrorBody): number | null {
  const header = Number(response.headers.get('Retry-After'));
  if (Number.isFinite(header) && header > 0) return header;
  const detail = Number(body.details.retryAfter);
  return Number.isFinite(detail) && detail > 0 ? detail : null;
}

export async function request<T>(method: string, path: string, options: RequestOptions = {}): Promise<ApiResponse<T>> {
  if (isMutation(method)) options = { ...options, idempotencyKey: options.idempotencyKey ?? newIdempotencyKey() };
  else if (options.idempotencyKey) options = { ...options, idempotencyKey: undefined };
  const useAuth = options.auth !== false && tokenSource !== null;
  let token = useAuth ? await tokenSource!.getAccessToken() : null;
  for (let attempt = 0; ; attempt += 1) {
    let response = await send(method, path, options, token);
    if (response.status === 401 && useAuth && token) {
      token = await tokenSource!.refreshAccessToken();
      if (token) response = await send(method, path, options, token);
    }
    const body = await readBody(response);
    if (!response.ok) {
      const error = toErrorBody(response.status, body);
      const retryAfter = retryAfterOf(response, error);
      // The first request with this key still runs (say, its answer was lost and this is the
      // resend): wait as told, then ask again with the same key for its answer.
      if (response.status === 409 && error.code === 'request_in_progress' && options.idempotencyKey && attempt < IN_PROGRESS_RETRIES) {
        await sleep(Math.min(retryAfter ?? 1, IN_PROGRESS_MAX_WAIT_S) * 1000);
        if (options.signal?.aborted) throw new DOMException('aborted', 'AbortError');
        continue;
      }
      throw new ApiError(response.status, error, retryAfter);
    }
    const replayed = (response.headers.get('Idempotent-Replayed') ?? '').toLowerCase() === 'true';
    return { status: response.status, data: body as T, replayed };
  }
}

export const api = {
  get: async <T>(path: string, options?: RequestOptions) => (await request<T>('GET', path, options)).data,
  post: async <T>(path: string, body?: unknown, options?: RequestOptions) =>
    (await request<T>('POST', path, { ...options, body: body ?? {} })).data,
  request,
};

/** Lists may come bare or wrapped (`{"collaborations": [...]}`, `{"items": [...]}`). */
export function unwrapList<T>(data: unknown, key: string): T[] {
  if (Array.isArray(data)) return data as T[];
  if (data && typeof data === 'object') {
    const record = data as Record<string, unknown>;
    for (const name of [key, 'items', 'data', 'results']) {
      if (Array.isArray(record[name])) return record[name] as T[];
    }
  }
  return [];
}
