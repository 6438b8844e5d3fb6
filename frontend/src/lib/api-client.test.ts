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

  it('accepts bare and wrapped lists', () => {
    expect(unwrapList([1, 2], 'items')).toEqual([1, 2]);
    expect(unwrapList({ collaborations: [1] }, 'collaborations')).toEqual([1]);
    expect(unwrapList({ items: [3] }, 'messages')).toEqual([3]);
    expect(unwrapList(null, 'x')).toEqual([]);
  });
});
