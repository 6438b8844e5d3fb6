"""`create_app(settings)`: the Starlette app, its middleware stack and its lifespan."""

from __future__ import annotations

import contextlib
from typing import Any, AsyncIterator, Awaitable, Callable, Sequence

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.routing import BaseRoute
from starlette.types import ASGIApp

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


class TandemApp(Starlette):
    """Starlette whose stack ends in `Edge` (backend/api/middleware.py) instead of ExceptionMiddleware:
    ServerErrorMiddleware (the last resort, as in Starlette) -> the user middleware (CORS) -> Edge
    (request id, body limit, the exception handlers, access log, metrics) -> the router. WebSockets
    and the lifespan go from Edge through Starlette's ExceptionMiddleware, as before."""

    def __init__(self, *args: Any, max_body_bytes: int, **kwargs: Any):
        self.max_body_bytes = max_body_bytes
        super().__init__(*args, **kwargs)

    def build_middleware_stack(self) -> ASGIApp:
        error_handler = None
        handlers: dict[Any, Any] = {}
        for key, value in self.exception_handlers.items():
            if key in (500, Exception):
                error_handler = value
            else:
                handlers[key] = value
        other = ExceptionMiddleware(self.router, handlers=handlers, debug=self.debug)
        app: ASGIApp = Edge(self.router, self.max_body_bytes, handlers, other)
        for cls, args, kwargs in reversed(self.user_middleware):
            app = cls(app, *args, **kwargs)
        return ServerErrorMiddleware(app, handler=error_handler, debug=self.debug)


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
    middleware = []  # Edge is the stack's own (TandemApp)
    if settings.cors_origins:
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=list(settings.cors_origins),
                allow_methods=["GET", "POST"],
                allow_headers=CORS_HEADERS,
                expose_headers=CORS_EXPOSED,
            ),
        )
    app = TandemApp(
        routes=routes,
        middleware=middleware,
        exception_handlers=HANDLERS,
        lifespan=lifespan,
        max_body_bytes=settings.max_body_bytes,
    )
    app.state.settings = settings
    app.state.openapi = openapi.build(settings.dev)
    app.state.going_away = []  # () -> awaitable, run by backend.serve.Server before connections close
    if runtime is not None:
        app.state.runtime = runtime
    return app
