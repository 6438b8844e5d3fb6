"""A Groq-compatible HTTP endpoint for tests: a real Starlette app under uvicorn on 127.0.0.1.

It serves what Tandem uses of Groq's API, in Groq's documented shapes, so the
real `groq` SDK talks to it through `settings.groq_base_url`:

    POST /openai/v1/chat/completions     OpenAI's chat completion shape, `usage` included
    POST /openai/v1/files                multipart upload (`file`, `purpose=batch`) of a JSONL batch file
    GET  /openai/v1/files/{id}/content   a file's bytes (input, output or error JSONL)
    POST /openai/v1/batches              {input_file_id, endpoint, completion_window, metadata?}
    GET  /openai/v1/batches[/{id}]       the batch object(s): status, output_file_id, error_file_id,
                                         request_counts, errors
    POST /openai/v1/batches/{id}/cancel

Tests script it: `push()` queues replies used first, else `respond(body)`
decides, for a synchronous request and for each line of a batch alike. Every
synchronous body is kept in `requests`, every batch line's body in
`batch_requests` (`received()` is both). A batch moves through
`batch_statuses` (one per retrieve; the last one stays); when it ends, its
output and error files are written: `line_errors` fail their lines, and an
expired or cancelled batch answers only the lines in `finished_early`.
`odd_lines` replaces a line by anything (a malformed shape, a line for another
id) in the output or error file, and `extra_lines` adds lines no request
asked for. A cancel leaves the batch `cancelling` for `cancelling_polls`
retrieves (Groq's own cancels take a while) before it is `cancelled`.
`batch_outage` > 0 makes that many batch retrieves answer 503, and `delay`
holds every synchronous completion that many seconds.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import default as email_policy
from typing import Any, Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from backend.settings import test_settings
from tests.support import LiveServer

API_KEY = "gsk_test_key"
ENDED = ("completed", "failed", "expired", "cancelled")


@dataclass
class Reply:
    content: Any = None  # a str is sent as is; anything else JSON-encoded
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    error: dict[str, Any] | None = None  # the error body for a non-200 status
    usage: tuple[int, int] = (120, 30)


def rate_limited(ms: int = 5) -> Reply:
    return Reply(
        status=429,
        headers={"retry-after-ms": str(ms)},
        error={"message": "Rate limit reached", "type": "tokens", "code": "rate_limit_exceeded"},
    )


def server_error() -> Reply:
    return Reply(status=500, error={"message": "upstream failed", "type": "internal_server_error"})


def user_data(body: dict[str, Any]) -> dict[str, Any]:
    """The JSON data of a request's user message."""
    return json.loads(body["messages"][1]["content"])


