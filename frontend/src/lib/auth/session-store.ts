// The signed-in session: who I am and my access token. Dev sessions are kept
// in localStorage so a reload keeps me signed in; Supabase keeps its own.

import { queryCache } from '@/lib/query-cache';
import type { User } from '@/types/api';

export type Session = {
  user: User;
  accessToken: string;
  /** Milliseconds since the epoch, or null when unknown. */
  expiresAt: number | null;
  method: 'dev' | 'supabase';
};

const STORAGE_KEY = 'tandem.devSession';

type Listener = (session: Session | null) => void;

let current: Session | null = null;
const listeners = new Set<Listener>();

export const sessionStore = {
  get(): Session | null {
    return current;
  },
  set(session: Session | null): void {
    // Another person (or nobody): nothing read for the previous one may show.
    if (current?.user.id !== session?.user.id) queryCache.clear();
    current = session;
    try {
      if (session?.method === 'dev') localStorage.setItem(STORAGE_KEY, JSON.stringify(session));
      else localStorage.removeItem(STORAGE_KEY);
    } catch {
      // storage unavailable (private mode): the session lives in memory only
    }
    for (const listener of [...listeners]) listener(session);
  },
  subscribe(listener: Listener): () => void {
    listeners.add(listener);
    return () => listeners.delete(listener);
  },
  /** A dev session saved by an earlier visit, if any. */
  restoreDev(): Session | null {
    try {
      const raw = localStorage.getItem(STORAGE_KEY);
      if (!raw) return null;
      const session = JSON.parse(raw) as Session;
      if (session?.method !== 'dev' || typeof session.accessToken !== 'string' || !session.user?.id) return null;
      return session;
    } catch {
      return null;
    }
  },
};
