// Exponential backoff with jitter: the ceiling doubles with every failed
// attempt up to `max`, and the delay is drawn from the upper half of it so
// that many clients dropped at once do not come back in lockstep.

export type BackoffOptions = { initial: number; max: number; factor: number };

export const DEFAULT_BACKOFF: BackoffOptions = { initial: 500, max: 30_000, factor: 2 };

export function backoffDelay(attempt: number, options: BackoffOptions = DEFAULT_BACKOFF, random: () => number = Math.random): number {
  const ceiling = Math.min(options.max, options.initial * options.factor ** Math.max(0, attempt));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}
