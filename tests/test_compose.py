"""The Compose files render (`docker-compose config`) and say what a deployment needs.

Needs the `docker-compose` binary (Debian's package; `make test` installs it),
not a Docker daemon: `config` only parses, validates and interpolates.
"""

from __future__ import annotations

import io
import os
import shutil
import socket
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
DEV = ROOT / "docker-compose.yml"
PROD = ROOT / "docker-compose.prod.yml"
COMPOSE = shutil.which("docker-compose")

pytestmark = pytest.mark.skipif(
    COMPOSE is None, reason="docker-compose binary not installed (apt-get install -y docker-compose)"
)

PROD_SECRETS = {
    "SUPABASE_URL": "https://example-project.supabase.co",
    "SUPABASE_ANON_KEY": "anon-key-for-tests",
    "SUPABASE_SERVICE_KEY": "service-role-key-for-tests",  # addMember resolves emails with it
    # MongoDB runs with authentication: its root user and the replica-set keyfile
    "MONGO_ROOT_USERNAME": "tandem-root",
    "MONGO_ROOT_PASSWORD": "rootpw4tests",
    "MONGO_REPLICA_KEY": "a2V5ZmlsZS1mb3ItdGVzdHM",
}
# Variables a developer may have exported that would hide a missing secret or change a default.
CLEARED = {
    "SUPABASE_URL",
    "SUPABASE_ANON_KEY",
    "SUPABASE_SERVICE_KEY",
    "SUPABASE_JWT_SECRET",
    "SUPABASE_JWKS_URL",
    "MONGODB_URI",
    "MONGO_ROOT_USERNAME",
    "MONGO_ROOT_PASSWORD",
    "MONGO_REPLICA_KEY",
    "DEV_JWT_SECRET",
    "ALLOW_ANONYMOUS",
    "GROQ_API_KEY",
    "MAX_BODY_BYTES",
    "OLLAMA_URL",
    "HTTP_BIND",
    "HTTP_PORT",
    "TANDEM_BACKEND_IMAGE",
    "COMPOSE_FILE",
    "COMPOSE_PROFILES",
    "COMPOSE_PROJECT_NAME",
}
API_DEFAULT_MAX_BODY_BYTES = "1048576"  # backend/settings.py, nginx/render.py, docker/frontend.Dockerfile


def compose(
    file: Path, *args: str, env: dict[str, str] | None = None, tmp_path: Path
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in CLEARED}
    base.update(env or {})
    empty_env_file = tmp_path / "empty.env"  # ignore a local .env with real secrets
    empty_env_file.write_text("")
    return subprocess.run(
        [
            COMPOSE,
            "--env-file",
            str(empty_env_file),
            "-f",
            str(file),
            "--project-directory",
            str(ROOT),
            "config",
            *args,
        ],
        cwd=ROOT,
        env=base,
        capture_output=True,
        text=True,
        timeout=60,
    )


