"""Approvals over HTTP: the owner's inbox and decisions (docs/worker.md)."""

from __future__ import annotations

from typing import Any, Awaitable, Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from backend.api import openapi
from backend.api.auth import principal
from backend.api.gate import decide
from backend.api.idempotency_header import rendered, run_once
from backend.api.responses import JSON
from backend.deciding import STATUSES, ApprovalService
from backend.errors import InvalidRequest
from backend.runtime import Runtime
from backend.store.idempotency import Claim
from backend.wire import public


def _service(request: Request) -> ApprovalService:
    runtime: Runtime = request.app.state.runtime
    return ApprovalService(runtime.store, runtime.engine)


async def list_approvals(request: Request) -> Response:
    who = await principal(request)
    status = request.query_params.get("status") or None
    if status is not None and status not in STATUSES:
        raise InvalidRequest(f"status must be one of {', '.join(STATUSES)}.", {"parameter": "status"})
    found = await _service(request).for_owner(who.id, status)
    return JSON({"approvals": [public(a) for a in found]})


def _decided(approval: dict[str, Any]) -> tuple[int, bytes]:
    return rendered(200, {"approval": public(approval)})


async def approve(request: Request) -> Response:
    who = await principal(request)

    async def handle(claim: Claim | None) -> Response:
        decided = await decide(
            request.app.state.runtime, who, request.path_params["approval_id"], approve=True, idempotency=claim
        )
        return JSON({"approval": public(decided)})

    return await run_once(request, who, _decided, handle)


async def reject(request: Request) -> Response:
    who = await principal(request)

    async def handle(claim: Claim | None) -> Response:
        decided = await decide(
            request.app.state.runtime, who, request.path_params["approval_id"], approve=False, idempotency=claim
        )
        return JSON({"approval": public(decided)})

    return await run_once(request, who, _decided, handle)


routes = [
    Route("/api/approvals", list_approvals, methods=["GET"]),
    Route("/api/approvals/{approval_id}/approve", approve, methods=["POST"]),
    Route("/api/approvals/{approval_id}/reject", reject, methods=["POST"]),
]

_ONE = openapi.obj(["approval"], {"approval": {"type": "object"}})

PATHS: dict[str, Any] = {
    "/api/approvals": {
        "get": openapi.operation(
            "Approvals of the collaborations I own, newest first",
            query=[("status", {"type": "string", "enum": list(STATUSES)})],
            tag="approvals",
            schema=openapi.obj(["approvals"], {"approvals": {"type": "array", "items": {"type": "object"}}}),
        )
    },
    "/api/approvals/{id}/approve": {
        "post": openapi.idempotent(
            openapi.operation(
                "Approve (owners): runs the action; the approval ends approved (with result) or failed (with error)",
                params=["id"],
                tag="approvals",
                schema=_ONE,
            )
        )
    },
    "/api/approvals/{id}/reject": {
        "post": openapi.idempotent(openapi.operation("Reject (owners)", params=["id"], tag="approvals", schema=_ONE))
    },
}


def openapi_hook(*paths: dict[str, Any]) -> Callable[[Runtime, Starlette], Awaitable[None]]:
    """An on_start hook that adds these paths to the app's OpenAPI document."""

    async def add_paths(runtime: Runtime, app: Starlette) -> None:
        for group in paths:
            openapi.extend(app.state.openapi, group)

    return add_paths
