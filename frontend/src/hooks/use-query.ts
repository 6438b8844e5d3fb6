import { useCallback, useEffect, useRef, useSyncExternalStore } from 'react';

import { queryCache, type QueryState } from '@/lib/query-cache';

type Options = {
  /** Refetch this often (ms) while mounted; 0: never. */
  pollInterval?: number;
  /** Data younger than this (ms) is not fetched again on mount. */
  staleTime?: number;
  enabled?: boolean;
};

export function useQuery<T>(key: string, fetcher: () => Promise<T>, options: Options = {}) {
  const { pollInterval = 0, staleTime = 5_000, enabled = true } = options;
  const latest = useRef(fetcher);
  latest.current = fetcher;

  const subscribe = useCallback((listener: () => void) => queryCache.subscribe(key, listener), [key]);
  const state = useSyncExternalStore(subscribe, () => queryCache.state<T>(key)) as QueryState<T>;

  const refetch = useCallback(() => queryCache.fetch(key, () => latest.current()), [key]);

  // Fetch when mounted, when the key changes and when invalidated (updatedAt 0).
  useEffect(() => {
    if (enabled && Date.now() - state.updatedAt > staleTime && !state.loading) void refetch();
  }, [enabled, refetch, staleTime, state.updatedAt, state.loading]);

  useEffect(() => {
    if (!enabled) return undefined;
    const onFocus = () => void refetch();
    window.addEventListener('focus', onFocus);
    const timer = pollInterval > 0 ? setInterval(() => void refetch(), pollInterval) : null;
    return () => {
      window.removeEventListener('focus', onFocus);
      if (timer) clearInterval(timer);
    };
  }, [enabled, pollInterval, refetch]);

  return { ...state, refetch };
}
