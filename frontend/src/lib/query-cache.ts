// A small shared cache for HTTP reads: one request per key however many
// components ask, refetch on demand, and local updates from realtime events.

export type QueryState<T> = {
  data: T | undefined;
  error: unknown;
  loading: boolean;
  updatedAt: number;
};

type Entry<T> = {
  state: QueryState<T>;
  inflight: Promise<void> | null;
  listeners: Set<() => void>;
};

const entries = new Map<string, Entry<unknown>>();

function entry<T>(key: string): Entry<T> {
  let found = entries.get(key) as Entry<T> | undefined;
  if (!found) {
    found = { state: { data: undefined, error: null, loading: false, updatedAt: 0 }, inflight: null, listeners: new Set() };
    entries.set(key, found as Entry<unknown>);
  }
  return found;
}

function update<T>(key: string, patch: Partial<QueryState<T>>): void {
  const target = entry<T>(key);
  target.state = { ...target.state, ...patch };
  for (const listener of [...target.listeners]) listener();
}

export const queryCache = {
  state<T>(key: string): QueryState<T> {
    return entry<T>(key).state;
  },
  subscribe(key: string, listener: () => void): () => void {
    const target = entry(key);
    target.listeners.add(listener);
    return () => target.listeners.delete(listener);
  },
  fetch<T>(key: string, fetcher: () => Promise<T>): Promise<void> {
    const target = entry<T>(key);
    if (target.inflight) return target.inflight;
    update<T>(key, { loading: true });
    target.inflight = fetcher().then(
      (data) => update<T>(key, { data, error: null, loading: false, updatedAt: Date.now() }),
      (error: unknown) => update<T>(key, { error, loading: false, updatedAt: Date.now() }),
    );
    void target.inflight.finally(() => {
      target.inflight = null;
    });
    return target.inflight;
  },
  setData<T>(key: string, updater: (current: T | undefined) => T | undefined): void {
    const target = entry<T>(key);
    const data = updater(target.state.data);
    if (data !== target.state.data) update<T>(key, { data });
  },
  /** Mark keys starting with `prefix` stale: mounted queries refetch. */
  invalidate(prefix: string): void {
    for (const [key, target] of entries) {
      if (!key.startsWith(prefix)) continue;
      target.state = { ...target.state, updatedAt: 0 };
      for (const listener of [...target.listeners]) listener();
    }
  },
  clear(): void {
    entries.clear();
  },
};
