"""Collaborations, their messages and their audit trail (members only)."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from backend.api.auth import principal
from backend.api.gate import run_action
from backend.api.idempotency_header import rendered, run_once
from backend.api.responses import JSON, query_id, query_int, read_json
from backend.engine import Applied
from backend.errors import InvalidRequest, NotFound, ValidationFailed
from backend.ids import has_prefix
from backend.runtime import Runtime
from backend.store.idempotency import Claim
from backend.wire import public


async def member_collaboration(request: Request, user_id: str) -> dict[str, Any]:
    """The collaboration named in the path, if the caller is a member; else not_found (no leak)."""
    collaboration_id = request.path_params["collaboration_id"]
    runtime: Runtime = request.app.state.runtime
    doc = await runtime.store.collaborations.get(collaboration_id)
    if doc is None or user_id not in doc.get("memberIds", []):
        raise NotFound("No such collaboration.", {"collaborationId": collaboration_id})
    return doc


_CURSOR_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z")


def _page_cursor(doc: dict[str, Any]) -> str:
    """Where the next page of a member's list starts: the last one's lastActivityAt and id."""
    return f"{doc['lastActivityAt'].astimezone(timezone.utc).strftime('%Y-%m-%dT%H:%M:%S.%fZ')}~{doc['_id']}"


def _read_cursor(request: Request) -> tuple[datetime, str] | None:
    raw = request.query_params.get("after") or None
    if raw is None:
        return None
    at, _, last_id = raw.partition("~")
    when = None
    if _CURSOR_TIME.fullmatch(at):  # exactly what _page_cursor writes: strptime alone takes much more
        try:
            when = datetime.strptime(at, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
        except ValueError:
            pass
    if when is None or not has_prefix(last_id, "col"):
        raise InvalidRequest("Query parameter 'after' must be the `next` of a previous page.", {"parameter": "after"})
    return when, last_id


async def list_mine(request: Request) -> Response:
    who = await principal(request)
    limit = query_int(request, "limit", 200, 1, 200)
    docs = await request.app.state.runtime.store.collaborations.for_member(
        who.id, limit=limit + 1, after=_read_cursor(request)
    )
    more = len(docs) > limit
    docs = docs[:limit]
    return JSON(
        {"collaborations": [public(d) for d in docs], "hasMore": more, "next": _page_cursor(docs[-1]) if more else None}
    )


def _created(outcome: Applied) -> tuple[int, bytes]:
    return rendered(201, public(outcome.collaboration))


async def create(request: Request) -> Response:
    who = await principal(request)

    async def handle(claim: Claim | None) -> Response:
        body = await read_json(request)
        try:
            outcome = await run_action(request.app.state.runtime, who, "createCollaboration", None, body, None, claim)
        except ValidationFailed as exc:  # this route's fields are the body's own, not under `payload`
            fields = [{**f, "path": f["path"].removeprefix("payload").removeprefix(".")} for f in exc.fields]
            raise ValidationFailed(fields) from None
        assert isinstance(outcome, Applied)  # a collaboration about to exist has no rules to hold its creation
        return JSON(public(outcome.collaboration), status_code=201)

    return await run_once(request, who, _created, handle)


async def snapshot(request: Request) -> Response:
    who = await principal(request)
    return JSON(public(await member_collaboration(request, who.id)))


async def messages(request: Request) -> Response:
    who = await principal(request)
    doc = await member_collaboration(request, who.id)
    after, before = query_id(request, "after", "msg"), query_id(request, "before", "msg")
    limit = query_int(request, "limit", 50, 1, 200)
    # One more than asked says whether there is more in the direction of the page.
    page = await request.app.state.runtime.store.messages.page(doc["_id"], after=after, before=before, limit=limit + 1)
    more = len(page) > limit
    page = page[:limit] if after is not None else page[-limit:]
    return JSON({"messages": [public(m) for m in page], "hasMore": more})


async def audit(request: Request) -> Response:
    who = await principal(request)
    doc = await member_collaboration(request, who.id)
    before = query_id(request, "before", "aud")
    limit = query_int(request, "limit", 50, 1, 200)
    page = await request.app.state.runtime.store.audit.page(doc["_id"], before=before, limit=limit + 1)
    return JSON({"entries": [public(e) for e in page[:limit]], "hasMore": len(page) > limit})


async def mine_or_create(request: Request) -> Response:
    """One route for both methods, so a 405 on this path lists GET and POST in `Allow` (two routes
    for one path would make Starlette answer with the first one's methods only)."""
    return await (create(request) if request.method == "POST" else list_mine(request))


routes = [
    Route("/api/collaborations", mine_or_create, methods=["GET", "POST"]),
    Route("/api/collaborations/{collaboration_id}", snapshot, methods=["GET"]),
    Route("/api/collaborations/{collaboration_id}/messages", messages, methods=["GET"]),
    Route("/api/collaborations/{collaboration_id}/audit", audit, methods=["GET"]),
]
