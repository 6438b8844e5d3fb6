"""Every rate limit of the API, in one place: `Limits`, one per process, kept as `runtime.limits`.

- `actions`: ACTION_RATE_LIMIT tokens per ACTION_RATE_WINDOW per user, taken by every action a request runs
  (`POST /api/actions/{name}`, the AI chat's question) and by approving or rejecting an approval;
  an action costs ACTION_COST[name] tokens (addMember: up to two directory calls), else 1;
- `chat`: the AI chat's own limits, per user, per collaboration, and model calls at once.

`backend/api/gate.py` takes the action tokens; `routes/ai.py` admits chats.
"""

from __future__ import annotations

import contextlib
import time
from typing import Callable, Iterator

from backend.auth import directory
from backend.errors import RateLimited
from backend.settings import Settings

ACTION_COST = {"addMember": directory.RATE_COST}  # tokens an action takes from the caller's rate limit
CHAT_WINDOW = 60.0  # seconds: the AI chat limits are per minute


class RateLimiter:
    """A per-key token bucket: `limit` actions per `window` seconds, refilled smoothly."""

    def __init__(self, limit: int, window: float, clock: Callable[[], float] = time.monotonic, max_keys: int = 100_000):
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


class ChatLimits:
    """The AI chat's own limits in this process: per user, per collaboration, and model calls at once."""

    def __init__(self, settings: Settings):
        self.users = RateLimiter(settings.ai_chat_rate_limit, CHAT_WINDOW)
        self.collaborations = RateLimiter(settings.ai_chat_collaboration_rate_limit, CHAT_WINDOW)
        self.max_running = settings.ai_max_concurrency
        self.running = 0

    def admit(self, user_id: str, collaboration_id: str) -> None:
        """Take one chat from the user's and the collaboration's buckets, or raise RateLimited."""
        for limiter, key, whose in (
            (self.users, user_id, "you"),
            (self.collaborations, collaboration_id, "this collaboration"),
        ):
            try:
                limiter.hit(key)
            except RateLimited as exc:
                raise RateLimited(
                    exc.retry_after, f"Too many AI chats for {whose}; try again in {exc.retry_after} s."
                ) from None

    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        """One of AI_MAX_CONCURRENCY model calls at once; past it RateLimited at once (no waiting)."""
        if self.running >= self.max_running:
            raise RateLimited(1, "The AI is answering as many questions as it can; try again in a moment.")
        self.running += 1
        try:
            yield
        finally:
            self.running -= 1


class Limits:
    def __init__(self, settings: Settings):
        self.actions = RateLimiter(settings.action_rate_limit, settings.action_rate_window)
        self.chat = ChatLimits(settings)

    def action(self, user_id: str, name: str | None = None) -> None:
        """Take the tokens of one action `name` (an approval's decision: None, 1 token), or RateLimited."""
        self.actions.hit(user_id, ACTION_COST.get(name, 1) if name is not None else 1)
