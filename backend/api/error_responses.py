"""Every error becomes `{"error": {"code", "message", "details"}}`, here and nowhere else."""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from backend.api.responses import JSON
from backend.errors import Internal, InvalidRequest, NotFound, RateLimited, RequestInProgress, TandemError

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


async def server_error(request: Request, exc: Exception) -> Response:
    """The `internal` answer; the trace is logged once (by `Edge`, under the request id; Starlette's
    ServerErrorMiddleware calls this again on the way out)."""
    if not request.scope.get(LOGGED):
        request.scope[LOGGED] = True
        log.exception("unhandled error", extra={"path": request.url.path})
    return render(Internal())


HANDLERS = {TandemError: tandem_error, HTTPException: http_error, Exception: server_error}
