"""Who am I, and (dev mode only) signing in by email."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from backend.api.auth import principal
from backend.api.responses import JSON, read_json
from backend.auth.dev_tokens import issue_dev_token

_DEV_LOGIN_FIELDS = {"email"}


async def me(request: Request) -> Response:
    who = await principal(request)
    return JSON({"id": who.id, "email": who.email})


async def dev_login(request: Request) -> Response:
    body = await read_json(request, _DEV_LOGIN_FIELDS)
    runtime = request.app.state.runtime
    issued = issue_dev_token(runtime.settings, body.get("email"))
    await runtime.directory.signed_in(issued["user"]["id"], issued["user"]["email"])  # known from now on
    return JSON(issued)


routes = [Route("/api/me", me, methods=["GET"])]
dev_routes = [Route("/api/auth/dev-login", dev_login, methods=["POST"])]
