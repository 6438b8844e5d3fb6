import { createContext, useContext } from 'react';

import type { RuntimeConfig } from '@/lib/runtime-config';

import type { AuthService } from './auth-service';
import type { Session } from './session-store';

export type AuthContextValue = {
  config: RuntimeConfig;
  session: Session | null;
  service: AuthService;
};

export const AuthContext = createContext<AuthContextValue | null>(null);

export function useAuth(): AuthContextValue {
  const value = useContext(AuthContext);
  if (!value) throw new Error('useAuth needs an <AuthProvider>');
  return value;
}

/** The signed-in user (inside the signed-in part of the app). */
export function useSession(): Session {
  const { session } = useAuth();
  if (!session) throw new Error('useSession needs a signed-in user');
  return session;
}
