import { useEffect, useState, type ReactNode } from 'react';

import { Spinner } from '@/components/ui/spinner';
import { ErrorMessage } from '@/components/ui/error-message';
import { loadRuntimeConfig, type RuntimeConfig } from '@/lib/runtime-config';

import { AuthContext } from './auth-context';
import { AuthService } from './auth-service';
import { sessionStore, type Session } from './session-store';

type State =
  | { status: 'loading' }
  | { status: 'error'; error: unknown }
  | { status: 'ready'; config: RuntimeConfig; service: AuthService };

/** Loads GET /api/config, restores the session and provides both. */
export function AuthProvider({ children }: { children: ReactNode }) {
  const [state, setState] = useState<State>({ status: 'loading' });
  const [session, setSession] = useState<Session | null>(sessionStore.get());
  const [attempt, setAttempt] = useState(0);

  useEffect(() => sessionStore.subscribe(setSession), []);

  useEffect(() => {
    let cancelled = false;
    let service: AuthService | null = null;
    setState({ status: 'loading' });
    loadRuntimeConfig()
      .then(async (config) => {
        service = new AuthService(config);
        await service.start();
        if (!cancelled) setState({ status: 'ready', config, service });
      })
      .catch((error: unknown) => {
        if (!cancelled) setState({ status: 'error', error });
      });
    return () => {
      cancelled = true;
      service?.dispose();
    };
  }, [attempt]);

  if (state.status === 'loading') {
    return (
      <div className="page-center">
        <Spinner label="Loading Tandem…" />
      </div>
    );
  }
  if (state.status === 'error') {
    return (
      <div className="page-center">
        <div className="card narrow">
          <h1>Tandem is not reachable</h1>
          <p>We couldn't load the app's settings from the server.</p>
          <ErrorMessage error={state.error} />
          <button type="button" className="button primary" onClick={() => setAttempt((n) => n + 1)}>
            Try again
          </button>
        </div>
      </div>
    );
  }
  return (
    <AuthContext.Provider value={{ config: state.config, session, service: state.service }}>{children}</AuthContext.Provider>
  );
}
