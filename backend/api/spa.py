"""Serving the built SPA from the API (used by `tandem dev`): files, else index.html."""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from backend.errors import NotFound


def is_server_path(path: str) -> bool:
    """The API's own paths, never the SPA's: api, api/…, ws, ws/…, metrics (not /wsx or /apis)."""
    first = path.split("/", 1)[0]
    return first in {"api", "ws"} or path == "metrics"


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

    return [Route("/", serve, methods=["GET", "HEAD"]), Route("/{path:path}", serve, methods=["GET", "HEAD"])]
