"""Groq through its official SDK (`AsyncGroq`), in JSON mode.

Rate limits (HTTP 429) are retried twice over, and both are bounded: the SDK
retries `sdk_retries` times (honouring `retry-after`), then this provider backs
off and tries again up to `retries` times. Anything else that fails becomes
`AIUnavailable`. An answer Groq itself rejects as invalid JSON
(`json_validate_failed`) is returned as text, so it is counted as malformed.
"""

from __future__ import annotations

import asyncio
import logging
import random
from typing import Any

import groq

from backend.ai.provider import AIUnavailable, Completion, Task, Usage
from backend.settings import Settings

log = logging.getLogger("tandem.ai")

DEFAULT_BASE_URL = "https://api.groq.com"  # given explicitly: the SDK would otherwise read GROQ_BASE_URL itself
MAX_DELAY = 30.0


def retry_after(response: Any) -> float | None:
    """Seconds the server asked us to wait (`retry-after-ms` or `retry-after`), if it said."""
    headers = getattr(response, "headers", None) or {}
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        try:
            return max(0.0, float(headers[name]) * scale)
        except (KeyError, TypeError, ValueError):
            continue
    return None


class GroqProvider:
    name = "groq"

    def __init__(self, settings: Settings, *, retries: int = 3, backoff: float = 2.0, sdk_retries: int = 2):
        self.model = settings.groq_model
        self.retries = retries
        self.backoff = backoff
        self._client = groq.AsyncGroq(api_key=settings.groq_api_key or "unset",
                                      base_url=settings.groq_base_url or DEFAULT_BASE_URL,
                                      timeout=settings.ai_timeout, max_retries=sdk_retries)

    async def complete(self, task: Task) -> Completion:
        for attempt in range(self.retries + 1):
            try:
                return await self._call(task)
            except groq.RateLimitError as exc:
                if attempt == self.retries:
                    raise AIUnavailable("Groq kept answering 429 (rate limited); try again later.",
                                        {"provider": self.name, "status": 429}) from None
                delay = retry_after(exc.response)
                if delay is None:
                    delay = self.backoff * 2 ** attempt * (1 + random.random() / 2)
                delay = min(delay, MAX_DELAY)
                log.warning("groq rate limited; backing off", extra={"delay": delay, "attempt": attempt + 1})
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _call(self, task: Task) -> Completion:
        try:
            response = await self._client.chat.completions.create(
                model=self.model, temperature=0.2, response_format={"type": "json_object"},
                messages=[{"role": "system", "content": task.system}, {"role": "user", "content": task.user}])
        except groq.RateLimitError:
            raise
        except groq.BadRequestError as exc:
            failed = _failed_generation(exc.body)
            if failed is not None:
                return Completion(text=failed, model=self.model)
            raise AIUnavailable(f"Groq refused the request: {exc.message}", {"provider": self.name,
                                                                              "status": exc.status_code}) from None
        except groq.APIStatusError as exc:
            raise AIUnavailable(f"Groq answered {exc.status_code}.", {"provider": self.name,
                                                                       "status": exc.status_code}) from None
        except groq.APIError as exc:  # connection errors and timeouts, after the SDK's retries
            raise AIUnavailable(f"Groq could not be reached: {exc.message}", {"provider": self.name}) from None
        text = response.choices[0].message.content if response.choices else ""
        usage = response.usage
        return Completion(text=text or "", model=getattr(response, "model", None) or self.model,
                          usage=Usage(prompt=getattr(usage, "prompt_tokens", 0) or 0,
                                      completion=getattr(usage, "completion_tokens", 0) or 0))

    async def aclose(self) -> None:
        await self._client.close()


def _failed_generation(body: Any) -> str | None:
    """Groq's `json_validate_failed` error carries what the model produced."""
    error = body.get("error", body) if isinstance(body, dict) else None
    if isinstance(error, dict) and error.get("code") == "json_validate_failed":
        return str(error.get("failed_generation") or "")
    return None
