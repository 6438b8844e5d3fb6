"""Health, readiness, client config and metrics."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from backend.api.responses import JSON
from backend.runtime import Runtime
from backend.store.client import ping


async def health(request: Request) -> Response:
    return JSON({"status": "ok"})


async def ready(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    checks = {"mongodb": await ping(runtime.handle)}
    if runtime.realtime is not None:
        checks["changeStream"] = bool(runtime.realtime.reader.running)
    ok = all(checks.values())
    return JSON({"status": "ready" if ok else "unavailable", "checks": checks}, status_code=200 if ok else 503)


async def config(request: Request) -> Response:
    """What the SPA needs to know before sign-in (and the limits it checks before sending)."""
    settings = request.app.state.runtime.settings
    body = {"authMode": settings.auth_mode, "maxMessageChars": settings.max_message_chars}
    if settings.auth_mode == "supabase":
        body["supabaseUrl"] = settings.supabase_url
        body["supabaseAnonKey"] = settings.supabase_anon_key
    return JSON(body)


async def metrics(request: Request) -> Response:
    m = request.app.state.runtime.metrics
    return Response(m.render(), media_type=m.content_type)


routes = [
    Route("/api/health", health, methods=["GET"]),
    Route("/api/ready", ready, methods=["GET"]),
    Route("/api/config", config, methods=["GET"]),
    Route("/metrics", metrics, methods=["GET"]),
]
