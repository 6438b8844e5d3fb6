"""`tandem`: the command line. Settings are read here, once, and passed in.

`api`, `dev` and `catalogue-ts` are here; the worker's commands (worker, checkin, jobs) are worker/commands.py's.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any, Callable

import worker.commands as worker_commands
from backend.settings import Settings, SettingsError, load_settings

Command = Callable[[argparse.Namespace, Settings], int]
SETTINGS_OVERRIDES: dict[str, dict[str, Any]] = {
    "dev": {"auth_mode": "dev"},
    "catalogue-ts": {"auth_mode": "dev"},
}  # (no settings used)


def _default_dist() -> Path:
    return Path(__file__).resolve().parent.parent / "frontend" / "dist"


def api(args: argparse.Namespace, settings: Settings) -> int:
    from backend.composition import build_api
    from backend.serve import serve

    asyncio.run(serve(build_api(settings), settings, args.host, args.port))
    return 0


def dev(args: argparse.Namespace, settings: Settings) -> int:
    from backend.composition import build_dev
    from backend.serve import serve

    dist = Path(settings.frontend_dist) if settings.frontend_dist else _default_dist()
    app, notes = build_dev(settings, dist, seed=not args.no_demo)
    asyncio.run(serve(app, settings, args.host, args.port, banner=notes))
    return 0


def catalogue_ts(args: argparse.Namespace, settings: Settings) -> int:
    """Write frontend/src/generated/catalogue.ts from the action catalogue (--check: only say if it differs)."""
    from backend import catalogue_ts as generated

    if args.check:
        current = generated.PATH.read_text() if generated.PATH.exists() else ""
        if current != generated.render():
            print(f"{generated.PATH} is not the catalogue's: run `tandem catalogue-ts`", file=sys.stderr)
            return 1
        return 0
    print(f"{generated.PATH}: {'written' if generated.write() else 'unchanged'}")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tandem", description="Tandem: real-time collaboration on MongoDB.")
    sub = p.add_subparsers(dest="command", required=True)
    for name, helptext in (
        ("api", "run the API (REST + WebSocket)"),
        ("dev", "API + worker on the embedded store, dev auth, demo data, the SPA"),
    ):
        s = sub.add_parser(name, help=helptext)
        s.add_argument("--host", default="127.0.0.1")
        s.add_argument("--port", type=int, default=8000)
        if name == "dev":
            s.add_argument("--no-demo", action="store_true", help="start empty, without demo data")
    ts = sub.add_parser("catalogue-ts", help="write the SPA's copy of the action catalogue (frontend/src/generated)")
    ts.add_argument("--check", action="store_true", help="exit 1 when the file is not what it would write")
    worker_commands.add_commands(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        settings = load_settings(**SETTINGS_OVERRIDES.get(args.command, {}))
    except SettingsError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    from backend.logs import configure

    configure(settings.log_level)
    return COMMANDS[args.command](args, settings)


COMMANDS: dict[str, Command] = {"api": api, "dev": dev, "catalogue-ts": catalogue_ts, **worker_commands.COMMANDS}


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
