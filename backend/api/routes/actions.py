"""`POST /api/actions/{name}`: run one action of the catalogue as the caller."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from backend.api.auth import principal
from backend.api.gate import run_action
from backend.api.idempotency_header import rendered, run_once
from backend.api.responses import JSON, Endpoint, read_json
from backend.engine import Applied, NeedsApproval
from backend.errors import ValidationFailed
from backend.store.idempotency import Claim
from backend.wire import public

_BODY_FIELDS = {"collaborationId", "expectedVersion", "payload"}


def _check_body(body: dict[str, Any]) -> None:
    version = body.get("expectedVersion")
    if version is not None and (isinstance(version, bool) or not isinstance(version, int) or version < 1):
        raise ValidationFailed.at("expectedVersion", "Must be a positive integer")
    cid = body.get("collaborationId")
    if cid is not None and not isinstance(cid, str):
        raise ValidationFailed.at("collaborationId", "Must be a string")


def _answer(outcome: Applied | NeedsApproval) -> tuple[int, dict[str, Any]]:
    if isinstance(outcome, NeedsApproval):
        return 202, {"approval": public(outcome.approval)}
    answer: dict[str, Any] = {
        "collaborationId": outcome.collaborationId,
        "version": outcome.version,
        "result": outcome.result,
    }
    if outcome.followups:
        answer["followups"] = outcome.followups
    return 200, answer


def _render(outcome: Applied | NeedsApproval) -> tuple[int, bytes]:
    return rendered(*_answer(outcome))


async def action(request: Request) -> Response:
    who = await principal(request)

    async def handle(claim: Claim | None) -> Response:
        body = await read_json(request, _BODY_FIELDS)
        _check_body(body)
        outcome = await run_action(
            request.app.state.runtime,
            who,
            request.path_params["name"],
            body.get("collaborationId"),
            body.get("payload"),
            body.get("expectedVersion"),
            claim,
        )
        status, answer = _answer(outcome)
        return JSON(answer, status_code=status)

    return await run_once(request, who, _render, handle)


routes = [Route("/api/actions/{name}", Endpoint(action), methods=["POST"])]
