"""JSON in and out: msgspec-encoded responses and strict request bodies."""

from __future__ import annotations

import re
from typing import Any, Awaitable, Callable, Collection, Mapping

import msgspec
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from backend.errors import InvalidRequest, ValidationFailed
from backend.ids import has_prefix
from backend.wire import encode

_INTEGER = re.compile(r"-?[0-9]+")


_CONTENT_TYPE = (b"content-type", b"application/json")


class JSON(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return encode(content)

    def init_headers(self, headers: Mapping[str, str] | None = None) -> None:
        """Starlette's, without its checks when there are no extra headers: the same two, in its order."""
        if headers is not None or self.status_code < 200 or self.status_code in (204, 304):
            super().init_headers(headers)
            return
        self.raw_headers = [(b"content-length", str(len(self.body)).encode("latin-1")), _CONTENT_TYPE]


class LeanRequest(Request):
    """Starlette's Request whose `body()` reads the ASGI messages itself: Starlette's goes through
    an async generator (created, hooked into the event loop, closed) for the one message a small
    body comes in. Same result, same errors (a disconnect is ClientDisconnect; a body read twice
    is cached, in Starlette's own `_body`, which its `stream()` reads too)."""

    async def body(self) -> bytes:
        if not hasattr(self, "_body"):
            if self._stream_consumed:
                raise RuntimeError("Stream consumed")
            chunks: list[bytes] = []
            while True:
                message = await self._receive()
                if message["type"] == "http.request":
                    chunk = message.get("body", b"")
                    if chunk:
                        chunks.append(chunk)
                    if not message.get("more_body", False):
                        break
                elif message["type"] == "http.disconnect":
                    self._is_disconnected = True
                    raise ClientDisconnect()
            self._stream_consumed = True
            self._body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        return self._body


class Endpoint:
    """`func(request) -> response` as a plain ASGI app for a `Route`: Starlette's request_response
    without its per-route exception wrapper (an error goes to the app's ExceptionMiddleware, which
    answers it with the same handlers, backend/api/error_responses.py) and with a `LeanRequest`."""

    def __init__(self, func: Callable[[Request], Awaitable[Response]]):
        self.func = func
        self.__name__ = func.__name__  # the route's name, as Starlette names a function's

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await self.func(LeanRequest(scope, receive, send))
        await response(scope, receive, send)


async def read_json(request: Request, fields: Collection[str] | None = None) -> dict[str, Any]:
    """The request body as a JSON object, or `invalid_request`; with `fields`, any other top-level
    field is `validation_failed` ("Unknown field"), as msgspec refuses them inside payloads."""
    body = await request.body()
    if not body:
        raise InvalidRequest("The request needs a JSON body.")
    try:
        data = msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        raise InvalidRequest(f"The body is not valid JSON: {exc}.") from None
    except RecursionError:  # msgspec decodes nested arrays and objects recursively
        raise InvalidRequest("The body is nested too deeply.") from None
    if not isinstance(data, dict):
        raise InvalidRequest("The body must be a JSON object.")
    if fields is not None:
        unknown = [k for k in data if k not in fields]
        if unknown:
            raise ValidationFailed([{"path": k, "message": "Unknown field"} for k in sorted(unknown)])
    return data


def query_int(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:  # ASCII digits only: int() alone also takes " 1_0" (10) and "١" (Arabic-Indic 1)
        value = int(raw) if _INTEGER.fullmatch(raw) else None
    except ValueError:  # more digits than int() converts
        value = None
    if value is None:
        raise InvalidRequest(f"Query parameter {name!r} must be an integer.", {"parameter": name})
    if not low <= value <= high:
        raise InvalidRequest(f"Query parameter {name!r} must be between {low} and {high}.", {"parameter": name})
    return value


def query_id(request: Request, name: str, prefix: str) -> str | None:
    """An id-valued query parameter (`msg_…`, `aud_…`), or `invalid_request`."""
    raw = request.query_params.get(name) or None
    if raw is not None and not has_prefix(raw, prefix):
        raise InvalidRequest(f"Query parameter {name!r} must be an id starting with {prefix}_.", {"parameter": name})
    return raw
