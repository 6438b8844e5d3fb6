"""The one interface every AI provider implements.

A provider gets a `Task` — a system prompt, a user message, and the same
collaboration summaries as data — and answers with `Completion.text`, a JSON
text that `backend.ai.proposals` validates. LLM providers send the two
prompts; the offline provider applies its rules to `Task.context`. Either
way the answer goes through the same validation and the same action engine.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Collection, Literal, Protocol

import httpx
import msgspec

from backend.errors import ServiceUnavailable

TaskKind = Literal["checkin", "chat"]
MAX_DELAY = 30.0  # seconds: the longest wait between retries, whatever the server asks


def retry_after(response: httpx.Response) -> float | None:
    """Seconds the server asked us to wait (`retry-after-ms` or `retry-after`), if it said."""
    headers = getattr(response, "headers", None) or {}
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        try:
            return max(0.0, float(headers[name]) * scale)
        except (KeyError, TypeError, ValueError):
            continue
    return None


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


class BatchState(msgspec.Struct, frozen=True):
    """A submitted batch job as the provider reports it (Groq's statuses: validating, in_progress,
    finalizing, completed, failed, expired, cancelling, cancelled)."""

    id: str
    status: str
    output_file_id: str | None = None
    error_file_id: str | None = None
    request_counts: dict[str, int] = {}
    errors: list[str] = []

    @property
    def finished(self) -> bool:
        return self.status in FINISHED


FINISHED = ("completed", "failed", "expired", "cancelled")


class BatchResults(msgspec.Struct, frozen=True):
    """A finished batch's lines by `custom_id`: the answers, and the requests that failed, with why."""

    answers: dict[str, Completion]
    errors: dict[str, str]


class Batches(Protocol):
    """A provider's batch API: many single requests in one job, answered later at a lower price."""

    async def submit(self, tasks: dict[str, Task], tag: str) -> str: ...  # custom_id -> task; the batch id

    async def find(self, tag: str) -> str | None: ...  # the batch submitted with `tag`, if one was

    async def state(self, batch_id: str) -> BatchState: ...

    async def results(self, state: BatchState, custom_ids: Collection[str] | None = None) -> BatchResults: ...

    # with custom_ids: lines naming any other id are ignored

    async def cancel(self, batch_id: str) -> None: ...


class Provider(Protocol):
    name: str
    model: str

    @property  # read-only here, so a provider's own batch class (or None) matches
    def batches(self) -> Batches | None: ...  # None: the provider has no batch API (every request is synchronous)

    async def complete(self, task: Task) -> Completion: ...

    async def aclose(self) -> None: ...


class AIUnavailable(ServiceUnavailable):
    """The provider could not answer (network, rate limits past our retries, server errors): 503."""

    default_message = "The AI provider is not available right now."
