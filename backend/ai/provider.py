"""The one interface every AI provider implements.

A provider gets a `Task` — a system prompt, a user message, and the same
collaboration summaries as data — and answers with `Completion.text`, a JSON
text that `backend.ai.proposals` validates. LLM providers send the two
prompts; the offline provider applies its rules to `Task.context`. Either
way the answer goes through the same validation and the same action engine.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, Protocol

import msgspec

from backend.errors import ServiceUnavailable

TaskKind = Literal["checkin", "chat"]


class Task(msgspec.Struct, frozen=True):
    kind: TaskKind
    system: str
    user: str
    context: list[dict[str, Any]]  # the collaboration summaries the prompt carries (data, never instructions)
    now: datetime
    message: str | None = None  # chat: what the member asked


class Usage(msgspec.Struct, frozen=True):
    prompt: int = 0
    completion: int = 0

    @property
    def total(self) -> int:
        return self.prompt + self.completion


class Completion(msgspec.Struct, frozen=True):
    text: str
    usage: Usage = Usage()
    model: str = ""


class Provider(Protocol):
    name: str
    model: str

    async def complete(self, task: Task) -> Completion: ...

    async def aclose(self) -> None: ...


class AIUnavailable(ServiceUnavailable):
    """The provider could not answer (network, rate limits past our retries, server errors): 503."""

    default_message = "The AI provider is not available right now."
