"""The OpenAPI document, and a browser UI for it that works offline (vendored Swagger UI).

(Over 300 lines: `build` writes out every path with its request and answer schemas in one place,
so the document reads as one contract next to design section 4; the actions' part is derived
from the catalogue. The Swagger UI page is the last 30 lines.)
"""

from __future__ import annotations

from typing import Any, Sequence

import msgspec
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from backend.api.responses import JSON
from backend.domain.catalogue import CATALOGUE
from backend.errors import ALL_ERRORS

_ERROR = {"$ref": "#/components/schemas/Error"}
_SECURED: list[dict[str, list[str]]] = [{"bearer": []}]


def operation(
    summary: str,
    ok: str = "200",
    body: dict[str, Any] | None = None,
    params: Sequence[str] = (),
    query: Sequence[tuple[str, str | dict[str, Any]]] = (),
    secured: bool = True,
    tag: str = "collaborations",
    schema: dict[str, Any] | None = None,
    responses: dict[str, dict[str, Any]] | None = None,
    media_type: str = "application/json",
    body_required: bool = True,
) -> dict[str, Any]:
    """One operation. `query` pairs a name with a type or a whole schema; `schema` is the `ok`
    answer's body; `responses` adds other documented answers (`{"202": {"description", "schema"}}`)."""
    content: dict[str, Any] = {"schema": schema} if schema is not None else {}
    op: dict[str, Any] = {
        "summary": summary,
        "tags": [tag],
        "responses": {ok: {"description": "OK", "content": {media_type: content}}},
    }
    for status, answer in (responses or {}).items():
        op["responses"][status] = {
            "description": answer["description"],
            "content": {"application/json": {"schema": answer["schema"]}},
        }
    op["responses"]["default"] = {"description": "Error", "content": {"application/json": {"schema": _ERROR}}}
    parameters = [{"name": p, "in": "path", "required": True, "schema": {"type": "string"}} for p in params]
    parameters += [
        {"name": n, "in": "query", "required": False, "schema": t if isinstance(t, dict) else {"type": t}}
        for n, t in query
    ]
    if parameters:
        op["parameters"] = parameters
    if body is not None:
        op["requestBody"] = {"required": body_required, "content": {"application/json": {"schema": body}}}
    if secured:
        op["security"] = _SECURED
    return op


IDEMPOTENCY_HEADER = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,128}$"},
    "description": "Sent again with the same key and body (same user, within IDEMPOTENCY_TTL), the request is "
    "not applied again: the first answer comes back, same status and body, with "
    "`Idempotent-Replayed: true`. A key is the user's own; a malformed one is 400 invalid_request.",
}


def idempotent(op: dict[str, Any]) -> dict[str, Any]:
    """An operation that takes `Idempotency-Key` (docs/http-api.md "Idempotency"): the header and its answers."""
    op.setdefault("parameters", []).append(dict(IDEMPOTENCY_HEADER))
    replayed = {
        "Idempotent-Replayed": {
            "description": "`true` on a stored answer given again",
            "schema": {"type": "string", "enum": ["true"]},
        }
    }
    for answer in op["responses"].values():
        if answer is not op["responses"]["default"]:
            answer["headers"] = replayed
    op["responses"]["409"] = {
        "description": "request_in_progress (with Retry-After): the first request with this "
        "key still runs; or this route's own conflicts",
        "headers": {"Retry-After": {"schema": {"type": "integer"}}},
        "content": {"application/json": {"schema": _ERROR}},
    }
    op["responses"]["422"] = {
        "description": "idempotency_key_reused: the key was used for another request (method, "
        "path or body); or validation_failed",
        "content": {"application/json": {"schema": _ERROR}},
    }
    return op


def limit(default: int, high: int = 200) -> dict[str, Any]:
    """A page's `limit` query parameter (backend.api.responses.query_int)."""
    return {"type": "integer", "minimum": 1, "maximum": high, "default": default}


def id_of(prefix: str) -> dict[str, Any]:
    """An id-valued query parameter (`msg_…`): backend.ids.has_prefix."""
    return {"type": "string", "pattern": f"^{prefix}_", "maxLength": 64}


def obj(required: list[str], properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "required": required, "properties": properties}


APPROVAL_ANSWER = {
    "description": "Accepted: an owner must approve it first",
    "schema": obj(["approval"], {"approval": {"type": "object"}}),
}
_HAS_MORE = {"hasMore": {"type": "boolean"}}
_ARRAY = {"type": "array", "items": {"type": "object"}}
_READY = obj(
    ["status", "checks"],
    {
        "status": {"type": "string", "enum": ["ready", "unavailable"]},
        "checks": {"type": "object", "additionalProperties": {"type": "boolean"}},
    },
)
_CURSOR = {
    "type": "string",
    "description": "the `next` of a previous page",
    "pattern": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z~col_",
}


