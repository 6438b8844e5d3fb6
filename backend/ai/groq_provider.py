"""Groq through its official SDK (`AsyncGroq`), in JSON mode, and its Batch API.

Rate limits (HTTP 429) are retried twice over, and both are bounded: the SDK
retries `sdk_retries` times (honouring `retry-after`), then this provider backs
off and tries again up to `retries` times. Anything else that fails becomes
`AIUnavailable`. An answer Groq itself rejects as invalid JSON
(`json_validate_failed`) is returned as text, so it is counted as malformed.

`GroqBatches` is the Batch API (half the synchronous price): one JSONL file of
chat-completion requests, each line `{"custom_id", "method": "POST", "url":
"/v1/chat/completions", "body"}` with the same body as a synchronous request,
uploaded with `files.create(purpose="batch")` and submitted with
`batches.create`; the output and error files are read by `custom_id` once the
batch is finished. A batch carries a `metadata` tag (the check-in run's id) so a
submission interrupted before its id was stored is found again, not repeated.
A result line of any shape is survived: one without a usable `custom_id` (or
naming an id the batch did not send) is skipped, one whose contents cannot be
read becomes that request's error alone.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from types import TracebackType
from typing import Any, Collection

import groq

from backend.ai.provider import MAX_DELAY, AIUnavailable, BatchResults, BatchState, Completion, Task, Usage, retry_after
from backend.settings import Settings

log = logging.getLogger("tandem.ai")

DEFAULT_BASE_URL = "https://api.groq.com"  # given explicitly: the SDK would otherwise read GROQ_BASE_URL itself


def request_body(model: str, task: Task) -> dict[str, Any]:
    """One chat-completion request: JSON mode, the system prompt and the data."""
    return {
        "model": model,
        "temperature": 0.2,
        "response_format": {"type": "json_object"},
        "messages": [{"role": "system", "content": task.system}, {"role": "user", "content": task.user}],
    }


class GroqProvider:
    name = "groq"

    def __init__(self, settings: Settings, *, retries: int = 3, backoff: float = 2.0, sdk_retries: int = 2):
        self.model = settings.groq_model
        self.retries = retries
        self.backoff = backoff
        self._client = groq.AsyncGroq(
            api_key=settings.groq_api_key or "unset",
            base_url=settings.groq_base_url or DEFAULT_BASE_URL,
            timeout=settings.ai_timeout,
            max_retries=sdk_retries,
        )
        self.batches = GroqBatches(self._client, self.model)

    async def complete(self, task: Task) -> Completion:
        for attempt in range(self.retries + 1):
            try:
                return await self._call(task)
            except groq.RateLimitError as exc:
                if attempt == self.retries:
                    raise AIUnavailable(
                        "Groq kept answering 429 (rate limited); try again later.",
                        {"provider": self.name, "status": 429},
                    ) from None
                delay = retry_after(exc.response)
                if delay is None:
                    delay = self.backoff * 2**attempt * (1 + random.random() / 2)
                delay = min(delay, MAX_DELAY)
                log.warning("groq rate limited; backing off", extra={"delay": delay, "attempt": attempt + 1})
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _call(self, task: Task) -> Completion:
        try:
            response = await self._client.chat.completions.create(**request_body(self.model, task))
        except groq.RateLimitError:
            raise
        except groq.BadRequestError as exc:
            failed = _failed_generation(exc.body)
            if failed is not None:
                return Completion(text=failed, model=self.model)
            raise AIUnavailable(
                f"Groq refused the request: {exc.message}", {"provider": self.name, "status": exc.status_code}
            ) from None
        except groq.APIStatusError as exc:
            raise AIUnavailable(
                f"Groq answered {exc.status_code}.", {"provider": self.name, "status": exc.status_code}
            ) from None
        except groq.APIError as exc:  # connection errors and timeouts, after the SDK's retries
            raise AIUnavailable(f"Groq could not be reached: {exc.message}", {"provider": self.name}) from None
        text = response.choices[0].message.content if response.choices else ""
        usage = response.usage
        return Completion(
            text=text or "",
            model=getattr(response, "model", None) or self.model,
            usage=Usage(
                prompt=getattr(usage, "prompt_tokens", 0) or 0, completion=getattr(usage, "completion_tokens", 0) or 0
            ),
        )

    async def aclose(self) -> None:
        await self._client.close()


def _failed_generation(body: Any) -> str | None:
    """Groq's `json_validate_failed` error carries what the model produced."""
    error = body.get("error", body) if isinstance(body, dict) else None
    if isinstance(error, dict) and error.get("code") == "json_validate_failed":
        return str(error.get("failed_generation") or "")
    return None


COMPLETION_WINDOW = "24h"  # Groq's shortest; the check-in stops waiting at CHECKIN_BATCH_DEADLINE anyway


