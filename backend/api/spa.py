"""Serving the built SPA from the API (used by `tandem dev`): files, else index.html."""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Match, Route
from starlette.types import Scope

from backend.errors import NotFound


def is_server_path(path: str) -> bool:
    """The API's own paths, never the SPA's: api, api/…, ws, ws/…, metrics (not /wsx or /apis)."""
    first = path.split("/", 1)[0]
    return first in {"api", "ws"} or path == "metrics"


class _SpaRoute(Route):
    """Matches no server path at all, so the API's own routes answer it: a POST-only route asked
    with GET is their 405 (with their `Allow`), not the SPA's 404; an unknown one is the router's 404."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child = super().matches(scope)
        if match is not Match.NONE and is_server_path(child.get("path_params", {}).get("path", "")):
            return Match.NONE, {}
        return match, child


def routes(dist: Path) -> list[Route]:
    root = dist.resolve()
    index = root / "index.html"

    async def serve(request: Request) -> Response:
        path = request.path_params.get("path", "")
        if is_server_path(path):
            raise NotFound("Not found.")
        candidate = (root / path).resolve()
        if path and candidate.is_file() and root in candidate.parents:
            immutable = path.startswith("assets/")
            headers = {"Cache-Control": "public, max-age=31536000, immutable" if immutable else "no-cache"}
            return FileResponse(candidate, headers=headers)
        if path.startswith("assets/"):
            raise NotFound("Not found.")
        return FileResponse(index, headers={"Cache-Control": "no-cache"})

    return [_SpaRoute("/", serve, methods=["GET", "HEAD"]), _SpaRoute("/{path:path}", serve, methods=["GET", "HEAD"])]
