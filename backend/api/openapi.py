"""The OpenAPI document, and a browser UI for it that works offline (vendored Swagger UI)."""

from __future__ import annotations

from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from backend.api.responses import JSON
from backend.domain.catalogue import CATALOGUE
from backend.errors import ALL_ERRORS

_ERROR = {"$ref": "#/components/schemas/Error"}
_SECURED = [{"bearer": []}]


def operation(summary: str, ok: str = "200", body: dict[str, Any] | None = None, params: list[str] = (),
        query: list[tuple[str, str]] = (), secured: bool = True, tag: str = "collaborations") -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "tags": [tag],
                          "responses": {ok: {"description": "OK", "content": {"application/json": {}}},
                                        "default": {"description": "Error",
                                                    "content": {"application/json": {"schema": _ERROR}}}}}
    parameters = [{"name": p, "in": "path", "required": True, "schema": {"type": "string"}} for p in params]
    parameters += [{"name": n, "in": "query", "required": False, "schema": {"type": t}} for n, t in query]
    if parameters:
        op["parameters"] = parameters
    if body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    if secured:
        op["security"] = _SECURED
    return op


def build(dev: bool) -> dict[str, Any]:
    payload_types = [spec.payload for spec in CATALOGUE.values()]
    _, components = msgspec.json.schema_components(payload_types, ref_template="#/components/schemas/{name}")
    components["Error"] = {"type": "object", "required": ["error"], "properties": {"error": {
        "type": "object", "required": ["code", "message"], "properties": {
            "code": {"type": "string", "enum": sorted({e.code for e in ALL_ERRORS})},
            "message": {"type": "string"}, "details": {"type": "object"}}}}}
    paths: dict[str, Any] = {
        "/api/health": {"get": operation("Liveness", secured=False, tag="system")},
        "/api/ready": {"get": operation("Readiness: MongoDB answers and the change-stream reader runs", secured=False,
                                  tag="system")},
        "/api/config": {"get": operation("What the SPA needs before sign-in (auth mode)", secured=False, tag="system")},
        "/api/me": {"get": operation("The signed-in user", tag="auth")},
        "/api/collaborations": {
            "get": operation("My collaborations, newest activity first"),
            "post": operation("Create a collaboration", "201", {"$ref": "#/components/schemas/CreateCollaboration"}),
        },
        "/api/collaborations/{id}": {"get": operation("A collaboration's snapshot (members only)", params=["id"])},
        "/api/collaborations/{id}/messages": {"get": operation(
            "A page of messages in id order", params=["id"],
            query=[("after", "string"), ("before", "string"), ("limit", "integer")])},
        "/api/collaborations/{id}/audit": {"get": operation(
            "Audit entries, newest first", params=["id"], query=[("before", "string"), ("limit", "integer")])},
        "/metrics": {"get": operation("Prometheus metrics", secured=False, tag="system")},
    }
    for name, spec in CATALOGUE.items():
        ref = {"$ref": f"#/components/schemas/{spec.payload.__name__}"}
        body = {"type": "object", "properties": {
            "collaborationId": {"type": "string"}, "expectedVersion": {"type": "integer", "minimum": 1},
            "payload": ref}, "additionalProperties": False}
        if spec.kind != "create":
            body["required"] = ["collaborationId"]
        role = spec.role or "any signed-in user"
        paths[f"/api/actions/{name}"] = {"post": operation(
            f"{name} (least role: {role}; AI: {spec.ai})", body=body, tag="actions")}
    if dev:
        paths["/api/auth/dev-login"] = {"post": operation(
            "Dev mode only: a token for an email", body={"type": "object", "required": ["email"],
                                                          "properties": {"email": {"type": "string"}}},
            secured=False, tag="auth")}
    return {
        "openapi": "3.1.0",
        "info": {"title": "Tandem API", "version": "0.1.0",
                 "description": "Real-time collaboration backend. Realtime events: WebSocket `/ws` "
                                "(see docs/protocol.md)."},
        "paths": paths,
        "components": {"schemas": components,
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}},
    }


def extend(document: dict[str, Any], paths: dict[str, Any]) -> None:
    """Other layers (worker routes, AI chat) add their paths here."""
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
