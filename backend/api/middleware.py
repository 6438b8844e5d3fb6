"""`Edge`: the one pure-ASGI layer every HTTP request passes (docs/http-api.md).

It gives the request its id (the caller's sane `X-Request-Id`, else a new one) and puts it on the
answer, refuses a body past MAX_BODY_BYTES with 413 before anything parses it (by Content-Length,
which must be plain digits, and while it streams, whatever Content-Length said), answers an
exception with the app's handlers (backend/api/error_responses.py) as Starlette's
ExceptionMiddleware does (a sync handler in the threadpool, as it does), and an unhandled one
with the `internal` error (logged under the request id, also when the answer had begun, and
raised on to the server as Starlette's ServerErrorMiddleware does), refuses headers past
MAX_HEADER_BYTES with 431, takes a client gone mid-body quietly (logged and counted as 499, no
trace, no answer), logs the request once and counts it.

One layer instead of three (it was `RequestContext`, `BodyLimit` and Starlette's
ExceptionMiddleware, which WebSockets still pass): one pass over the request's headers, one
wrapper around `send` and `receive`, a `Request` for the handlers only when something was
raised, and the access log's record built only when its level is on (docs/performance.md, "The
cost of one action"). `TandemApp` (backend/api/app.py) puts it in Starlette's stack.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any, Awaitable, Callable, Mapping

from starlette._utils import is_async_callable
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backend.api.error_responses import log_unhandled, render, server_error
from backend.errors import HeadersTooLarge, PayloadTooLarge, TandemError
from backend.ids import new_id
from backend.logs import request_id

log = logging.getLogger("tandem.http")
_SAFE_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")  # fullmatch: `$` would let a trailing "\n" through
# The request's header names and values together, at most (431 `headers_too_large` past it). The
# HTTP parser has read and buffered them by then (uvicorn's httptools has no cap of its own): this
# keeps them from the app; the bound on what a connection may make the server buffer is the proxy's
# (Nginx's large_client_header_buffers, docs/deployment.md).
MAX_HEADER_BYTES = 64 * 1024
CLIENT_CLOSED = 499  # the status logged and counted for a client gone before its answer (as Nginx's)
_REQUEST_ID = b"x-request-id"
_CONTENT_LENGTH = b"content-length"

Handler = Callable[[Request, Exception], Awaitable[Response | None]]


def _awaitable(handler: Callable[..., Any]) -> Handler:
    """A handler as Edge awaits it: a sync one (or a partial of one) runs in the threadpool, as
    Starlette's ExceptionMiddleware runs it."""
    if is_async_callable(handler):
        return handler

    async def in_thread(request: Request, exc: Exception) -> Response | None:
        return await run_in_threadpool(handler, request, exc)

    return in_thread


