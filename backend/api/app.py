"""`create_app(settings)`: the Starlette app, its middleware stack and its lifespan."""

from __future__ import annotations

import contextlib
from typing import Any, AsyncIterator, Awaitable, Callable, Sequence

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import BaseRoute

from backend.api import openapi
from backend.api.error_responses import HANDLERS
from backend.api.middleware import Edge
from backend.api.ratelimit import Limits
from backend.api.routes import actions, collaborations, session, system
from backend.runtime import Runtime
from backend.settings import Settings

Hook = Callable[[Runtime, Starlette], Awaitable[Any]]


# What a browser on another origin may send and read (the SPA sends Idempotency-Key on every
# mutation and reads Idempotent-Replayed and Retry-After).
CORS_HEADERS = ["authorization", "content-type", "x-request-id", "idempotency-key"]
CORS_EXPOSED = ["Idempotent-Replayed", "Retry-After", "X-Request-Id"]


def create_app(
    settings: Settings,
    *,
    runtime: Runtime | None = None,
    extra_routes: Sequence[BaseRoute] = (),
    on_start: Sequence[Hook] = (),
    on_stop: Sequence[Hook] = (),
) -> Starlette:
    """Build the API. `runtime` may be given (tests, `tandem dev`); else the lifespan opens one."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        own = runtime is None
        rt = runtime or await Runtime.open(settings)
        if rt.limits is None:
            rt.limits = Limits(settings)
        app.state.runtime = rt
        for hook in on_start:
            await hook(rt, app)
        try:
            yield
        finally:
            for hook in reversed(on_stop):
                await hook(rt, app)
            if own:
                await rt.close()

    routes: list[BaseRoute] = [
        *actions.routes,  # first: the route of most requests, matched before nine others (no other takes its paths)
        *system.routes,
        *session.routes,
        *collaborations.routes,
        *openapi.routes(),
        *extra_routes,
    ]
    if settings.dev:
        routes += session.dev_routes
    middleware = [Middleware(Edge, limit=settings.max_body_bytes)]
    if settings.cors_origins:
        middleware.insert(
            0,
            Middleware(
                CORSMiddleware,
                allow_origins=list(settings.cors_origins),
                allow_methods=["GET", "POST"],
                allow_headers=CORS_HEADERS,
                expose_headers=CORS_EXPOSED,
            ),
        )
    app = Starlette(routes=routes, middleware=middleware, exception_handlers=HANDLERS, lifespan=lifespan)
    app.state.settings = settings
    app.state.openapi = openapi.build(settings.dev)
    app.state.going_away = []  # () -> awaitable, run by backend.serve.Server before connections close
    if runtime is not None:
        app.state.runtime = runtime
    return app
