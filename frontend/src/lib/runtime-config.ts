// The server's public settings (GET /api/config), fetched and validated once.

import { api } from '@/lib/api-client';

export type RuntimeConfig =
  | { authMode: 'dev' }
  | { authMode: 'supabase'; supabaseUrl: string; supabaseAnonKey: string };

export class RuntimeConfigError extends Error {}

export function parseRuntimeConfig(raw: unknown): RuntimeConfig {
  const data = (raw ?? {}) as Record<string, unknown>;
  if (data.authMode === 'dev') return { authMode: 'dev' };
  if (data.authMode === 'supabase') {
    const { supabaseUrl, supabaseAnonKey } = data;
    if (typeof supabaseUrl !== 'string' || !/^https?:\/\//.test(supabaseUrl)) {
      throw new RuntimeConfigError('The server runs Supabase sign-in but sent no valid supabaseUrl.');
    }
    if (typeof supabaseAnonKey !== 'string' || !supabaseAnonKey) {
      throw new RuntimeConfigError('The server runs Supabase sign-in but sent no supabaseAnonKey.');
    }
    return { authMode: 'supabase', supabaseUrl, supabaseAnonKey };
  }
  throw new RuntimeConfigError(`The server sent an unknown authMode: ${JSON.stringify(data.authMode)}.`);
}

let pending: Promise<RuntimeConfig> | null = null;

export function loadRuntimeConfig(): Promise<RuntimeConfig> {
  pending ??= api.get<unknown>('/api/config', { auth: false }).then(parseRuntimeConfig);
  pending.catch(() => {
    pending = null; // let a retry ask again
  });
  return pending;
}
