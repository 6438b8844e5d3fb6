"""`POST /api/dev/checkin` (dev mode only): run the AI check-in now, return its summary.

Body (optional): `{"collaborationId"}` to check one collaboration of mine; else every active one.
The check-in itself is the worker's (worker/checkin.py), reached through `runtime.checkin`, which
backend/composition.py sets with this route: the HTTP routes never import the worker.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from backend.api import openapi
from backend.api.auth import principal
from backend.api.responses import JSON, read_json
from backend.errors import Internal, NotFound, ValidationFailed
from backend.runtime import Runtime


async def checkin(request: Request) -> Response:
    who = await principal(request)
    runtime: Runtime = request.app.state.runtime
    ids = await _only(request, who.id)
    if runtime.checkin is None:  # backend/composition.py sets it wherever it adds this route
        raise Internal("The check-in is not available in this process.")
    return JSON(await runtime.checkin(trigger="dev", collaboration_ids=ids))


async def _only(request: Request, user_id: str) -> list[str] | None:
    if not (await request.body()).strip():
        return None
    body = await read_json(request, {"collaborationId"})
    cid = body.get("collaborationId")
    if cid is None:
        return None
    if not isinstance(cid, str):
        raise ValidationFailed.at("collaborationId", "Must be a string")
    doc = await request.app.state.runtime.store.collaborations.get(cid)
    if doc is None or user_id not in doc.get("memberIds", []):
        raise NotFound("No such collaboration.", {"collaborationId": cid})
    return [cid]


routes = [Route("/api/dev/checkin", checkin, methods=["POST"])]

PATHS: dict[str, Any] = {
    "/api/dev/checkin": {
        "post": openapi.operation(
            "Dev mode only: run the AI check-in now (every active collaboration, or `collaborationId` of mine); "
            "returns the run's summary",
            tag="dev",
            body_required=False,
            body={
                "type": "object",
                "additionalProperties": False,
                "properties": {"collaborationId": {"type": ["string", "null"]}},
            },
        )
    },
}
