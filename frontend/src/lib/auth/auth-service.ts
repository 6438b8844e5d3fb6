// Signing in and out, and keeping the access token fresh, for both auth modes.
// It is the token source of the HTTP client and of the realtime client.

import { ApiError, setTokenSource, type TokenSource } from '@/lib/api-client';
import type { RuntimeConfig } from '@/lib/runtime-config';

import { devLogin } from './dev-login';
import { sessionStore, type Session } from './session-store';
import { fromSupabase, getSupabase } from './supabase-client';

/** Refresh a token this long before it expires. */
const EARLY_REFRESH_MS = 90_000;

export class AuthService implements TokenSource {
  private refreshing: Promise<string | null> | null = null;
  private stopSupabase: (() => void) | null = null;

  constructor(readonly config: RuntimeConfig) {}

  /** Restore an earlier session and install this service as the clients' token source. */
  async start(): Promise<Session | null> {
    setTokenSource(this);
    if (this.config.authMode === 'dev') {
      const saved = sessionStore.restoreDev();
      sessionStore.set(saved);
      return saved;
    }
    const supabase = await this.supabase();
    const { data } = await supabase.auth.getSession();
    const { data: listener } = supabase.auth.onAuthStateChange((_event, session) => {
      sessionStore.set(fromSupabase(session));
    });
    this.stopSupabase = () => listener.subscription.unsubscribe();
    const session = fromSupabase(data.session);
    sessionStore.set(session);
    return session;
  }

  dispose(): void {
    this.stopSupabase?.();
    setTokenSource(null);
  }

  async signInDev(email: string): Promise<Session> {
    const response = await devLogin(email);
    const session: Session = {
      user: response.user,
      accessToken: response.access_token,
      expiresAt: Date.now() + response.expires_in * 1000,
      method: 'dev',
    };
    sessionStore.set(session);
    return session;
  }

  async signInWithPassword(email: string, password: string): Promise<Session> {
    const supabase = await this.supabase();
    const { data, error } = await supabase.auth.signInWithPassword({ email, password });
    if (error) throw new Error(friendlySupabaseError(error.message));
    const session = fromSupabase(data.session);
    if (!session) throw new Error('Sign-in did not return a session.');
    sessionStore.set(session);
    return session;
  }

  /** Create an account; returns null when Supabase first wants the email confirmed. */
  async signUp(email: string, password: string): Promise<Session | null> {
    const supabase = await this.supabase();
    const { data, error } = await supabase.auth.signUp({ email, password });
    if (error) throw new Error(friendlySupabaseError(error.message));
    const session = fromSupabase(data.session);
    if (session) sessionStore.set(session);
    return session;
  }

  async signOut(): Promise<void> {
    if (this.config.authMode === 'supabase') {
      const supabase = await this.supabase();
      await supabase.auth.signOut().catch(() => undefined);
    }
    sessionStore.set(null);
  }

  // ---- TokenSource ----------------------------------------------------

  async getAccessToken(): Promise<string | null> {
    const session = sessionStore.get();
    if (!session) return null;
    if (session.expiresAt !== null && session.expiresAt - Date.now() < EARLY_REFRESH_MS) {
      try {
        return await this.refreshAccessToken();
      } catch (error) {
        // The refresh failed for now (network, 5xx): the old token still works until it expires.
        const current = sessionStore.get();
        if (current && current.expiresAt !== null && current.expiresAt > Date.now()) return current.accessToken;
        throw error;
      }
    }
    return session.accessToken;
  }

  /**
   * A fresh token. Null only when the sign-in service definitely refused the session (it is then
   * cleared: signed out). A failure that may pass (network, 5xx, 429) keeps the session and throws
   * an ApiError (code network / unavailable / rate_limited): the caller tries again later.
   */
  refreshAccessToken(): Promise<string | null> {
    this.refreshing ??= this.refresh().finally(() => {
      this.refreshing = null;
    });
    return this.refreshing;
  }

  private async refresh(): Promise<string | null> {
    const session = sessionStore.get();
    if (!session) return null;
    try {
      return session.method === 'dev' ? await this.refreshDev(session) : await this.refreshSupabase();
    } catch (error) {
      if (!isDefiniteRejection(error)) throw asTransient(error);
      // Refused: signed out (unless someone signed in meanwhile).
      if (sessionStore.get() === session) sessionStore.set(null);
      return null;
    }
  }

  /** Dev tokens are minted on request: sign in again as the same person. */
  private async refreshDev(session: Session): Promise<string> {
    if (!session.user.email) throw new SessionRefused('no email to sign in again with');
    return (await this.signInDev(session.user.email)).accessToken;
  }

  private async refreshSupabase(): Promise<string> {
    const supabase = await this.supabase();
    const { data, error } = await supabase.auth.refreshSession();
    if (error) throw error;
    const next = fromSupabase(data.session);
    if (!next) throw new SessionRefused('the refresh returned no session');
    sessionStore.set(next);
    return next.accessToken;
  }

  private supabase() {
    if (this.config.authMode !== 'supabase') throw new Error('Supabase sign-in is not enabled on this server.');
    return getSupabase(this.config.supabaseUrl, this.config.supabaseAnonKey);
  }
}

/** The session cannot be refreshed, whatever happens next. */
class SessionRefused extends Error {}

function statusOf(error: unknown): number {
  const status = (error as { status?: unknown } | null)?.status;
  return typeof status === 'number' ? status : 0;
}

/**
 * Only a definite "no" ends the session: dev-login answering 4xx, Supabase answering with an
 * AuthApiError 4xx (refresh token not found / already used, invalid_grant…) or having no refresh
 * token at all (AuthSessionMissingError). Network errors, 5xx and 429 pass.
 */
function isDefiniteRejection(error: unknown): boolean {
  if (error instanceof SessionRefused) return true;
  const status = statusOf(error);
  const refusal = status >= 400 && status < 500 && status !== 429;
  if (error instanceof ApiError) return refusal;
  const name = (error as { name?: unknown } | null)?.name;
  if (name === 'AuthSessionMissingError') return true;
  return name === 'AuthApiError' && refusal;
}

function asTransient(error: unknown): ApiError {
  if (error instanceof ApiError) return error;
  const status = statusOf(error);
  const code = status === 429 ? 'rate_limited' : status >= 500 ? 'unavailable' : 'network';
  const message = error instanceof Error ? error.message : String(error);
  return new ApiError(status, { code, message, details: {} });
}

function friendlySupabaseError(message: string): string {
  if (/invalid login credentials/i.test(message)) return 'That email and password do not match an account.';
  if (/email not confirmed/i.test(message)) return 'Please confirm your email address first (check your inbox).';
  if (/already registered/i.test(message)) return 'An account with that email already exists. Sign in instead.';
  if (/password/i.test(message) && /least/i.test(message)) return message;
  if (/fetch|network/i.test(message)) return "Can't reach the sign-in service. Check your connection and try again.";
  return message;
}
