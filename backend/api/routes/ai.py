"""`POST /api/collaborations/{id}/ai/chat`: ask the AI about one collaboration.

The reply is posted as an AI message through the engine's sendMessage, so every
subscriber sees it (or, when an owner made the AI's messages need approval, it
becomes an approval: 202 with `reply: null` and the `approval`). Each chat gets
an id (`chat_…`): the AI actor's run id, so the message's `author.id` (and an
approval's `proposedBy.runId`) name it as check-in messages name their run. The
actions the AI proposes come back as suggestions and are NOT run: a member may
run one as themselves (`POST /api/actions/{name}`); each says whether the asker's
role may (`allowed`) and else which role it `needs`.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from backend.ai import prompt, shared_provider
from backend.ai.proposals import screen_chat
from backend.ai.provider import AIUnavailable
from backend.api import openapi
from backend.api.auth import principal
from backend.api.responses import JSON, read_json
from backend.api.routes.collaborations import member_collaboration
from backend.clock import utcnow
from backend.domain.models import Actor
from backend.engine import NeedsApproval
from backend.errors import InvalidTransition, ValidationFailed
from backend.ids import new_id
from backend.wire import public


def _question(body: dict[str, Any], limit: int) -> str:
    message = body.get("message")
    if not isinstance(message, str) or not message.strip():
        raise ValidationFailed.at("message", "Required: the question for the AI")
    if len(message) > limit:
        raise ValidationFailed.at("message", f"Must be at most {limit} characters")
    return message.strip()


async def chat(request: Request) -> Response:
    who = await principal(request)
    runtime = request.app.state.runtime
    doc = await member_collaboration(request, who.id)
    question = _question(await read_json(request, {"message"}), runtime.settings.max_message_chars)
    runtime.extras["ratelimiter"].hit(who.id)
    if doc["status"] != "active":
        raise InvalidTransition("The collaboration is archived.", {"status": doc["status"]})
    recent = await runtime.store.messages.page(doc["_id"], limit=prompt.MAX_MESSAGES)
    role = next(m["role"] for m in doc["members"] if m["userId"] == who.id)
    task = prompt.chat_task(doc, recent, question, {"userId": who.id, "role": role}, utcnow())
    completion = await shared_provider(runtime).complete(task)
    answer = screen_chat(completion.text, doc["_id"], runtime.settings.max_message_chars, role)
    if answer.reply is None:
        raise AIUnavailable("The AI's answer could not be read; try again.", {"invalid": answer.invalid})
    posted = await runtime.engine.run("sendMessage", Actor.ai(new_id("chat")), doc["_id"], {"text": answer.reply})
    if isinstance(posted, NeedsApproval):
        # The owner made the AI's messages wait for approval (protectedActions or a rule): the
        # answer is posted when an owner approves it.
        return JSON({"reply": None, "approval": public(posted.approval), "suggestions": answer.suggestions},
                    status_code=202)
    reply = await runtime.store.messages.get(doc["_id"], posted.result["messageId"])
    return JSON({"reply": public(reply), "suggestions": answer.suggestions})


routes = [Route("/api/collaborations/{collaboration_id}/ai/chat", chat, methods=["POST"])]

PATHS: dict[str, Any] = {
    "/api/collaborations/{id}/ai/chat": {"post": openapi.operation(
        "Ask the AI (members): the reply is posted as an AI message (202 with the approval instead when "
        "the owner made AI messages need approval); proposed actions come back as suggestions, not run",
        params=["id"], tag="ai",
        body={"type": "object", "required": ["message"], "additionalProperties": False,
              "properties": {"message": {"type": "string", "minLength": 1, "pattern": r"\S"}}},
        schema=openapi.obj(["reply", "suggestions"], {"reply": {"type": "object"},
                                                      "suggestions": {"type": "array"}}),
        responses={"202": {"description": "Accepted: an owner must approve the AI's message first",
                           "schema": openapi.obj(["reply", "approval", "suggestions"], {
                               "reply": {"type": "null"}, "approval": {"type": "object"},
                               "suggestions": {"type": "array"}})}})},
}