class GroqBatches:
    """Groq's Batch API through the SDK: files.create, batches.create/retrieve/list/cancel, files.content."""

    def __init__(self, client: groq.AsyncGroq, model: str):
        self._client = client
        self.model = model

    async def submit(self, tasks: dict[str, Task], tag: str) -> str:
        lines = [
            json.dumps(
                {
                    "custom_id": custom_id,
                    "method": "POST",
                    "url": "/v1/chat/completions",
                    "body": request_body(self.model, task),
                },
                ensure_ascii=False,
            )
            for custom_id, task in tasks.items()
        ]
        data = ("\n".join(lines) + "\n").encode()
        async with _unavailable("upload the batch file"):
            uploaded = await self._client.files.create(
                file=(f"{tag}.jsonl", data, "application/jsonl"), purpose="batch"
            )
            batch = await self._client.batches.create(
                completion_window=COMPLETION_WINDOW,
                endpoint="/v1/chat/completions",
                input_file_id=str(uploaded.id),
                metadata={"tandem": tag},
            )
        return batch.id

    async def find(self, tag: str) -> str | None:
        async with _unavailable("list batches"):
            listed = await self._client.batches.list()
        for batch in listed.data:
            if isinstance(batch.metadata, dict) and batch.metadata.get("tandem") == tag:
                return batch.id
        return None

    async def state(self, batch_id: str) -> BatchState:
        async with _unavailable("read the batch"):
            batch = await self._client.batches.retrieve(batch_id)
        counts = batch.request_counts
        errors = [f"{e.code}: {e.message}" for e in (batch.errors.data or [])] if batch.errors else []
        return BatchState(
            id=batch.id,
            status=batch.status,
            output_file_id=batch.output_file_id,
            error_file_id=batch.error_file_id,
            errors=errors[:20],
            request_counts={"total": counts.total, "completed": counts.completed, "failed": counts.failed}
            if counts
            else {},
        )

    async def results(self, state: BatchState, custom_ids: Collection[str] | None = None) -> BatchResults:
        """The answers and failures of a finished batch by `custom_id`. With `custom_ids` (the ids this
        batch was sent), a line naming any other id is ignored: it never maps onto another request."""
        answers: dict[str, Completion] = {}
        errors: dict[str, str] = {}
        for file_id in (state.output_file_id, state.error_file_id):
            if not file_id:
                continue
            async with _unavailable("read the batch's results"):
                content = await (await self._client.files.content(file_id)).text()
            for line in content.splitlines():
                if line.strip():
                    self._read_line(line, answers, errors, custom_ids)
        return BatchResults(answers, errors)

    def _read_line(
        self,
        line: str,
        answers: dict[str, Completion],
        errors: dict[str, str],
        custom_ids: Collection[str] | None = None,
    ) -> None:
        """One output or error line: `{"id", "custom_id", "response": {"status_code", "body"}, "error"}`.
        Any shape is survived: a line without a usable `custom_id` is logged and skipped; one whose
        contents cannot be read becomes that request's error (it is asked again synchronously)."""
        try:
            item = json.loads(line)
        except ValueError:
            item = None
        custom_id = item.get("custom_id") if isinstance(item, dict) else None
        if not isinstance(custom_id, str) or not custom_id:
            log.warning("groq batch: a result line without a usable custom_id was skipped", extra={"line": line[:200]})
            return
        if custom_ids is not None and custom_id not in custom_ids:
            log.warning(
                "groq batch: a result line for a request this batch did not send was ignored",
                extra={"customId": custom_id[:100]},
            )
            return
        try:
            answer, error = _line_outcome(item, self.model)
        except Exception as exc:  # noqa: BLE001 - one unreadable line fails its own request only
            answer, error = None, f"unreadable result line ({type(exc).__name__}: {str(exc)[:200]})"
        if answer is not None:
            answers[custom_id] = answer
            errors.pop(custom_id, None)
        elif custom_id not in answers:
            errors[custom_id] = str(error)[:500]

    async def cancel(self, batch_id: str) -> None:
        async with _unavailable("cancel the batch"):
            await self._client.batches.cancel(batch_id)


def _line_outcome(item: dict[str, Any], model: str) -> tuple[Completion | None, str | None]:
    """(the answer, None) or (None, why it failed) for one result line; may raise on odd shapes."""
    response = item.get("response")
    response = response if isinstance(response, dict) else {}
    body = response.get("body")
    status = response.get("status_code")
    if item.get("error"):
        error = item["error"]
        if isinstance(error, dict):
            return None, f"{error.get('code')}: {error.get('message')}"
        return None, str(error)
    if isinstance(body, dict) and status == 200:
        return _completion(body, model), None
    failed = _failed_generation(body)
    if failed is not None:
        return Completion(text=failed, model=model), None
    error = body.get("error") if isinstance(body, dict) else body
    message = error.get("message") if isinstance(error, dict) else error
    return None, f"status {status}: {message}"


def _completion(body: dict[str, Any], model: str) -> Completion:
    """A 200 line's chat completion; one without a message text is an error, not an empty answer."""
    choices = body.get("choices")
    first = choices[0] if isinstance(choices, list) and choices else None
    message = first.get("message") if isinstance(first, dict) else None
    text = message.get("content") if isinstance(message, dict) else None
    if not isinstance(text, str):
        raise ValueError("the answer has no choices[0].message.content text")
    usage = body.get("usage")
    usage = usage if isinstance(usage, dict) else {}
    answered_by = body.get("model")
    return Completion(
        text=text,
        model=answered_by if isinstance(answered_by, str) and answered_by else model,
        usage=Usage(prompt=int(usage.get("prompt_tokens") or 0), completion=int(usage.get("completion_tokens") or 0)),
    )


class _unavailable:
    """Turn the SDK's failures into AIUnavailable (the check-in retries through the job queue)."""

    def __init__(self, doing: str):
        self.doing = doing

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool:
        if isinstance(exc, groq.APIStatusError):
            raise AIUnavailable(
                f"Groq answered {exc.status_code} when asked to {self.doing}.",
                {"provider": "groq", "status": exc.status_code},
            ) from None
        if isinstance(exc, groq.APIError):
            raise AIUnavailable(
                f"Groq could not be reached to {self.doing}: {exc.message}", {"provider": "groq"}
            ) from None
        return False