def build(dev: bool) -> dict[str, Any]:
    payload_types = [spec.payload for spec in CATALOGUE.values()]
    _, components = msgspec.json.schema_components(payload_types, ref_template="#/components/schemas/{name}")
    components["Error"] = {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": {"type": "string", "enum": sorted({e.code for e in ALL_ERRORS})},
                    "message": {"type": "string"},
                    "details": {"type": "object"},
                },
            }
        },
    }
    paths: dict[str, Any] = {
        "/api/health": {
            "get": operation(
                "Liveness", secured=False, tag="system", schema=obj(["status"], {"status": {"const": "ok"}})
            )
        },
        "/api/ready": {
            "get": operation(
                "Readiness: MongoDB answers and the change-stream reader runs",
                secured=False,
                tag="system",
                schema=_READY,
                responses={"503": {"description": "Not ready", "schema": _READY}},
            )
        },
        "/api/config": {
            "get": operation(
                "What the SPA needs before sign-in (auth mode)",
                secured=False,
                tag="system",
                schema=obj(
                    ["authMode", "maxMessageChars"],
                    {
                        "authMode": {"type": "string", "enum": ["dev", "supabase"]},
                        "maxMessageChars": {"type": "integer"},
                    },
                ),
            )
        },
        "/api/me": {
            "get": operation(
                "The signed-in user",
                tag="auth",
                schema=obj(["id", "email"], {"id": {"type": "string"}, "email": {"type": "string"}}),
            )
        },
        "/api/collaborations": {
            "get": operation(
                "My collaborations, newest activity first",
                query=[("limit", limit(200)), ("after", _CURSOR)],
                schema=obj(
                    ["collaborations", "hasMore", "next"],
                    {"collaborations": _ARRAY, **_HAS_MORE, "next": {"type": ["string", "null"]}},
                ),
            ),
            "post": idempotent(
                operation(
                    "Create a collaboration",
                    "201",
                    {"$ref": "#/components/schemas/CreateCollaboration"},
                    schema=obj(["id", "version"], {"id": {"type": "string"}, "version": {"type": "integer"}}),
                )
            ),
        },
        "/api/collaborations/{id}": {
            "get": operation(
                "A collaboration's snapshot (members only)",
                params=["id"],
                schema=obj(["id", "version"], {"id": {"type": "string"}, "version": {"type": "integer"}}),
            )
        },
        "/api/collaborations/{id}/messages": {
            "get": operation(
                "A page of messages in id order",
                params=["id"],
                query=[("after", id_of("msg")), ("before", id_of("msg")), ("limit", limit(50))],
                schema=obj(["messages", "hasMore"], {"messages": _ARRAY, **_HAS_MORE}),
            )
        },
        "/api/collaborations/{id}/audit": {
            "get": operation(
                "Audit entries, newest first",
                params=["id"],
                query=[("before", id_of("aud")), ("limit", limit(50))],
                schema=obj(["entries", "hasMore"], {"entries": _ARRAY, **_HAS_MORE}),
            )
        },
        "/metrics": {
            "get": operation(
                "Prometheus metrics", secured=False, tag="system", media_type="text/plain", schema={"type": "string"}
            )
        },
    }
    for name, spec in CATALOGUE.items():
        ref: dict[str, Any] = {"$ref": f"#/components/schemas/{spec.payload.__name__}"}
        required = [] if spec.kind == "create" else ["collaborationId"]
        if components[spec.payload.__name__].get("required"):
            required.append("payload")
        else:  # a missing or null payload is {}, which only a payload without required fields accepts
            ref = {"anyOf": [ref, {"type": "null"}]}
        # An empty or null field is one not given: "" is no collaborationId, null no expectedVersion.
        body = {
            "type": "object",
            "properties": {
                "collaborationId": {"type": ["string", "null"], "description": "ignored: a new one gets a new id"}
                if spec.kind == "create"
                else {"type": "string", "minLength": 1},
                "expectedVersion": {"type": ["integer", "null"], "minimum": 1},
                "payload": ref,
            },
            "additionalProperties": False,
        }
        if required:
            body["required"] = required
        role = spec.role or "any signed-in user"
        paths[f"/api/actions/{name}"] = {
            "post": idempotent(
                operation(
                    f"{name} (least role: {role}; AI: {spec.ai})",
                    body=body,
                    tag="actions",
                    schema=obj(
                        ["collaborationId", "version", "result"],
                        {
                            "collaborationId": {"type": "string"},
                            "version": {"type": "integer"},
                            "result": {"type": "object"},
                            "followups": {"type": "array"},
                        },
                    ),
                    responses={"202": APPROVAL_ANSWER},
                )
            )
        }
    if dev:
        paths["/api/auth/dev-login"] = {
            "post": operation(
                "Dev mode only: a token for an email",
                body={
                    "type": "object",
                    "required": ["email"],
                    "properties": {"email": {"type": "string"}},
                    "additionalProperties": False,
                },
                secured=False,
                tag="auth",
                schema=obj(
                    ["access_token", "token_type", "expires_in", "user"],
                    {
                        "access_token": {"type": "string"},
                        "token_type": {"const": "bearer"},
                        "expires_in": {"type": "integer"},
                        "user": obj(["id", "email"], {"id": {"type": "string"}, "email": {"type": "string"}}),
                    },
                ),
            )
        }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Tandem API",
            "version": "0.1.0",
            "description": "Real-time collaboration backend. Realtime events: WebSocket `/ws` (see docs/protocol.md).",
        },
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        },
    }


def extend(document: dict[str, Any], paths: dict[str, Any]) -> None:
    """Other layers (approvals, AI chat, the dev check-in: backend/composition.py) add their paths here."""
    document["paths"].update(paths)


async def openapi_json(request: Request) -> Response:
    return JSON(request.app.state.openapi)


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Tandem API</title>
<link rel="stylesheet" href="/api/docs/static/swagger-ui.css"></head>
<body><div id="ui"></div>
<script src="/api/docs/static/swagger-ui-bundle.js"></script>
<script>window.ui = SwaggerUIBundle({url: "/api/openapi.json", dom_id: "#ui"});</script>
</body></html>"""


async def docs_page(request: Request) -> Response:
    return HTMLResponse(_PAGE)


def routes() -> list[Any]:
    from swagger_ui_bundle import swagger_ui_path

    return [
        Route("/api/openapi.json", openapi_json, methods=["GET"]),
        Route("/api/docs", docs_page, methods=["GET"]),
        Mount("/api/docs/static", StaticFiles(directory=swagger_ui_path), name="swagger"),
    ]
