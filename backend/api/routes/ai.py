"""`POST /api/collaborations/{id}/ai/chat`: ask the AI about one collaboration, in its feed.

The member's question is posted first, as their own message, through the same
path as `POST /api/actions/sendMessage` (rate limit, the owner's rules,
approvals). Then the AI is asked about this collaboration alone (its summary,
its recent messages, the question) and its answer is posted as an AI message
with `replyTo` = the question's id; both reach every subscriber as
`message_created`. Answers: 200 `{question, reply, suggestions}`; 202
`{question, reply: null, approval, suggestions}` when an owner made the AI's
messages need approval (the answer is posted when an owner approves); 202
`{question: null, reply: null, approval, suggestions: []}` when the member's own
message needs approval (the AI is not asked). If the AI cannot answer (503) the
question stays posted.

Each chat gets an id (`chat_…`): the AI actor's run id, so the answer's
`author.id` (and an approval's `proposedBy.runId`) name it as check-in messages
name their run. The actions the AI proposes are suggestions and are NOT run:
they are kept on the answer's message (`suggestions: [{action, payload,
reason?}]`, checked and bounded by `backend/domain/suggestions.py`), so every
member sees them live (`message_created`) and after a reload (`GET
.../messages`), and each member's client offers Run for those its role may run;
a member runs one as themselves (`POST /api/actions/{name}`). The HTTP answer
repeats them for the asker, each saying whether the asker's role may
(`allowed`) and else which role it `needs`. An action on any other
collaboration is refused before it is suggested.

With an `Idempotency-Key` (backend/api/idempotency_header.py), the key's answer is
written with the question, the chat's one effect that must not happen twice: a
repeat never posts it again nor asks the AI again, and gets the chat's answer
(or, if the process stopped before the reply, a 503 naming the posted question).

Limits of its own (one shared Groq key serves every tenant's chat and the
check-in's fallback): AI_CHAT_RATE_LIMIT chats per user and
AI_CHAT_COLLABORATION_RATE_LIMIT per collaboration per minute (token buckets),
and at most AI_MAX_CONCURRENCY chats waiting on the model at once in this
process. Past any of them: 429 `rate_limited` with `Retry-After`, checked
before the question is posted, so nothing is posted and the model is not asked.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from backend.ai import prompt, shared_provider
from backend.ai.proposals import screen_chat
from backend.ai.provider import AIUnavailable
from backend.api import openapi
from backend.api.auth import principal
from backend.api.gate import limits, run_action
from backend.api.idempotency_header import rendered, run_once
from backend.api.responses import JSON, read_json
from backend.api.routes.collaborations import member_collaboration
from backend.auth.tokens import Principal
from backend.clock import utcnow
from backend.domain.models import Actor
from backend.engine import Applied, NeedsApproval
from backend.errors import InvalidTransition, ValidationFailed
from backend.ids import new_id
from backend.runtime import Runtime
from backend.store.idempotency import LEASE, Claim
from backend.wire import public


def _question(body: dict[str, Any], limit: int) -> str:
    message = body.get("message")
    if not isinstance(message, str) or not message.strip():
        raise ValidationFailed.at("message", "Required: the question for the AI")
    if len(message) > limit:
        raise ValidationFailed.at("message", f"Must be at most {limit} characters")
    return message.strip()


def _held(asked: NeedsApproval) -> dict[str, Any]:
    """The answer when the member's own message waits for an owner's approval."""
    return {"question": None, "reply": None, "approval": public(asked.approval), "suggestions": []}


def _asked(outcome: Applied | NeedsApproval) -> tuple[int, bytes]:
    """The Idempotency-Key's answer written with the member's question: the 202 when it waits for
    approval; else, until the request finishes with the AI's reply, the 503 a repeat gets if the
    process stopped before the reply was posted (the question is posted, the AI's answer is not)."""
    if isinstance(outcome, NeedsApproval):
        return rendered(202, _held(outcome))
    lost = AIUnavailable(
        "Your question was posted; the AI's answer was not. Ask again with a new Idempotency-Key.",
        {"questionId": outcome.result["messageId"]},
    )
    return rendered(lost.status, lost.to_dict())


async def chat(request: Request) -> Response:
    who = await principal(request)
    runtime: Runtime = request.app.state.runtime
    # The model may take up to AI_TIMEOUT (with retries): the key stays claimed that long.
    lease = max(LEASE, timedelta(seconds=60 + 3 * runtime.settings.ai_timeout))
    return await run_once(request, who, _asked, lambda claim: _chat(request, who, claim), lease)


async def _chat(request: Request, who: Principal, claim: Claim | None) -> Response:
    runtime: Runtime = request.app.state.runtime
    doc = await member_collaboration(request, who.id)
    question = _question(await read_json(request, {"message"}), runtime.settings.max_message_chars)
    if doc["status"] != "active":
        raise InvalidTransition("The collaboration is archived.", {"status": doc["status"]})
    chat_limits = limits(runtime).chat
    chat_limits.admit(who.id, doc["_id"])  # before anything is posted or asked
    with chat_limits.slot():
        return await _answer(runtime, who, doc, question, claim)


async def _answer(
    runtime: Runtime, who: Principal, doc: dict[str, Any], question: str, claim: Claim | None
) -> Response:
    # With an Idempotency-Key, the key is stored with the question: a repeat never posts it twice.
    asked = await run_action(runtime, who, "sendMessage", doc["_id"], {"text": question}, None, claim)
    if isinstance(asked, NeedsApproval):  # the owner's rules hold the member's message: nothing to answer yet
        return JSON(_held(asked), status_code=202)
    posted_question = public(await runtime.store.messages.get(doc["_id"], asked.result["messageId"]))
    assert posted_question is not None  # just posted, and messages are not deleted
    recent = await runtime.store.messages.page(doc["_id"], limit=prompt.MAX_MESSAGES + 1)
    recent = [m for m in recent if m["_id"] != posted_question["id"]][-prompt.MAX_MESSAGES :]
    role = next(m["role"] for m in doc["members"] if m["userId"] == who.id)
    task = prompt.chat_task(doc, recent, question, {"userId": who.id, "role": role}, utcnow())
    completion = await shared_provider(runtime).complete(task)
    answer = screen_chat(completion.text, doc["_id"], runtime.settings.max_message_chars, role)
    if answer.reply is None:
        raise AIUnavailable("The AI's answer could not be read; try again.", {"invalid": answer.invalid})
    reply_payload: dict[str, Any] = {"text": answer.reply, "replyTo": posted_question["id"]}
    if answer.stored:  # on the answer's message, for every member (domain/suggestions.py)
        reply_payload["suggestions"] = answer.stored
    posted = await runtime.engine.run("sendMessage", Actor.ai(new_id("chat")), doc["_id"], reply_payload)
    if isinstance(posted, NeedsApproval):
        # The owner made the AI's messages wait for approval (protectedActions or a rule): the
        # answer is posted when an owner approves it.
        return JSON(
            {
                "question": posted_question,
                "reply": None,
                "approval": public(posted.approval),
                "suggestions": answer.suggestions,
            },
            status_code=202,
        )
    reply = await runtime.store.messages.get(doc["_id"], posted.result["messageId"])
    return JSON({"question": posted_question, "reply": public(reply), "suggestions": answer.suggestions})


routes = [Route("/api/collaborations/{collaboration_id}/ai/chat", chat, methods=["POST"])]

_MESSAGE = {
    "type": "object",
    "description": "a message: id, collaborationId, author {type, id}, text, createdAt, "
    "seq, replyTo?, suggestions? (the AI's answer: [{action, payload, "
    "reason?}])",
}

PATHS: dict[str, Any] = {
    "/api/collaborations/{id}/ai/chat": {
        "post": openapi.idempotent(
            openapi.operation(
                "Ask the AI (members): the question is posted as the member's message, the answer as an AI message "
                "replying to it (`replyTo`); 202 with the approval instead when the owner made AI messages (or the "
                "member's) need approval; proposed actions come back as suggestions, not run",
                params=["id"],
                tag="ai",
                body={
                    "type": "object",
                    "required": ["message"],
                    "additionalProperties": False,
                    "properties": {"message": {"type": "string", "minLength": 1, "pattern": r"\S"}},
                },
                schema=openapi.obj(
                    ["question", "reply", "suggestions"],
                    {"question": _MESSAGE, "reply": _MESSAGE, "suggestions": {"type": "array"}},
                ),
                responses={
                    "202": {
                        "description": "Accepted: an owner must approve the AI's message (or the member's) first",
                        "schema": openapi.obj(
                            ["question", "reply", "approval", "suggestions"],
                            {
                                "question": {"oneOf": [_MESSAGE, {"type": "null"}]},
                                "reply": {"type": "null"},
                                "approval": {"type": "object"},
                                "suggestions": {"type": "array"},
                            },
                        ),
                    }
                },
            )
        )
    },
}
