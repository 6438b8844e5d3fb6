// The server's public settings (GET /api/config), fetched and validated once.

import { api } from '@/lib/api-client';

export type RuntimeConfig = (
  | { authMode: 'dev' }
  | { authMode: 'supabase'; supabaseUrl: string; supabaseAnonKey: string }
) & {
  /** The longest message (and AI question) the server takes, in characters (MAX_MESSAGE_CHARS). */
  maxMessageChars: number;
};

/** What a server that does not say (an older one) takes: DESIGN.md §3's default. */
export const DEFAULT_MAX_MESSAGE_CHARS = 4000;

export class RuntimeConfigError extends Error {}

function parseMaxMessageChars(value: unknown): number {
  if (value === undefined || value === null) return DEFAULT_MAX_MESSAGE_CHARS;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
    throw new RuntimeConfigError(`The server sent an invalid maxMessageChars: ${JSON.stringify(value)}.`);
  }
  return value;
}

export function parseRuntimeConfig(raw: unknown): RuntimeConfig {
  const data = (raw ?? {}) as Record<string, unknown>;
  const maxMessageChars = parseMaxMessageChars(data.maxMessageChars);
  if (data.authMode === 'dev') return { authMode: 'dev', maxMessageChars };
  if (data.authMode === 'supabase') {
    const { supabaseUrl, supabaseAnonKey } = data;
    if (typeof supabaseUrl !== 'string' || !/^https?:\/\//.test(supabaseUrl)) {
      throw new RuntimeConfigError('The server runs Supabase sign-in but sent no valid supabaseUrl.');
    }
    if (typeof supabaseAnonKey !== 'string' || !supabaseAnonKey) {
      throw new RuntimeConfigError('The server runs Supabase sign-in but sent no supabaseAnonKey.');
    }
    return { authMode: 'supabase', supabaseUrl, supabaseAnonKey, maxMessageChars };
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
