import { describe, expect, it } from 'vitest';

import { backoffDelay } from './backoff';

const options = { initial: 500, max: 30_000, factor: 2 };

describe('backoffDelay', () => {
  it('doubles its ceiling with every attempt, up to the maximum', () => {
    const top = (attempt: number) => backoffDelay(attempt, options, () => 1);
    expect([0, 1, 2, 3, 4].map(top)).toEqual([500, 1000, 2000, 4000, 8000]);
    expect(top(10)).toBe(30_000);
    expect(top(50)).toBe(30_000);
  });

  it('draws the delay from the upper half of the ceiling (jitter)', () => {
    expect(backoffDelay(3, options, () => 0)).toBe(2000);
    expect(backoffDelay(3, options, () => 0.5)).toBe(3000);
    const seen = new Set(Array.from({ length: 50 }, () => backoffDelay(5, options)));
    for (const delay of seen) {
      expect(delay).toBeGreaterThanOrEqual(8000);
      expect(delay).toBeLessThanOrEqual(16000);
    }
    expect(seen.size).toBeGreaterThan(1);
  });
});
