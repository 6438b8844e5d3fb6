"""Who is calling: the bearer token, verified by the runtime's TokenVerifier."""

from __future__ import annotations

from starlette.requests import Request

from backend.auth.tokens import Principal
from backend.errors import Unauthenticated


async def principal(request: Request) -> Principal:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("Send `Authorization: Bearer <access token>`.")
    return await request.app.state.runtime.verifier.verify(token.strip())
