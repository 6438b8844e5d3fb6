"""A per-key token bucket: `limit` actions per `window` seconds, refilled smoothly."""

from __future__ import annotations

import time

from backend.errors import RateLimited


class RateLimiter:
    def __init__(self, limit: int, window: float, clock=time.monotonic, max_keys: int = 100_000):
        self.capacity = float(limit)
        self.rate = limit / window
        self.clock = clock
        self.max_keys = max_keys
        self._buckets: dict[str, tuple[float, float]] = {}

    def hit(self, key: str, cost: int = 1) -> None:
        """Take `cost` tokens for `key`, or raise RateLimited with the seconds to wait."""
        now = self.clock()
        tokens, last = self._buckets.get(key, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - last) * self.rate)
        if tokens < cost:
            self._buckets[key] = (tokens, now)
            raise RateLimited((cost - tokens) / self.rate)
        if len(self._buckets) >= self.max_keys and key not in self._buckets:
            self._evict(now)
        self._buckets[key] = (tokens - cost, now)

    def _evict(self, now: float) -> None:
        full = [k for k, (t, last) in self._buckets.items() if t + (now - last) * self.rate >= self.capacity]
        for key in full or list(self._buckets)[: len(self._buckets) // 2]:
            del self._buckets[key]