def rendered(file: Path, tmp_path: Path, env: dict[str, str] | None = None) -> dict:
    result = compose(file, env=env, tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def test_dev_file_is_valid(tmp_path: Path) -> None:
    result = compose(DEV, "-q", tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr


def test_prod_file_is_valid_with_its_secrets(tmp_path: Path) -> None:
    result = compose(PROD, "-q", env=PROD_SECRETS, tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("missing", sorted(PROD_SECRETS))
def test_prod_file_refuses_to_render_without_a_secret(tmp_path: Path, missing: str) -> None:
    env = {k: v for k, v in PROD_SECRETS.items() if k != missing}
    result = compose(PROD, "-q", env=env, tmp_path=tmp_path)
    assert result.returncode != 0
    assert missing in result.stderr


def test_dev_runs_mongo_as_a_replica_set_and_mounts_the_source(tmp_path: Path) -> None:
    services = rendered(DEV, tmp_path)["services"]
    assert {"mongo", "mongo-test", "api", "worker", "frontend"} <= set(services)
    for name in ("mongo", "mongo-test"):
        assert services[name]["image"] == "mongo:7"
        assert "--replSet" in services[name]["command"]
        assert "rs.initiate" in " ".join(services[name]["healthcheck"]["test"])
    api = services["api"]
    assert "replicaSet=rs0" in api["environment"]["MONGODB_URI"]
    assert api["depends_on"]["mongo"]["condition"] == "service_healthy"
    assert any(str(v).startswith(str(ROOT / "backend")) for v in api["volumes"])
    assert "tandem api" in " ".join(api["command"])
    assert "tandem worker" in " ".join(services["worker"]["command"])


def test_dev_mounts_no_tests_the_image_cannot_run(tmp_path: Path) -> None:
    # The backend image has no pytest: a mounted tests/ would only suggest otherwise.
    services = rendered(DEV, tmp_path)["services"]
    for name in ("api", "worker"):
        targets = [str(v).split(":")[1] for v in services[name]["volumes"]]
        assert "/app/backend" in targets and "/app/tests" not in targets, (name, targets)


@pytest.mark.parametrize("file", [DEV, PROD], ids=["dev", "prod"])
def test_the_backend_image_is_built_once(tmp_path: Path, file: Path) -> None:
    # The API and the worker run the same image: two `build:` sections would build the tag twice.
    services = rendered(file, tmp_path, env=PROD_SECRETS if file == PROD else None)["services"]
    assert [name for name in ("api", "worker") if "build" in services[name]] == ["api"]
    assert services["api"]["build"]["dockerfile"] == "docker/backend.Dockerfile"
    assert services["worker"]["image"] == services["api"]["image"]


def test_dev_health_checks_and_start_order(tmp_path: Path) -> None:
    services = rendered(DEV, tmp_path)["services"]
    assert "/api/ready" in " ".join(services["api"]["healthcheck"]["test"])
    assert 'tandem", "jobs", "workers' in " ".join(services["worker"]["healthcheck"]["test"])
    # The Vite dev server proxies to the API: it starts once the API is ready.
    assert services["frontend"]["depends_on"]["api"]["condition"] == "service_healthy"


def test_dev_backend_settings_and_the_host_gateway(tmp_path: Path) -> None:
    services = rendered(DEV, tmp_path)["services"]
    for name in ("api", "worker"):
        env = services[name]["environment"]
        assert env["SUPABASE_SERVICE_KEY"] == ""  # optional in dev (AUTH_MODE=supabase: adding members needs it)
        assert env["MAX_BODY_BYTES"] == API_DEFAULT_MAX_BODY_BYTES
        # OLLAMA_URL defaults to Ollama on the host: the name must resolve on Linux too.
        assert "host.docker.internal" in env["OLLAMA_URL"]
        assert "host.docker.internal:host-gateway" in services[name]["extra_hosts"]
    assert services["frontend"]["environment"]["MAX_BODY_BYTES"] == API_DEFAULT_MAX_BODY_BYTES
    passed = rendered(DEV, tmp_path, env={"SUPABASE_SERVICE_KEY": "k", "MAX_BODY_BYTES": "2048"})["services"]
    assert passed["api"]["environment"]["SUPABASE_SERVICE_KEY"] == "k"
    assert {passed[n]["environment"]["MAX_BODY_BYTES"] for n in ("api", "worker", "frontend")} == {"2048"}


def test_prod_has_restarts_health_checks_and_no_bind_mounts(tmp_path: Path) -> None:
    config = rendered(PROD, tmp_path, env=PROD_SECRETS)
    services = config["services"]
    assert set(services) == {"mongo", "api", "worker", "frontend"}
    for name, service in services.items():
        assert service.get("restart") in {"always", "unless-stopped"}, name
        assert "healthcheck" in service, name
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0] if isinstance(volume, str) else volume.get("source", "")
            assert not source.startswith(("/", ".")), f"{name} bind-mounts {source}"
    assert "mongo-data" in config["volumes"]
    # Ready, not merely alive: MongoDB answers and the change-stream reader runs.
    assert "/api/ready" in " ".join(services["api"]["healthcheck"]["test"])
    assert "/proc/1/cmdline" not in " ".join(services["worker"]["healthcheck"]["test"])
    assert services["api"]["command"] == ["tandem", "api", "--host", "0.0.0.0", "--port", "8000"]
    assert services["worker"]["command"] == ["tandem", "worker"]
    for name in ("api", "worker"):
        assert services[name]["depends_on"]["mongo"]["condition"] == "service_healthy"
        env = services[name]["environment"]
        assert env["MONGODB_URI"] == ("mongodb://tandem-root:rootpw4tests@mongo:27017/?replicaSet=rs0&authSource=admin")
        assert env["AUTH_MODE"] == "supabase"
        assert env["SUPABASE_URL"] == PROD_SECRETS["SUPABASE_URL"]
        assert env["SUPABASE_SERVICE_KEY"] == PROD_SECRETS["SUPABASE_SERVICE_KEY"]
        assert env["MAX_BODY_BYTES"] == API_DEFAULT_MAX_BODY_BYTES
        assert env["GROQ_API_KEY"] == ""  # optional
    assert services["frontend"]["depends_on"]["api"]["condition"] == "service_healthy"
    assert services["frontend"]["environment"]["MAX_BODY_BYTES"] == API_DEFAULT_MAX_BODY_BYTES
    assert "ports" not in services["mongo"]


def test_prod_publishes_plain_http_on_loopback_unless_told(tmp_path: Path) -> None:
    # The TLS terminator sits on the same host; plain HTTP on every interface would bypass it.
    services = rendered(PROD, tmp_path, env=PROD_SECRETS)["services"]
    assert services["frontend"]["ports"] == ["127.0.0.1:8080:8080/tcp"]
    for name in ("mongo", "api", "worker"):
        assert "ports" not in services[name], name
    told = rendered(PROD, tmp_path, env={**PROD_SECRETS, "HTTP_BIND": "0.0.0.0", "HTTP_PORT": "80"})["services"]
    assert told["frontend"]["ports"] == ["0.0.0.0:80:8080/tcp"]


def test_prod_takes_an_external_mongodb_uri_in_a_copy_without_the_mongo_service(tmp_path: Path) -> None:
    # What docs/deployment.md says to do for a managed replica set: delete the mongo service, its
    # volume and x-backend's depends_on, and set MONGODB_URI; the copy renders without MONGO_*.
    uri = "mongodb+srv://user:pw@cluster.example.net/?retryWrites=true"
    text = PROD.read_text()
    data = yaml.safe_load(text)
    del data["services"]["mongo"], data["volumes"]["mongo-data"], data["x-backend"]["depends_on"]
    data["x-backend"]["environment"]["MONGODB_URI"] = "${MONGODB_URI:?set MONGODB_URI}"
    for name in ("api", "worker"):
        data["services"][name].pop("depends_on", None)
        data["services"][name]["environment"] = data["x-backend"]["environment"]
    copy = tmp_path / "docker-compose.external.yml"
    copy.write_text(yaml.safe_dump(data))
    env = {k: v for k, v in PROD_SECRETS.items() if not k.startswith("MONGO_")} | {"MONGODB_URI": uri}
    services = rendered(copy, tmp_path, env=env)["services"]
    assert services["api"]["environment"]["MONGODB_URI"] == uri
    assert "mongo" not in services


def test_prod_gives_nginx_and_the_api_the_same_body_limit(tmp_path: Path) -> None:
    services = rendered(PROD, tmp_path, env={**PROD_SECRETS, "MAX_BODY_BYTES": "2097152"})["services"]
    assert {services[n]["environment"]["MAX_BODY_BYTES"] for n in ("api", "worker", "frontend")} == {"2097152"}


# -- the worker's healthcheck, run against what `tandem jobs workers` really prints ----------------


def worker_healthcheck(file: Path, tmp_path: Path) -> str:
    env = PROD_SECRETS if file == PROD else None
    test = rendered(file, tmp_path, env=env)["services"]["worker"]["healthcheck"]["test"]
    assert test[:3] == ["CMD", "python", "-c"]
    return test[3]


def test_the_worker_healthcheck_is_the_same_in_dev_and_prod(tmp_path: Path) -> None:
    assert worker_healthcheck(DEV, tmp_path) == worker_healthcheck(PROD, tmp_path)


async def workers_output(beats: list[tuple[str, str, timedelta]]) -> str:
    """What `tandem jobs workers` prints for these (worker id, status, age) heartbeats."""
    from backend.clock import utcnow
    from tests.support import open_runtime
    from worker.commands import workers_list

    runtime = await open_runtime()
    try:
        now = utcnow()
        for worker_id, status, age in beats:
            await runtime.store.workers.beat(
                worker_id, now - age, {"status": status, "currentJob": None, "processed": 0, "failed": 0}
            )
        out = io.StringIO()
        assert await workers_list(runtime, out=out) == 0
        return out.getvalue()
    finally:
        await runtime.close()


ME = socket.gethostname()


@pytest.mark.parametrize(
    ("beats", "healthy"),
    [
        ([(f"{ME}:1:ab12", "running", timedelta(seconds=5))], True),
        ([(f"{ME}:1:ab12", "stopped", timedelta(minutes=3)), (f"{ME}:1:cd34", "running", timedelta(seconds=2))], True),
        ([(f"{ME}:1:ab12", "running", timedelta(minutes=2))], False),  # stalled: no beat for two minutes
        ([(f"{ME}:1:ab12", "stopped", timedelta(seconds=1))], False),
        ([(f"other-{ME}:1:ab12", "running", timedelta(seconds=1))], False),  # another container's worker
        ([], False),
    ],
    ids=["fresh", "restarted", "stale", "stopped", "another-host", "none"],
)
async def test_the_worker_healthcheck_wants_a_fresh_heartbeat_of_its_own(
    tmp_path: Path, beats: list[tuple[str, str, timedelta]], healthy: bool
) -> None:
    script = worker_healthcheck(PROD, tmp_path)
    output = tmp_path / "workers.jsonl"
    output.write_text(await workers_output(beats))
    fake = tmp_path / "bin" / "tandem"  # stands in for the image's `tandem`: prints the real command's output
    fake.parent.mkdir()
    fake.write_text(f'#!/bin/sh\n[ "$*" = "jobs workers" ] || exit 9\ncat "{output}"\n')
    fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{fake.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert (result.returncode == 0) is healthy, result.stderr


def test_the_worker_healthcheck_fails_when_the_command_fails(tmp_path: Path) -> None:
    script = worker_healthcheck(PROD, tmp_path)
    fake = tmp_path / "bin" / "tandem"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho 'cannot reach MongoDB' >&2\nexit 1\n")
    fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{fake.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0


# -- no unsafe set-up: loopback-only dev ports, no committed secrets, MongoDB with authentication ----


def test_dev_publishes_every_port_on_loopback_only(tmp_path: Path) -> None:
    # Dev sign-in lets anyone be anyone and the dev MongoDB has no users: nothing may reach them from the network.
    services = rendered(DEV, tmp_path)["services"]
    published = {name: s["ports"] for name, s in services.items() if s.get("ports")}
    assert set(published) == {"mongo", "mongo-test", "api", "frontend"}
    for name, ports in published.items():
        for port in ports:
            text = port if isinstance(port, str) else f"{port.get('host_ip', '')}:{port['published']}"
            assert text.startswith("127.0.0.1:"), (name, port)


def test_dev_commits_no_jwt_secret(tmp_path: Path) -> None:
    # Unset, dev tokens get a random DEV_JWT_SECRET at start-up; SUPABASE_JWT_SECRET is yours to give.
    for name in ("api", "worker"):
        env = rendered(DEV, tmp_path)["services"][name]["environment"]
        assert env["DEV_JWT_SECRET"] == "" and env["SUPABASE_JWT_SECRET"] == ""
        assert env["AUTH_MODE"] == "dev" and env["ALLOW_ANONYMOUS"] == "false"


def test_prod_runs_mongodb_with_a_root_user_and_a_keyfile(tmp_path: Path) -> None:
    mongo = rendered(PROD, tmp_path, env=PROD_SECRETS)["services"]["mongo"]
    env = mongo["environment"]
    assert (env["MONGO_INITDB_ROOT_USERNAME"], env["MONGO_INITDB_ROOT_PASSWORD"], env["MONGO_REPLICA_KEY"]) == (
        PROD_SECRETS["MONGO_ROOT_USERNAME"],
        PROD_SECRETS["MONGO_ROOT_PASSWORD"],
        PROD_SECRETS["MONGO_REPLICA_KEY"],
    )
    script = mongo["entrypoint"][2]
    assert "--keyFile" in script and "--replSet rs0" in script
    health = " ".join(mongo["healthcheck"]["test"])
    assert "--authenticationDatabase admin" in health and "MONGO_INITDB_ROOT_PASSWORD" in health


def _run_mongo_entrypoint(tmp_path: Path, key: str | None) -> subprocess.CompletedProcess[str]:
    """The prod mongo entrypoint script, as rendered, with the image's commands stubbed on PATH."""
    env = dict(PROD_SECRETS)
    script = rendered(PROD, tmp_path, env=env)["services"]["mongo"]["entrypoint"][2]
    keyfile = tmp_path / "replica.key"
    script = script.replace("/run/tandem-replica.key", str(keyfile))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "chown").write_text('#!/bin/sh\necho "chown $*" >> "$TRACE"\n')
    (bin_dir / "docker-entrypoint.sh").write_text(
        '#!/bin/sh\necho "exec $*" >> "$TRACE"\necho "mode $(stat -c %a "$KEYFILE")" >> "$TRACE"\n'
        'echo "key-in-env ${MONGO_REPLICA_KEY:-none}" >> "$TRACE"\n'
    )
    for stub in bin_dir.iterdir():
        stub.chmod(0o755)
    run_env = {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "TRACE": str(tmp_path / "trace"),
        "KEYFILE": str(keyfile),
    }
    if key is not None:
        run_env["MONGO_REPLICA_KEY"] = key
    # `$$` in the Compose file is a literal `$` for the container: the rendered text keeps `$$`.
    return subprocess.run(
        ["bash", "-c", script.replace("$$", "$")], env=run_env, capture_output=True, text=True, timeout=30
    )


def test_prod_mongo_entrypoint_writes_the_keyfile_for_mongod_only(tmp_path: Path) -> None:
    key = PROD_SECRETS["MONGO_REPLICA_KEY"]
    result = _run_mongo_entrypoint(tmp_path, key)
    assert result.returncode == 0, result.stderr
    trace = (tmp_path / "trace").read_text().splitlines()
    keyfile = tmp_path / "replica.key"
    assert keyfile.read_text() == key + "\n"
    assert f"chown mongodb:mongodb {keyfile}" in trace
    assert f"exec mongod --replSet rs0 --bind_ip_all --keyFile {keyfile}" in trace
    assert "mode 400" in trace
    assert "key-in-env none" in trace  # mongod does not inherit the key


@pytest.mark.parametrize("key", ["", "abc", "k" * 1025], ids=["empty", "short", "long"])
def test_prod_mongo_entrypoint_refuses_a_bad_key(tmp_path: Path, key: str) -> None:
    result = _run_mongo_entrypoint(tmp_path, key)
    assert result.returncode != 0
    assert "MONGO_REPLICA_KEY must be 6 to 1024" in result.stderr
    assert not (tmp_path / "trace").exists()  # mongod never started
