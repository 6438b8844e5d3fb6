// Supabase Auth, loaded only when the server runs AUTH_MODE=supabase.

import type { Session as SupabaseSession, SupabaseClient } from '@supabase/supabase-js';

import type { Session } from './session-store';

let client: Promise<SupabaseClient> | null = null;

export function getSupabase(url: string, anonKey: string): Promise<SupabaseClient> {
  client ??= import('@supabase/supabase-js').then(({ createClient }) =>
    createClient(url, anonKey, { auth: { persistSession: true, autoRefreshToken: true, detectSessionInUrl: true } }),
  );
  return client;
}

export function fromSupabase(session: SupabaseSession | null): Session | null {
  if (!session) return null;
  return {
    user: { id: session.user.id, email: session.user.email ?? null },
    accessToken: session.access_token,
    expiresAt: session.expires_at ? session.expires_at * 1000 : null,
    method: 'supabase',
  };
}