class Edge:
    """Request id, body limit, exception handlers, the last word on unhandled errors, access log and
    metrics. `handlers`: exception class (or HTTP status) -> handler, as Starlette's
    ExceptionMiddleware takes them; `other`: the app for WebSockets and the lifespan."""

    def __init__(
        self,
        app: ASGIApp,
        limit: int,
        handlers: Mapping[Any, Handler] | None = None,
        other: ASGIApp | None = None,
    ):
        self.app = app
        self.other = other or app
        self.limit = limit
        handlers = handlers or {}
        status_handlers = {k: v for k, v in handlers.items() if isinstance(k, int)}
        exception_handlers = {k: v for k, v in handlers.items() if not isinstance(k, int)}
        # In the scope as ExceptionMiddleware puts them (a route's own wrapper runs sync ones itself).
        self._handlers_in_scope = (exception_handlers, status_handlers)
        self._status_handlers = {k: _awaitable(v) for k, v in status_handlers.items()}
        self._exception_handlers = {k: _awaitable(v) for k, v in exception_handlers.items()}

    def _handler(self, exc: Exception) -> Handler | None:
        handler = self._status_handlers.get(exc.status_code) if isinstance(exc, HTTPException) else None
        if handler is None:
            for cls in type(exc).__mro__:
                handler = self._exception_handlers.get(cls)
                if handler is not None:
                    break
        return handler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.other(scope, receive, send)
            return
        scope["starlette.exception_handlers"] = self._handlers_in_scope  # a route's own wrapper uses them
        given = length = None
        header_bytes = 0
        for name, value in scope.get("headers", ()):  # the last of a repeated header counts, as dict(headers) did
            header_bytes += len(name) + len(value) + 32  # as HTTP/2 counts a header list: many empty ones count too
            if name == _REQUEST_ID:
                given = value
            elif name == _CONTENT_LENGTH:
                length = value
        rid = None
        if given is not None:
            text = given.decode("latin-1")
            if _SAFE_ID.fullmatch(text):
                rid = text
        if rid is None:
            rid = new_id("req")[4:]
        rid_header = (_REQUEST_ID, rid.encode("latin-1"))
        token = request_id.set(rid)
        started = time.perf_counter()
        status = 500
        response_started = False
        limit = self.limit

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                # A 413 while the body streams keeps the connection (no `Connection: close`): uvicorn
                # then reads the rest of the body and drops it, and a client still sending gets to read
                # its answer; closed, the unread bytes reset the connection under it before it reads.
                message["headers"] = [*message.get("headers", ()), rid_header]
            await send(message)

        received = 0
        gone = False  # the client disconnected before its answer began

        async def counting_receive() -> Message:
            nonlocal received, gone
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise PayloadTooLarge(f"The body is larger than {limit} bytes.", {"limit": limit})
            elif message["type"] == "http.disconnect" and not response_started:
                gone = True
            return message

        try:
            if header_bytes > MAX_HEADER_BYTES:
                await self._refuse(scope, receive, send_with_id, HeadersTooLarge(details={"limit": MAX_HEADER_BYTES}))
            elif length is not None and (not length.isdigit() or int(length) > limit):
                await self._refuse(scope, receive, send_with_id)
            else:
                await self.app(scope, counting_receive, send_with_id)
        except ClientDisconnect:  # the client left mid-body: nobody to answer, nothing to log but the 499
            gone = gone or not response_started
        except Exception as exc:
            handler = self._handler(exc)
            if handler is None:  # what no handler answers: `internal`, then on to the server
                if response_started:  # no answer to give: the trace under the request id, before it is reset
                    log_unhandled(scope, exc)
                else:
                    response = await server_error(Request(scope), exc)
                    await response(scope, receive, send_with_id)
                raise
            if response_started:
                log_unhandled(scope, exc)
                raise RuntimeError("Caught handled exception, but response already started.") from exc
            answer = await handler(Request(scope, receive, send_with_id), exc)
            if answer is not None:
                await answer(scope, receive, send_with_id)
            exc.__traceback__ = None  # as Starlette: a reused exception would pile up tracebacks
        finally:
            if gone and not response_started:
                status = CLIENT_CLOSED
            elapsed = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            if log.isEnabledFor(logging.INFO):
                log.info(
                    "request",
                    extra={
                        "method": scope["method"],
                        "path": scope["path"],
                        "route": route,
                        "status": status,
                        "ms": round(elapsed * 1000, 2),
                    },
                )
            app = scope.get("app")
            runtime = getattr(app.state, "runtime", None) if app is not None else None
            if runtime is not None:
                runtime.metrics.observe_request(scope["method"], route, status, elapsed)
            request_id.reset(token)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, error: TandemError | None = None) -> None:
        """413 `payload_too_large` (or `error`) with `Connection: close`, before anything reads the body."""
        if error is None:
            error = PayloadTooLarge(f"The body is larger than {self.limit} bytes.", {"limit": self.limit})
        response = render(error)
        response.headers["connection"] = "close"
        await response(scope, receive, send)
