// A stand-in for Supabase Auth, the one outer edge the sign-in tests fake: what
// `createClient` of @supabase/supabase-js returns, reduced to the calls the SPA
// makes. Tests install it with
//   vi.mock('@supabase/supabase-js', async (original) => ({ ...(await original()), createClient }))
// so the real error classes (AuthApiError, AuthRetryableFetchError…) stay.

import type { AuthChangeEvent, Session, SupabaseClient } from '@supabase/supabase-js';

type Reply<T> = { data: T; error: Error | null };
type SessionReply = Reply<{ session: Session | null; user: Session['user'] | null }>;
type Listener = (event: AuthChangeEvent, session: Session | null) => void;

/** A Supabase session for `email`, expiring `expiresIn` seconds from now. */
export function supabaseSession(email = 'ann@example.com', token = 'sb-token', expiresIn = 3600): Session {
  const user = { id: `user-${email}`, email, aud: 'authenticated', app_metadata: {}, user_metadata: {}, created_at: '' };
  return {
    access_token: token,
    refresh_token: `refresh-${token}`,
    token_type: 'bearer',
    expires_in: expiresIn,
    expires_at: Math.floor(Date.now() / 1000) + expiresIn,
    user,
  } as Session;
}

export const reply = {
  session: (session: Session | null): SessionReply => ({ data: { session, user: session?.user ?? null }, error: null }),
  error: (error: Error): SessionReply => ({ data: { session: null, user: null }, error }),
};

class FakeSupabaseAuth {
  /** What getSession() finds (a session kept from an earlier visit). */
  stored: Session | null = null;
  signInReply: SessionReply = reply.session(null);
  signUpReply: SessionReply = reply.session(null);
  refreshReply: SessionReply = reply.session(null);
  readonly calls: Array<{ method: string; args?: unknown }> = [];
  readonly listeners = new Set<Listener>();

  reset(): void {
    this.stored = null;
    this.signInReply = reply.session(null);
    this.signUpReply = reply.session(null);
    this.refreshReply = reply.session(null);
    this.calls.length = 0;
    this.listeners.clear();
  }

  /** Supabase telling its subscribers about a change (its own token refresh, a sign-out in another tab). */
  emit(event: AuthChangeEvent, session: Session | null): void {
    for (const listener of [...this.listeners]) listener(event, session);
  }

  async getSession() {
    this.calls.push({ method: 'getSession' });
    return { data: { session: this.stored }, error: null };
  }

  onAuthStateChange(listener: Listener) {
    this.listeners.add(listener);
    return { data: { subscription: { unsubscribe: () => this.listeners.delete(listener) } } };
  }

  async signInWithPassword(args: { email: string; password: string }) {
    this.calls.push({ method: 'signInWithPassword', args });
    return this.signInReply;
  }

  async signUp(args: { email: string; password: string }) {
    this.calls.push({ method: 'signUp', args });
    return this.signUpReply;
  }

  async refreshSession() {
    this.calls.push({ method: 'refreshSession' });
    return this.refreshReply;
  }

  async signOut() {
    this.calls.push({ method: 'signOut' });
    return { error: null };
  }
}

export const fakeAuth = new FakeSupabaseAuth();
export const createdClients: Array<{ url: string; key: string }> = [];

export function createClient(url: string, key: string): SupabaseClient {
  createdClients.push({ url, key });
  return { auth: fakeAuth } as unknown as SupabaseClient;
}
