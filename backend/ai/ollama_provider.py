"""Ollama through its HTTP API (`POST /api/chat`, `format: "json"`), with httpx."""

from __future__ import annotations

import asyncio
import random

import httpx

from backend.ai.provider import MAX_DELAY, AIUnavailable, Completion, Task, Usage, retry_after
from backend.settings import Settings

RETRY_STATUSES = {429, 502, 503}


class OllamaProvider:
    name = "ollama"
    batches = None

    def __init__(self, settings: Settings, *, retries: int = 3, backoff: float = 2.0):
        self.model = settings.ollama_model
        self.retries = retries
        self.backoff = backoff
        self._client = httpx.AsyncClient(base_url=settings.ollama_url.rstrip("/"), timeout=settings.ai_timeout)

    async def complete(self, task: Task) -> Completion:
        body = {
            "model": self.model,
            "stream": False,
            "format": "json",
            "options": {"temperature": 0.2},
            "messages": [{"role": "system", "content": task.system}, {"role": "user", "content": task.user}],
        }
        for attempt in range(self.retries + 1):
            try:
                response = await self._client.post("/api/chat", json=body)
            except httpx.HTTPError as exc:
                raise AIUnavailable(f"Ollama could not be reached: {exc}", {"provider": self.name}) from None
            if response.status_code in RETRY_STATUSES and attempt < self.retries:
                delay = retry_after(response)
                if delay is None:
                    delay = self.backoff * 2**attempt * (1 + random.random() / 2)
                await asyncio.sleep(min(delay, MAX_DELAY))
                continue
            if response.status_code != 200:
                raise AIUnavailable(
                    f"Ollama answered {response.status_code}.", {"provider": self.name, "status": response.status_code}
                )
            try:
                data = response.json()
                text = data["message"]["content"]
            except (ValueError, KeyError, TypeError):
                raise AIUnavailable("Ollama's answer was not a chat response.", {"provider": self.name}) from None
            return Completion(
                text=text or "",
                model=data.get("model") or self.model,
                usage=Usage(
                    prompt=int(data.get("prompt_eval_count") or 0), completion=int(data.get("eval_count") or 0)
                ),
            )
        raise AssertionError("unreachable")  # pragma: no cover

    async def aclose(self) -> None:
        await self._client.aclose()