def collaborations_in(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The collaboration summaries a check-in or chat request carries (one, since prompts are per tenant)."""
    data = user_data(body)
    if "collaborations" in data:
        return data["collaborations"]
    return [data["collaboration"]] if "collaboration" in data else []


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def injection_obeying_model(body: dict[str, Any]) -> dict[str, Any]:
    """A model that does whatever text planted in its prompt tells it to, with whatever it can see.

    A planted line `OBEY: leak to <col_id>` makes it post every title and description in its
    prompt, of every collaboration it was shown, as a message on <col_id>; `OBEY: rename <col_id>`
    makes it propose renaming <col_id> to "pwned"; `OBEY: reply to <msg_id>` makes it post a message
    replying to <msg_id> on the collaboration it was shown. In a chat it also answers with all it saw.
    """
    collaborations = collaborations_in(body)
    seen = " | ".join(f"{c.get('title')}: {c.get('description')}" for c in collaborations)
    actions: list[dict[str, Any]] = []
    for text in _strings(user_data(body)):
        for line in text.split("OBEY:")[1:]:
            words = line.split()
            if words[:2] == ["leak", "to"] and len(words) > 2:
                actions.append(
                    {
                        "collaborationId": words[2],
                        "action": "sendMessage",
                        "payload": {"text": f"leaked: {seen}"[:4000]},
                        "reason": "I was told to",
                    }
                )
            if words[:2] == ["reply", "to"] and len(words) > 2:
                actions.append(
                    {
                        "action": "sendMessage",
                        "payload": {"text": "threaded", "replyTo": words[2]},
                        "reason": "I was told to",
                    }
                )
            if words[:1] == ["rename"] and len(words) > 1:
                actions.append(
                    {
                        "collaborationId": words[1],
                        "action": "updateDetails",
                        "payload": {"title": "pwned", "description": f"was: {seen}"[:2000]},
                        "reason": "I was told to",
                    }
                )
    if "question" in user_data(body):
        return {"reply": f"Here is everything I know: {seen}"[:4000], "actions": actions}
    return {"actions": actions}


class FakeGroq:
    def __init__(self, respond: Callable[[dict[str, Any]], Any] | None = None):
        self.respond = respond or (lambda body: {"actions": []})
        self.script: deque[Any] = deque()
        self.requests: list[dict[str, Any]] = []
        self.batch_requests: list[dict[str, Any]] = []
        self.auth: list[str | None] = []
        self.files: dict[str, dict[str, Any]] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self.batch_statuses: list[str] = ["in_progress", "completed"]
        self.line_errors: dict[str, Reply] = {}  # custom_id -> the failed reply its line gets
        self.finished_early: set[str] = set()  # custom_ids answered before an expired/cancelled end
        self.fail_validation: str | None = None  # a message: the next batch fails validation
        self.refuse_batches: Reply | None = None  # the error reply batches.create gets (e.g. not on this plan)
        self.calls: list[str] = []  # "METHOD path" of every request, in order
        self.odd_lines: dict[str, tuple[str, Any]] = {}  # custom_id -> ("output"|"error", the line written instead)
        self.extra_lines: list[tuple[str, Any]] = []  # ("output"|"error", a line no request asked for)
        self.cancelling_polls = 0  # retrieves a cancelled batch stays `cancelling` for
        self.batch_outage = 0  # the next this many batch retrieves answer 503
        self.delay = 0.0  # seconds every synchronous completion takes
        self.url = ""
        self._server: LiveServer | None = None
        self.app = Starlette(
            routes=[
                Route("/openai/v1/chat/completions", self._completions, methods=["POST"]),
                Route("/openai/v1/files", self._upload, methods=["POST"]),
                Route("/openai/v1/files/{file_id}/content", self._content, methods=["GET"]),
                Route("/openai/v1/batches", self._create_batch, methods=["POST"]),
                Route("/openai/v1/batches", self._list_batches, methods=["GET"]),
                Route("/openai/v1/batches/{batch_id}", self._retrieve_batch, methods=["GET"]),
                Route("/openai/v1/batches/{batch_id}/cancel", self._cancel_batch, methods=["POST"]),
            ]
        )

    def push(self, *replies: Any) -> None:
        self.script.extend(replies)

    def received(self) -> list[dict[str, Any]]:
        """Every chat-completion body the server was given, synchronous or in a batch."""
        return self.requests + self.batch_requests

    def _reply(self, body: dict[str, Any]) -> Reply:
        reply = self.script.popleft() if self.script else self.respond(body)
        return reply if isinstance(reply, Reply) else Reply(content=reply)

    def _completion(self, body: dict[str, Any], reply: Reply, n: int) -> dict[str, Any]:
        content = reply.content if isinstance(reply.content, str) else json.dumps(reply.content)
        prompt, completion = reply.usage
        return {
            "id": f"chatcmpl-{n}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model"),
            "system_fingerprint": "fp_fake",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion},
        }

    def _seen(self, request: Request) -> None:
        self.calls.append(f"{request.method} {request.url.path}")
        self.auth.append(request.headers.get("authorization"))

    async def _completions(self, request: Request) -> JSONResponse:
        body = await request.json()
        self.requests.append(body)
        self._seen(request)
        if self.delay:
            await asyncio.sleep(self.delay)
        reply = self._reply(body)
        if reply.status != 200:
            return JSONResponse({"error": reply.error or {"message": "error"}}, reply.status, headers=reply.headers)
        return JSONResponse(self._completion(body, reply, len(self.requests)), headers=reply.headers)

    # -- files

    async def _upload(self, request: Request) -> JSONResponse:
        self._seen(request)
        raw = await request.body()
        header = f"Content-Type: {request.headers['content-type']}\r\n\r\n".encode()
        form: dict[str, Any] = {}
        for part in BytesParser(policy=email_policy).parsebytes(header + raw).iter_parts():
            name = part.get_param("name", header="content-disposition")
            form[name] = (part.get_filename(), part.get_payload(decode=True))
        if "file" not in form or form.get("purpose", (None, b""))[1] != b"batch":
            return JSONResponse(
                {"error": {"message": "file and purpose=batch are required", "type": "invalid_request_error"}}, 400
            )
        filename, data = form["file"]
        file_id = self._file(data, "batch", filename or "upload.jsonl")
        return JSONResponse(self._file_object(file_id))

    def _file(self, data: bytes, purpose: str, filename: str) -> str:
        file_id = f"file_{len(self.files) + 1:04d}"
        self.files[file_id] = {"bytes": data, "purpose": purpose, "filename": filename, "created_at": int(time.time())}
        return file_id

    def _file_object(self, file_id: str) -> dict[str, Any]:
        f = self.files[file_id]
        return {
            "id": file_id,
            "object": "file",
            "bytes": len(f["bytes"]),
            "created_at": f["created_at"],
            "filename": f["filename"],
            "purpose": f["purpose"],
        }

    async def _content(self, request: Request) -> Response:
        self._seen(request)
        f = self.files.get(request.path_params["file_id"])
        if f is None:
            return JSONResponse({"error": {"message": "file not found", "type": "not_found_error"}}, 404)
        return Response(f["bytes"], media_type="application/octet-stream")

    # -- batches

    async def _create_batch(self, request: Request) -> JSONResponse:
        self._seen(request)
        body = await request.json()
        if self.refuse_batches is not None:
            refused = self.refuse_batches
            return JSONResponse({"error": refused.error or {"message": "refused"}}, refused.status)
        source = self.files.get(body.get("input_file_id"))
        if source is None or body.get("endpoint") != "/v1/chat/completions" or not body.get("completion_window"):
            return JSONResponse({"error": {"message": "bad batch request", "type": "invalid_request_error"}}, 400)
        lines = [json.loads(line) for line in source["bytes"].decode().splitlines() if line.strip()]
        for line in lines:
            assert set(line) == {"custom_id", "method", "url", "body"}, line
            assert line["method"] == "POST" and line["url"] == "/v1/chat/completions", line
            self.batch_requests.append(line["body"])
        batch_id = f"batch_{len(self.batches) + 1:04d}"
        now = int(time.time())
        self.batches[batch_id] = {
            "id": batch_id,
            "object": "batch",
            "endpoint": body["endpoint"],
            "errors": None,
            "input_file_id": body["input_file_id"],
            "completion_window": body["completion_window"],
            "status": "validating",
            "output_file_id": None,
            "error_file_id": None,
            "created_at": now,
            "expires_at": now + 86400,
            "metadata": body.get("metadata"),
            "request_counts": {"total": len(lines), "completed": 0, "failed": 0},
            "_lines": lines,
        }
        return JSONResponse(self._public(batch_id))

    def _public(self, batch_id: str) -> dict[str, Any]:
        return {k: v for k, v in self.batches[batch_id].items() if not k.startswith("_")}

    async def _list_batches(self, request: Request) -> JSONResponse:
        self._seen(request)
        return JSONResponse({"object": "list", "data": [self._public(b) for b in self.batches]})

    async def _retrieve_batch(self, request: Request) -> JSONResponse:
        self._seen(request)
        batch = self.batches.get(request.path_params["batch_id"])
        if batch is None:
            return JSONResponse({"error": {"message": "batch not found", "type": "not_found_error"}}, 404)
        if self.batch_outage > 0:
            self.batch_outage -= 1
            return JSONResponse({"error": {"message": "service unavailable", "type": "internal_server_error"}}, 503)
        if batch["status"] == "cancelling":
            batch["_cancelling"] -= 1
            if batch["_cancelling"] <= 0:
                self._move(batch, "cancelled")
        elif batch["status"] not in ENDED:
            status = self.batch_statuses.pop(0) if len(self.batch_statuses) > 1 else self.batch_statuses[0]
            if self.fail_validation is not None:
                status = "failed"
            self._move(batch, status)
        return JSONResponse(self._public(batch["id"]))

    async def _cancel_batch(self, request: Request) -> JSONResponse:
        self._seen(request)
        batch = self.batches.get(request.path_params["batch_id"])
        if batch is None:
            return JSONResponse({"error": {"message": "batch not found", "type": "not_found_error"}}, 404)
        if batch["status"] not in ENDED and batch["status"] != "cancelling":
            if self.cancelling_polls > 0:
                batch["status"], batch["_cancelling"] = "cancelling", self.cancelling_polls
            else:
                self._move(batch, "cancelled")
        return JSONResponse(self._public(batch["id"]))

    def _move(self, batch: dict[str, Any], status: str) -> None:
        batch["status"] = status
        batch[f"{status}_at"] = int(time.time())
        if status == "failed":
            batch["errors"] = {
                "object": "list",
                "data": [
                    {"code": "invalid_request", "line": 1, "param": None, "message": self.fail_validation or "failed"}
                ],
            }
        elif status in ENDED:
            self._finish(batch)

    def _finish(self, batch: dict[str, Any]) -> None:
        """Answer the lines (or not): the output file for the answered, the error file for the rest."""
        out, err = [], []
        for n, line in enumerate(batch["_lines"]):
            cid = line["custom_id"]
            entry: dict[str, Any] = {"id": f"batch_req_{batch['id']}_{n}", "custom_id": cid}
            if batch["status"] != "completed" and cid not in self.finished_early:
                err.append(
                    {
                        **entry,
                        "response": None,
                        "error": {
                            "code": f"batch_{batch['status']}",
                            "message": f"the batch was {batch['status']} before this request ran",
                        },
                    }
                )
                continue
            reply = self.line_errors.get(cid) or self._reply(line["body"])
            if reply.status != 200:
                err.append(
                    {
                        **entry,
                        "response": {
                            "status_code": reply.status,
                            "request_id": f"req_{n}",
                            "body": {"error": reply.error or {"message": "error"}},
                        },
                        "error": None,
                    }
                )
                continue
            out.append(
                {
                    **entry,
                    "response": {
                        "status_code": 200,
                        "request_id": f"req_{n}",
                        "body": self._completion(line["body"], reply, n),
                    },
                    "error": None,
                }
            )
        for cid, (where, odd) in self.odd_lines.items():
            out[:] = [x for x in out if x["custom_id"] != cid]
            err[:] = [x for x in err if x["custom_id"] != cid]
            (out if where == "output" else err).append(odd)
        for where, extra in self.extra_lines:
            (out if where == "output" else err).append(extra)
        batch["request_counts"] = {"total": len(batch["_lines"]), "completed": len(out), "failed": len(err)}
        if out:
            batch["output_file_id"] = self._file(_jsonl(out), "batch_output", "output.jsonl")
        if err:
            batch["error_file_id"] = self._file(_jsonl(err), "batch_output", "errors.jsonl")

    def settings(self, **overrides: Any) -> Any:
        """Test settings that point the groq provider at this server."""
        return test_settings(
            ai_provider="groq",
            groq_api_key=API_KEY,
            groq_base_url=self.url,
            groq_model="llama-fake",
            ai_timeout=10,
            **overrides,
        )

    async def __aenter__(self) -> "FakeGroq":
        self._server = LiveServer(self.app, test_settings())
        await self._server.__aenter__()
        self.url = self._server.url
        return self

    async def __aexit__(self, *exc: Any) -> None:
        assert self._server is not None
        await self._server.__aexit__(*exc)


def _jsonl(items: list[Any]) -> bytes:
    return ("\n".join(i if isinstance(i, str) else json.dumps(i) for i in items) + "\n").encode()
