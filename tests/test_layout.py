"""The layout rules of docs/architecture.md, checked on the source itself.

- all MongoDB access is in backend/store: nothing else imports pymongo, motor, bson or mongomock;
- the worker never imports the API's HTTP or WebSocket code (it runs in its own process);
- the change-stream reader and the hub never touch a socket (no Starlette, no uvicorn);
- settings are read once, in backend/settings.py: nothing else reads the environment;
- every module name under backend/ and worker/ is unique, but for a collection's store module and the
  route module of the same URL prefix (store/approvals.py and api/routes/approvals.py);
- each layer imports only the layers docs/architecture.md "The layers" allows it;
- every module over 300 lines (Python and the SPA's, tests aside) says why in its first 20 lines.
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
    offenders = {
        str(path.relative_to(ROOT)): sorted(n for n in imported(path) if within(n, ("worker",)))
        for path in sources("backend/api")
    }
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


CORE = {"settings", "errors", "ids", "clock", "wire", "logs", "metrics", "committed_secrets"}
ENGINE = {"engine", "preparations", "deciding"}
FOLDERS = {"domain", "rules", "store", "auth", "ai", "api", "realtime"}
# What each layer may import besides itself and the core (docs/architecture.md "The layers").
MAY_IMPORT = {
    "core": set(),
    "domain": set(),
    "rules": {"domain"},
    "store": set(),
    "auth": {"store", "domain"},
    "ai": {"domain", "store"},
    "engine": {"domain", "rules", "store", "auth"},
    "api": {"runtime", "engine", "domain", "store", "auth", "ai"},
    "realtime": {"store"},
    "worker": {"runtime", "engine", "domain", "store", "ai"},
}
# The catalogue names the engine's preparation hooks in its specs; only the engine calls them.
DOCUMENTED_EXCEPTIONS = {("backend/domain/catalogue.py", "backend.preparations")}


def layer_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] == "worker":
        return "worker"
    if parts[0] != "backend" or len(parts) == 1:
        return None
    if parts[1] in FOLDERS:
        return parts[1]
    if parts[1] == "runtime":
        return "runtime"  # what one process runs on: the entry points take it
    return "engine" if parts[1] in ENGINE else "core" if parts[1] in CORE else "top"


def run_time_imports(path: Path) -> set[str]:
    """What a module imports when it runs: imports under `if TYPE_CHECKING:` do not count."""
    names: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            if node.module == "backend":
                names.update(f"backend.{alias.name}" for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(), str(path)))
    return names


def test_each_layer_imports_only_the_layers_below_it():
    offenders = {}
    for path in sources("backend", "worker"):
        rel = str(path.relative_to(ROOT))
        own = layer_of(".".join(path.relative_to(ROOT).with_suffix("").parts))
        if own in (None, "top", "runtime"):
            continue
        allowed = MAY_IMPORT[own] | {own, "core"}
        bad = sorted(
            n
            for n in run_time_imports(path)
            if layer_of(n) not in (None, *allowed) and (rel, n) not in DOCUMENTED_EXCEPTIONS
        )
        if bad:
            offenders[rel] = bad
    assert offenders == {}


LONG = 300
REASON = "Over 300 lines"


def long_without_reason(paths: list[Path], root: Path = ROOT) -> list[str]:
    """The paths over LONG lines whose first 20 lines do not say why."""
    missing = []
    for path in paths:
        lines = path.read_text().splitlines()
        if len(lines) > LONG and not any(REASON in line for line in lines[:20]):
            missing.append(f"{path.relative_to(root)} ({len(lines)} lines)")
    return missing


def test_every_module_over_300_lines_says_why_at_its_top():
    """Issue 12: no module over 300 lines without a reason written at its top ("(Over 300 lines:
    ...)" in its first 20 lines). Test files are not modules of the product and are not counted;
    neither is the generated catalogue."""
    python = sources("backend", "worker")
    spa = sorted(
        p
        for p in (ROOT / "frontend" / "src").rglob("*")
        if p.suffix in (".ts", ".tsx") and ".test." not in p.name and "generated" not in p.parts
    )
    assert python and spa
    assert long_without_reason(python + spa) == []


def test_the_long_module_check_finds_a_module_without_its_reason(tmp_path):
    long = tmp_path / "long.py"
    long.write_text('"""A module."""\n' + "x = 1\n" * LONG)
    told = tmp_path / "told.py"
    told.write_text('"""A module.\n\n(Over 300 lines: a reason.)\n"""\n' + "x = 1\n" * LONG)
    short = tmp_path / "short.py"
    short.write_text("x = 1\n")
    assert long_without_reason([long, told, short], root=tmp_path) == [f"long.py ({LONG + 1} lines)"]
