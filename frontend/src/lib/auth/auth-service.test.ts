import { AuthApiError, AuthRetryableFetchError, AuthSessionMissingError } from '@supabase/supabase-js';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import { ApiError } from '@/lib/api-client';
import type { RuntimeConfig } from '@/lib/runtime-config';
import { createdClients, fakeAuth, reply, supabaseSession } from '@/testing/fake-supabase';

import { AuthService } from './auth-service';
import { sessionStore, type Session } from './session-store';

vi.mock('@supabase/supabase-js', async (original) => ({
  ...(await original<typeof import('@supabase/supabase-js')>()),
  createClient: (await import('@/testing/fake-supabase')).createClient,
}));

const SUPABASE: RuntimeConfig = { authMode: 'supabase', supabaseUrl: 'https://sb.example', supabaseAnonKey: 'anon', maxMessageChars: 4000 };
const DEV: RuntimeConfig = { authMode: 'dev', maxMessageChars: 4000 };

const json = (status: number, body: unknown) =>
  new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });

let service: AuthService | null = null;

async function started(config: RuntimeConfig): Promise<AuthService> {
  service = new AuthService(config);
  await service.start();
  return service;
}

beforeEach(() => {
  fakeAuth.reset();
  sessionStore.set(null);
});

afterEach(() => {
  service?.dispose();
  service = null;
  vi.unstubAllGlobals();
});

describe('AuthService with Supabase', () => {
  it('restores the session Supabase kept and talks to the configured project', async () => {
    fakeAuth.stored = supabaseSession('ann@example.com', 'kept');
    const auth = await started(SUPABASE);
    expect(createdClients.at(-1)).toEqual({ url: 'https://sb.example', key: 'anon' });
    expect(sessionStore.get()).toMatchObject({ accessToken: 'kept', method: 'supabase', user: { email: 'ann@example.com' } });
    expect(await auth.getAccessToken()).toBe('kept');
  });

  it('signs in with email and password', async () => {
    const auth = await started(SUPABASE);
    fakeAuth.signInReply = reply.session(supabaseSession('ann@example.com', 'signed-in'));
    const session = await auth.signInWithPassword('ann@example.com', 'secret1');
    expect(fakeAuth.calls.at(-1)).toEqual({ method: 'signInWithPassword', args: { email: 'ann@example.com', password: 'secret1' } });
    expect(session).toMatchObject({ accessToken: 'signed-in', user: { id: 'user-ann@example.com', email: 'ann@example.com' } });
    expect(sessionStore.get()).toEqual(session);
    expect(session.expiresAt).toBeGreaterThan(Date.now());
  });

  it.each([
    [new AuthApiError('Invalid login credentials', 400, 'invalid_credentials'), 'That email and password do not match an account.'],
    [new AuthApiError('Email not confirmed', 400, 'email_not_confirmed'), 'Please confirm your email address first (check your inbox).'],
    [new AuthRetryableFetchError('Failed to fetch', 0), "Can't reach the sign-in service. Check your connection and try again."],
  ])('words a refused sign-in for people (%s)', async (error, text) => {
    const auth = await started(SUPABASE);
    fakeAuth.signInReply = reply.error(error);
    await expect(auth.signInWithPassword('ann@example.com', 'secret1')).rejects.toThrow(text);
    expect(sessionStore.get()).toBeNull();
  });

  it('signs up, and says when Supabase first wants the email confirmed', async () => {
    const auth = await started(SUPABASE);
    fakeAuth.signUpReply = reply.session(supabaseSession('bo@example.com', 'new'));
    expect(await auth.signUp('bo@example.com', 'secret1')).toMatchObject({ accessToken: 'new' });
    expect(sessionStore.get()?.user.email).toBe('bo@example.com');

    sessionStore.set(null);
    fakeAuth.signUpReply = reply.session(null);
    expect(await auth.signUp('cy@example.com', 'secret1')).toBeNull();
    expect(sessionStore.get()).toBeNull();
    expect(fakeAuth.calls.filter((call) => call.method === 'signUp')).toHaveLength(2);
  });

  it.each([
    [new AuthApiError('User already registered', 422, 'user_already_exists'), 'An account with that email already exists. Sign in instead.'],
    [new AuthApiError('Password should be at least 6 characters.', 422, 'weak_password'), 'Password should be at least 6 characters.'],
  ])('words a refused sign-up for people (%s)', async (error, text) => {
    const auth = await started(SUPABASE);
    fakeAuth.signUpReply = reply.error(error);
    await expect(auth.signUp('ann@example.com', 'secret1')).rejects.toThrow(text);
  });

  it('follows Supabase: its own token refreshes and a sign-out elsewhere', async () => {
    await started(SUPABASE);
    fakeAuth.emit('SIGNED_IN', supabaseSession('ann@example.com', 'one'));
    expect(sessionStore.get()?.accessToken).toBe('one');
    fakeAuth.emit('TOKEN_REFRESHED', supabaseSession('ann@example.com', 'two'));
    expect(sessionStore.get()?.accessToken).toBe('two');
    fakeAuth.emit('SIGNED_OUT', null);
    expect(sessionStore.get()).toBeNull();
  });

  it('stops listening when disposed', async () => {
    const auth = await started(SUPABASE);
    expect(fakeAuth.listeners.size).toBe(1);
    auth.dispose();
    service = null;
    expect(fakeAuth.listeners.size).toBe(0);
  });

  it('refreshes the token', async () => {
    fakeAuth.stored = supabaseSession('ann@example.com', 'old');
    const auth = await started(SUPABASE);
    fakeAuth.refreshReply = reply.session(supabaseSession('ann@example.com', 'fresh'));
    expect(await auth.refreshAccessToken()).toBe('fresh');
    expect(sessionStore.get()?.accessToken).toBe('fresh');
  });

  it('refreshes a token about to expire before handing it out, once for concurrent callers', async () => {
    fakeAuth.stored = supabaseSession('ann@example.com', 'old', 30);
    const auth = await started(SUPABASE);
    fakeAuth.refreshReply = reply.session(supabaseSession('ann@example.com', 'fresh'));
    expect(await Promise.all([auth.getAccessToken(), auth.getAccessToken()])).toEqual(['fresh', 'fresh']);
    expect(fakeAuth.calls.filter((call) => call.method === 'refreshSession')).toHaveLength(1);
  });

  it.each([
    ['refresh token not found', new AuthApiError('Invalid Refresh Token: Refresh Token Not Found', 400, 'refresh_token_not_found')],
    ['invalid_grant', new AuthApiError('invalid_grant', 400, 'invalid_grant')],
    ['refresh token already used', new AuthApiError('Invalid Refresh Token: Already Used', 400, 'refresh_token_already_used')],
    ['no session to refresh', new AuthSessionMissingError()],
  ])('signs out when Supabase refuses the refresh (%s)', async (_name, error) => {
    fakeAuth.stored = supabaseSession('ann@example.com', 'old');
    const auth = await started(SUPABASE);
    fakeAuth.refreshReply = reply.error(error);
    expect(await auth.refreshAccessToken()).toBeNull();
    expect(sessionStore.get()).toBeNull();
  });

  it.each([
    ['network error', new AuthRetryableFetchError('Failed to fetch', 0), 'network'],
    ['502 from the gateway', new AuthRetryableFetchError('Bad Gateway', 502), 'unavailable'],
    ['500 from the Auth API', new AuthApiError('Unexpected failure', 500, 'unexpected_failure'), 'unavailable'],
    ['429 rate limited', new AuthApiError('Request rate limit reached', 429, 'over_request_rate_limit'), 'rate_limited'],
  ])('keeps the session when the refresh fails for now (%s)', async (_name, error, code) => {
    fakeAuth.stored = supabaseSession('ann@example.com', 'old');
    const auth = await started(SUPABASE);
    const before = sessionStore.get();
    fakeAuth.refreshReply = reply.error(error);
    const failure = await auth.refreshAccessToken().catch((caught: unknown) => caught);
    expect(failure).toBeInstanceOf(ApiError);
    expect((failure as ApiError).code).toBe(code);
    expect(sessionStore.get()).toBe(before);

    // It passes: the next try works.
    fakeAuth.refreshReply = reply.session(supabaseSession('ann@example.com', 'fresh'));
    expect(await auth.refreshAccessToken()).toBe('fresh');
  });

  it('hands out the old token while it still works when an early refresh fails for now', async () => {
    fakeAuth.stored = supabaseSession('ann@example.com', 'old', 30);
    const auth = await started(SUPABASE);
    fakeAuth.refreshReply = reply.error(new AuthRetryableFetchError('Failed to fetch', 0));
    expect(await auth.getAccessToken()).toBe('old');
    expect(sessionStore.get()?.accessToken).toBe('old');
  });
});

