"""The layout rules of docs/architecture.md, checked on the source itself.

- all MongoDB access is in backend/store: nothing else imports pymongo, motor, bson or mongomock;
- the worker never imports the API's HTTP or WebSocket code (it runs in its own process);
- the change-stream reader and the hub never touch a socket (no Starlette, no uvicorn);
- settings are read once, in backend/settings.py: nothing else reads the environment;
- every module name under backend/ and worker/ is unique, but for a collection's store module and the
  route module of the same URL prefix (store/approvals.py and api/routes/approvals.py).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DRIVERS = ("pymongo", "motor", "bson", "mongomock", "mongomock_motor")
HTTP_LAYERS = ("backend.api", "backend.realtime", "starlette", "uvicorn")


def sources(*packages: str) -> list[Path]:
    return sorted(p for package in packages for p in (ROOT / package).rglob("*.py"))


def imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def within(name: str, roots: tuple[str, ...]) -> bool:
    return any(name == root or name.startswith(root + ".") for root in roots)


def test_only_the_store_imports_the_mongodb_driver():
    offenders = {
        str(path.relative_to(ROOT)): sorted(n for n in imported(path) if within(n, DRIVERS))
        for path in sources("backend", "worker")
        if "store" not in path.relative_to(ROOT).parts
    }
    assert {path: names for path, names in offenders.items() if names} == {}


def test_the_worker_never_loads_the_http_or_websocket_layers():
    # A fresh interpreter, so that what this test process imported does not count.
    script = (
        "import sys, json, worker.main, worker.commands, worker.checkin, worker.handlers, worker.scheduler;"
        "print(json.dumps(sorted(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True)
    loaded = json.loads(out.stdout)
    assert [name for name in loaded if within(name, HTTP_LAYERS)] == []
    assert "backend.engine" in loaded  # it does use the one action engine


def test_the_http_routes_never_import_the_worker():
    # The dev check-in reaches the worker's check-in through runtime.checkin (backend/composition.py sets it).
    offenders = {str(path.relative_to(ROOT)): sorted(n for n in imported(path) if within(n, ("worker",)))
                 for path in sources("backend/api")}
    assert {path: names for path, names in offenders.items() if names} == {}


def test_the_reader_and_the_hub_never_touch_a_socket():
    for name in ("changes", "hub", "events", "presence"):
        path = ROOT / "backend" / "realtime" / f"{name}.py"
        assert [n for n in imported(path) if within(n, ("starlette", "uvicorn", "websockets"))] == [], path


def test_only_settings_reads_the_environment():
    readers = []
    for path in sources("backend", "worker"):
        text = path.read_text()
        if ("os.environ" in text or "getenv" in text) and path.name != "settings.py":
            readers.append(str(path.relative_to(ROOT)))
    assert readers == []


def shares_its_name_by_convention(path: Path) -> bool:
    """store/<name>.py is the `<name>` collection; api/routes/<name>.py serves /api/<name>."""
    parts, text = path.relative_to(ROOT).parts, path.read_text()
    if parts[:-1] == ("backend", "store"):
        return (ast.get_docstring(ast.parse(text)) or "").startswith(f"The `{path.stem}` collection")
    if parts[:-1] == ("backend", "api", "routes"):
        return f'"/api/{path.stem}"' in text or f'"/api/{path.stem}/' in text
    return False


def test_module_names_are_unique_but_for_a_collection_and_its_routes():
    by_name: dict[str, list[Path]] = {}
    for path in sources("backend", "worker"):
        if path.name != "__init__.py":
            by_name.setdefault(path.name, []).append(path)
    clashes = {}
    for name, paths in by_name.items():
        layers = sorted(p.parent.name for p in paths)
        allowed = layers == ["routes", "store"] and all(shares_its_name_by_convention(p) for p in paths)
        if len(paths) > 1 and not allowed:
            clashes[name] = sorted(str(p.relative_to(ROOT)) for p in paths)
    assert clashes == {}
