"""Every error becomes `{"error": {"code", "message", "details"}}`, here and nowhere else."""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Scope

from backend.api.responses import JSON
from backend.errors import Internal, InvalidRequest, NotFound, RateLimited, RequestInProgress, TandemError
from backend.logs import mark_logged

log = logging.getLogger("tandem.api")

_HTTP_CODES = {404: NotFound, 400: InvalidRequest}


def render(error: TandemError) -> Response:
    headers = {}
    if isinstance(error, (RateLimited, RequestInProgress)):
        headers["Retry-After"] = str(error.retry_after)
    return JSON(error.to_dict(), status_code=error.status, headers=headers)


async def tandem_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, TandemError)
    return render(exc)


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        error: TandemError = InvalidRequest("Method not allowed.", {"method": request.method})
        response = render(error)
        response.status_code = 405
        if exc.headers and "Allow" in exc.headers:
            response.headers["Allow"] = _canonical_allow(exc.headers["Allow"])
        return response
    kind = _HTTP_CODES.get(exc.status_code)
    if kind is not None:
        return render(kind(str(exc.detail) if exc.status_code != 404 else "Not found."))
    error = TandemError(str(exc.detail))
    error.status = exc.status_code
    return render(error)


_METHOD_RANK = {m: i for i, m in enumerate(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"))}


def _canonical_allow(allow: str) -> str:
    """Starlette builds Allow from a set, so its order changes from run to run: fix it."""
    methods = {m.strip().upper() for m in allow.split(",") if m.strip()}
    return ", ".join(sorted(methods, key=lambda m: (_METHOD_RANK.get(m, len(_METHOD_RANK)), m)))


LOGGED = "tandem.error_logged"  # in the scope once an unhandled error is logged (middleware.Edge)


def log_unhandled(scope: Scope, exc: BaseException) -> None:
    """The trace of an unhandled error, once a request (`LOGGED` marks it in the scope): `Edge` logs it
    under the request id, and Starlette's ServerErrorMiddleware, which calls `server_error` again on
    the way out, finds it done."""
    if not scope.get(LOGGED):
        scope[LOGGED] = True
        log.error("unhandled error", exc_info=exc, extra={"path": scope["path"]})
    mark_logged(exc)  # uvicorn's "Exception in ASGI application" leaves it out (backend/logs.py)


async def server_error(request: Request, exc: Exception) -> Response:
    """The `internal` answer; the trace is logged once (`log_unhandled`)."""
    log_unhandled(request.scope, exc)
    return render(Internal())


HANDLERS = {TandemError: tandem_error, HTTPException: http_error, Exception: server_error}