describe('AuthService in dev mode', () => {
  const devSession: Session = {
    user: { id: 'u1', email: 'ann@example.com' },
    accessToken: 'dev-old',
    expiresAt: Date.now() - 1_000,
    method: 'dev',
  };

  it('signs in again as the same person to refresh', async () => {
    const fetchMock = vi.fn(async () =>
      json(200, { access_token: 'dev-new', token_type: 'bearer', expires_in: 3600, user: { id: 'u1', email: 'ann@example.com' } }),
    );
    vi.stubGlobal('fetch', fetchMock);
    const auth = await started(DEV);
    sessionStore.set(devSession);
    expect(await auth.refreshAccessToken()).toBe('dev-new');
    expect(fetchMock).toHaveBeenCalledWith('/api/auth/dev-login', expect.objectContaining({ method: 'POST', body: JSON.stringify({ email: 'ann@example.com' }) }));
  });

  it('signs out when dev-login refuses (4xx)', async () => {
    vi.stubGlobal('fetch', vi.fn(async () => json(404, { error: { code: 'not_found', message: 'dev login is off', details: {} } })));
    const auth = await started(DEV);
    sessionStore.set(devSession);
    expect(await auth.refreshAccessToken()).toBeNull();
    expect(sessionStore.get()).toBeNull();
  });

  it.each([
    ['the API is down (503)', async () => json(503, { error: { code: 'unavailable', message: 'starting', details: {} } }), 'unavailable'],
    ['a network error', async () => Promise.reject(new TypeError('Failed to fetch')), 'network'],
  ])('keeps the session when dev-login fails for now (%s)', async (_name, answer, code) => {
    vi.stubGlobal('fetch', vi.fn(answer));
    const auth = await started(DEV);
    sessionStore.set(devSession);
    await expect(auth.refreshAccessToken()).rejects.toMatchObject({ code });
    expect(sessionStore.get()).toEqual(devSession);
  });
});
