"""Assembling the processes: the API app, and the all-in-one dev app.

Each later layer (realtime, worker) adds its start/stop hooks and routes here,
so `backend.api.app.create_app` stays about HTTP alone.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.routing import BaseRoute

from backend.api.app import Hook, create_app
from backend.runtime import Runtime
from backend.settings import Settings

log = logging.getLogger("tandem")


def _layers(settings: Settings, *, with_worker: bool) -> tuple[list[BaseRoute], list[Hook], list[Hook]]:
    routes: list[BaseRoute] = []
    on_start: list[Hook] = []
    on_stop: list[Hook] = []
    # realtime: the change-stream reader, the hub and /ws (docs/realtime.md)
    from backend import realtime

    routes += realtime.routes
    on_start.append(realtime.start)
    on_stop.append(realtime.stop)
    # approvals, AI chat, dev check-in and the in-process worker (docs/worker.md)
    from backend.ai import close_shared_provider
    from backend.api.routes import ai, approvals, dev

    routes += [*approvals.routes, *ai.routes, *(dev.routes if settings.dev else [])]
    on_start.append(approvals.openapi_hook(approvals.PATHS, ai.PATHS, dev.PATHS if settings.dev else {}))
    if settings.dev:
        on_start.append(_dev_checkin)
    on_stop.append(close_shared_provider)
    if with_worker:
        from worker.main import start_in_process, stop_in_process

        on_start.append(start_in_process)
        on_stop.insert(0, stop_in_process)  # hooks stop in reverse: the worker stops last, after realtime
    return routes, on_start, on_stop


async def _dev_checkin(runtime: Runtime, app: Starlette) -> None:
    """What `POST /api/dev/checkin` runs: the worker's check-in, in this process, with the shared provider."""
    from backend.ai import shared_provider
    from worker.checkin import Checkin

    async def run(*, trigger: str, collaboration_ids: list[str] | None) -> dict[str, Any]:
        checker = Checkin(runtime.store, runtime.engine, runtime.settings, shared_provider(runtime))
        return await checker.run(trigger=trigger, collaboration_ids=collaboration_ids)

    runtime.checkin = run


DEV_AUTH_WARNING = (
    "DEV AUTH: AUTH_MODE=dev, so POST /api/auth/dev-login signs anyone in as any email, with no "
    "password. Use it on a machine of your own only; set AUTH_MODE=supabase for anything others reach."
)


def build_api(settings: Settings, runtime: Runtime | None = None) -> Starlette:
    if settings.dev:  # `tandem dev` says it in its banner; `tandem api` must say it loudly too
        log.warning(DEV_AUTH_WARNING)
    routes, on_start, on_stop = _layers(settings, with_worker=False)
    return create_app(settings, runtime=runtime, extra_routes=routes, on_start=on_start, on_stop=on_stop)


def build_dev(settings: Settings, dist: Path, *, seed: bool = True) -> tuple[Starlette, str]:
    from backend import demo
    from backend.api import spa

    routes, on_start, on_stop = _layers(settings, with_worker=True)

    async def seed_demo(runtime: Runtime, app: Starlette) -> None:
        if not seed:
            return
        if not runtime.settings.dev:
            # The demo people exist only under dev sign-in, and adding Bob would ask Supabase for him.
            log.info("demo data skipped: AUTH_MODE=%s (the demo needs AUTH_MODE=dev)", runtime.settings.auth_mode)
            return
        info = await demo.seed(runtime)
        log.info("demo data ready", extra=info)

    if settings.dev:
        notes = [
            f"Dev mode: sign in with any email (demo users: {demo.ALICE}, {demo.BOB}).",
            "  curl -s -X POST {url}/api/auth/dev-login -H 'content-type: application/json' "
            f'-d \'{{"email": "{demo.ALICE}"}}\'',
        ]
    else:
        notes = [f"AUTH_MODE={settings.auth_mode}: sign in with a Supabase account; no demo data."]
    if (dist / "index.html").is_file():
        routes = [*routes, *spa.routes(dist)]
    else:
        notes.append(f"The SPA is not built ({dist}); run `make run` or `cd frontend && npm run build`.")
    app = create_app(settings, extra_routes=routes, on_start=[*on_start, seed_demo], on_stop=on_stop)
    return app, "\n".join(notes)
