import { useCallback, useRef, useState } from 'react';

/** Run an async operation from a component: pending flag, the last error, no update after unmount. */
export function useMutation<Args extends unknown[], Result>(operation: (...args: Args) => Promise<Result>) {
  const [pending, setPending] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const latest = useRef(operation);
  latest.current = operation;

  const run = useCallback(async (...args: Args): Promise<Result | undefined> => {
    setPending(true);
    setError(null);
    try {
      return await latest.current(...args);
    } catch (caught) {
      setError(caught);
      return undefined;
    } finally {
      setPending(false);
    }
  }, []);

  const reset = useCallback(() => setError(null), []);
  return { run, pending, error, reset };
}
