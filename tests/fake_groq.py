"""A Groq-compatible HTTP endpoint for tests: a real Starlette app under uvicorn on 127.0.0.1.

It serves `POST /openai/v1/chat/completions` as Groq does (OpenAI's chat
completion shape, `usage` included), so the real `groq` SDK talks to it through
`settings.groq_base_url`. Tests script it: `push()` queues replies used first,
else `respond(body)` decides; every request body is kept in `requests`.
"""

from __future__ import annotations

import json
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from backend.settings import test_settings
from tests.support import LiveServer

API_KEY = "gsk_test_key"


@dataclass
class Reply:
    content: Any = None  # a str is sent as is; anything else JSON-encoded
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    error: dict[str, Any] | None = None  # the error body for a non-200 status
    usage: tuple[int, int] = (120, 30)


def rate_limited(ms: int = 5) -> Reply:
    return Reply(status=429, headers={"retry-after-ms": str(ms)},
                 error={"message": "Rate limit reached", "type": "tokens", "code": "rate_limit_exceeded"})


def server_error() -> Reply:
    return Reply(status=500, error={"message": "upstream failed", "type": "internal_server_error"})


def collaborations_in(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The collaboration summaries a check-in request carries (the user message is JSON data)."""
    return json.loads(body["messages"][1]["content"])["collaborations"]


class FakeGroq:
    def __init__(self, respond: Callable[[dict[str, Any]], Any] | None = None):
        self.respond = respond or (lambda body: {"actions": []})
        self.script: deque[Any] = deque()
        self.requests: list[dict[str, Any]] = []
        self.auth: list[str | None] = []
        self.url = ""
        self._server: LiveServer | None = None
        self.app = Starlette(routes=[Route("/openai/v1/chat/completions", self._completions, methods=["POST"])])

    def push(self, *replies: Any) -> None:
        self.script.extend(replies)

    async def _completions(self, request: Request) -> JSONResponse:
        body = await request.json()
        self.requests.append(body)
        self.auth.append(request.headers.get("authorization"))
        reply = self.script.popleft() if self.script else self.respond(body)
        if not isinstance(reply, Reply):
            reply = Reply(content=reply)
        if reply.status != 200:
            return JSONResponse({"error": reply.error or {"message": "error"}}, reply.status, headers=reply.headers)
        content = reply.content if isinstance(reply.content, str) else json.dumps(reply.content)
        prompt, completion = reply.usage
        return JSONResponse({
            "id": f"chatcmpl-{len(self.requests)}", "object": "chat.completion", "created": int(time.time()),
            "model": body.get("model"), "system_fingerprint": "fp_fake",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                         "logprobs": None, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                      "total_tokens": prompt + completion},
        }, headers=reply.headers)

    def settings(self, **overrides: Any) -> Any:
        """Test settings that point the groq provider at this server."""
        return test_settings(ai_provider="groq", groq_api_key=API_KEY, groq_base_url=self.url,
                             groq_model="llama-fake", ai_timeout=10, **overrides)

    async def __aenter__(self) -> "FakeGroq":
        self._server = LiveServer(self.app, test_settings())
        await self._server.__aenter__()
        self.url = self._server.url
        return self

    async def __aexit__(self, *exc: Any) -> None:
        assert self._server is not None
        await self._server.__aexit__(*exc)
