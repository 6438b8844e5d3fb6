"""Collaborations, their messages and their audit trail (members only)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from backend.api.auth import principal
from backend.api.responses import JSON, query_int, read_json
from backend.api.routes.actions import run_action
from backend.errors import NotFound
from backend.wire import public


async def member_collaboration(request: Request, user_id: str) -> dict[str, Any]:
    """The collaboration named in the path, if the caller is a member; else not_found (no leak)."""
    collaboration_id = request.path_params["collaboration_id"]
    doc = await request.app.state.runtime.store.collaborations.get(collaboration_id)
    if doc is None or user_id not in doc.get("memberIds", []):
        raise NotFound("No such collaboration.", {"collaborationId": collaboration_id})
    return doc


async def list_mine(request: Request) -> Response:
    who = await principal(request)
    docs = await request.app.state.runtime.store.collaborations.for_member(who.id)
    return JSON({"collaborations": [public(d) for d in docs]})


async def create(request: Request) -> Response:
    who = await principal(request)
    body = await read_json(request)
    outcome = await run_action(request, who, "createCollaboration", None, body, None)
    return JSON(public(outcome.collaboration), status_code=201)


async def snapshot(request: Request) -> Response:
    who = await principal(request)
    return JSON(public(await member_collaboration(request, who.id)))


async def messages(request: Request) -> Response:
    who = await principal(request)
    doc = await member_collaboration(request, who.id)
    q = request.query_params
    limit = query_int(request, "limit", 50, 1, 200)
    page = await request.app.state.runtime.store.messages.page(
        doc["_id"], after=q.get("after") or None, before=q.get("before") or None, limit=limit)
    return JSON({"messages": [public(m) for m in page], "hasMore": len(page) == limit})


async def audit(request: Request) -> Response:
    who = await principal(request)
    doc = await member_collaboration(request, who.id)
    limit = query_int(request, "limit", 50, 1, 200)
    page = await request.app.state.runtime.store.audit.page(
        doc["_id"], before=request.query_params.get("before") or None, limit=limit)
    return JSON({"entries": [public(e) for e in page], "hasMore": len(page) == limit})


routes = [
    Route("/api/collaborations", list_mine, methods=["GET"]),
    Route("/api/collaborations", create, methods=["POST"]),
    Route("/api/collaborations/{collaboration_id}", snapshot, methods=["GET"]),
    Route("/api/collaborations/{collaboration_id}/messages", messages, methods=["GET"]),
    Route("/api/collaborations/{collaboration_id}/audit", audit, methods=["GET"]),
]
