import { afterEach, describe, expect, it, vi } from 'vitest';

import { api, ApiError, setTokenSource, unwrapList } from './api-client';

function respond(status: number, body: unknown, headers: Record<string, string> = {}) {
  return new Response(body === null ? null : JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json', ...headers } });
}

afterEach(() => {
  setTokenSource(null);
  vi.unstubAllGlobals();
});

describe('api client', () => {
  it('sends the bearer token and JSON', async () => {
    const fetchMock = vi.fn(async () => respond(200, { ok: true }));
    vi.stubGlobal('fetch', fetchMock);
    setTokenSource({ getAccessToken: async () => 'abc', refreshAccessToken: async () => null });
    await api.post('/api/actions/sendMessage', { collaborationId: 'col_1', payload: { text: 'hi' } });
    const [url, init] = fetchMock.mock.calls[0] as unknown as [string, RequestInit];
    expect(url).toBe('/api/actions/sendMessage');
    expect(init.method).toBe('POST');
    expect((init.headers as Record<string, string>).Authorization).toBe('Bearer abc');
    expect(JSON.parse(init.body as string)).toEqual({ collaborationId: 'col_1', payload: { text: 'hi' } });
  });

  it('turns error bodies into ApiError with Retry-After', async () => {
    vi.stubGlobal('fetch', vi.fn(async () => respond(429, { error: { code: 'rate_limited', message: 'slow down', details: {} } }, { 'Retry-After': '7' })));
    const caught = await api.get('/api/collaborations').catch((e: unknown) => e);
    expect(caught).toBeInstanceOf(ApiError);
    expect(caught).toMatchObject({ status: 429, code: 'rate_limited', retryAfter: 7 });
  });

  it('retries once with a refreshed token after 401', async () => {
    const fetchMock = vi
      .fn()
      .mockResolvedValueOnce(respond(401, { error: { code: 'unauthenticated', message: 'expired' } }))
      .mockResolvedValueOnce(respond(200, []));
    vi.stubGlobal('fetch', fetchMock);
    setTokenSource({ getAccessToken: async () => 'old', refreshAccessToken: async () => 'new' });
    await expect(api.get('/api/collaborations')).resolves.toEqual([]);
    const second = fetchMock.mock.calls[1] as [string, RequestInit];
    expect((second[1].headers as Record<string, string>).Authorization).toBe('Bearer new');
  });

  it('reports an unreachable server as a network error', async () => {
    vi.stubGlobal('fetch', vi.fn(async () => Promise.reject(new TypeError('fetch failed'))));
    await expect(api.get('/api/me')).rejects.toMatchObject({ code: 'network', status: 0 });
  });

  it('sends a fresh Idempotency-Key with every mutation, none with reads, and keeps it for the 401 retry', async () => {
    const fetchMock = vi.fn(async (_url: string, init: RequestInit) =>
      (init.headers as Record<string, string>).Authorization === 'Bearer old'
        ? respond(401, { error: { code: 'unauthenticated', message: 'expired' } })
        : respond(200, {}),
    );
    vi.stubGlobal('fetch', fetchMock);
    let token = 'old';
    setTokenSource({ getAccessToken: async () => token, refreshAccessToken: async () => (token = 'new') });
    await api.post('/api/actions/sendMessage', { collaborationId: 'c', payload: { text: 'a' } });
    await api.post('/api/actions/sendMessage', { collaborationId: 'c', payload: { text: 'a' } });
    await api.get('/api/me');
    const keys = fetchMock.mock.calls.map(([, init]) => (init.headers as Record<string, string>)['Idempotency-Key']);
    // POST (401), its retry with the same key, a second POST with another key, then a GET without one.
    expect(keys).toHaveLength(4);
    expect(keys[0]).toMatch(/^[A-Za-z0-9_-]{1,128}$/);
    expect(keys[1]).toBe(keys[0]);
    expect(keys[2]).toMatch(/^[A-Za-z0-9_-]{1,128}$/);
    expect(keys[2]).not.toBe(keys[0]);
    expect(keys[3]).toBeUndefined();
  });

  it('uses the key it is given and reports a replayed answer as a success', async () => {
    const fetchMock = vi.fn(async () => respond(200, { collaborationId: 'c', version: 3 }, { 'Idempotent-Replayed': 'true' }));
    vi.stubGlobal('fetch', fetchMock);
    const answer = await api.request('POST', '/api/actions/sendMessage', { body: {}, idempotencyKey: 'my-key_1' });
    expect(answer).toMatchObject({ status: 200, replayed: true });
    const [, init] = fetchMock.mock.calls[0] as unknown as [string, RequestInit];
    expect((init.headers as Record<string, string>)['Idempotency-Key']).toBe('my-key_1');
  });

  it('waits out 409 request_in_progress and asks again with the same key', async () => {
    vi.useFakeTimers();
    try {
      const fetchMock = vi
        .fn()
        .mockResolvedValueOnce(respond(409, { error: { code: 'request_in_progress', message: 'running', details: {} } }, { 'Retry-After': '2' }))
        .mockResolvedValueOnce(respond(200, { ok: 1 }, { 'Idempotent-Replayed': 'true' }));
      vi.stubGlobal('fetch', fetchMock);
      const pending = api.request('POST', '/api/actions/sendMessage', { body: {}, idempotencyKey: 'k1' });
      await vi.advanceTimersByTimeAsync(1_900);
      expect(fetchMock).toHaveBeenCalledTimes(1);
      await vi.advanceTimersByTimeAsync(200);
      await expect(pending).resolves.toMatchObject({ status: 200, data: { ok: 1 }, replayed: true });
      const keys = fetchMock.mock.calls.map(([, init]) => (init as RequestInit).headers as Record<string, string>);
      expect(keys.map((h) => h['Idempotency-Key'])).toEqual(['k1', 'k1']);
    } finally {
      vi.useRealTimers();
    }
  });

  it('accepts bare and wrapped lists', () => {
    expect(unwrapList([1, 2], 'items')).toEqual([1, 2]);
    expect(unwrapList({ collaborations: [1] }, 'collaborations')).toEqual([1]);
    expect(unwrapList({ items: [3] }, 'messages')).toEqual([3]);
    expect(unwrapList(null, 'x')).toEqual([]);
  });
});
