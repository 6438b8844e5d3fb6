"""Who is calling: the bearer token, verified by the runtime's TokenVerifier.

The first request a process sees from a user also records their id and email
(backend/store/users.py: addMember finds them without asking Supabase) and
clears their pending invitation marks (backend/auth/invitations.py).
"""

from __future__ import annotations

from starlette.requests import Request

from backend.auth.tokens import Principal
from backend.errors import Unauthenticated
from backend.runtime import Runtime


async def principal(request: Request) -> Principal:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("Send `Authorization: Bearer <access token>`.")
    runtime: Runtime = request.app.state.runtime
    who = await runtime.verifier.verify(token.strip())
    await runtime.users.signed_in(who.id, who.email)  # addMember finds them without asking Supabase
    await runtime.invitations.seen(who.id)  # an invited member's first sign-in clears the invitation
    return who
