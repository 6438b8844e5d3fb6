"""JSON in and out: msgspec-encoded responses and strict request bodies."""

from __future__ import annotations

import re
from typing import Any, Collection

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from backend.errors import InvalidRequest, ValidationFailed
from backend.ids import has_prefix
from backend.wire import encode

_INTEGER = re.compile(r"-?[0-9]+")


class JSON(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return encode(content)


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
    unknown = sorted(set(data) - set(fields)) if fields is not None else ()
    if unknown:
        raise ValidationFailed([{"path": k, "message": "Unknown field"} for k in unknown])
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
