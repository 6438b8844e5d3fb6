"""The Compose files render (`docker-compose config`) and say what a deployment needs.

Needs the `docker-compose` binary (Debian's package; `make test` installs it),
not a Docker daemon: `config` only parses, validates and interpolates.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
DEV = ROOT / "docker-compose.yml"
PROD = ROOT / "docker-compose.prod.yml"
COMPOSE = shutil.which("docker-compose")

pytestmark = pytest.mark.skipif(COMPOSE is None, reason="docker-compose binary not installed (apt-get install -y docker-compose)")

PROD_SECRETS = {
    "SUPABASE_URL": "https://example-project.supabase.co",
    "SUPABASE_ANON_KEY": "anon-key-for-tests",
}
# Variables a developer may have exported that would hide a missing secret.
CLEARED = {"SUPABASE_URL", "SUPABASE_ANON_KEY", "SUPABASE_JWT_SECRET", "SUPABASE_JWKS_URL", "MONGODB_URI", "GROQ_API_KEY",
           "COMPOSE_FILE", "COMPOSE_PROFILES", "COMPOSE_PROJECT_NAME"}


def compose(file: Path, *args: str, env: dict[str, str] | None = None, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in CLEARED}
    base.update(env or {})
    empty_env_file = tmp_path / "empty.env"  # ignore a local .env with real secrets
    empty_env_file.write_text("")
    return subprocess.run(
        [COMPOSE, "--env-file", str(empty_env_file), "-f", str(file), "--project-directory", str(ROOT), "config", *args],
        cwd=ROOT, env=base, capture_output=True, text=True, timeout=60,
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
    assert "/api/health" in " ".join(services["api"]["healthcheck"]["test"])
    assert services["api"]["command"] == ["tandem", "api", "--host", "0.0.0.0", "--port", "8000"]
    assert services["worker"]["command"] == ["tandem", "worker"]
    for name in ("api", "worker"):
        assert services[name]["depends_on"]["mongo"]["condition"] == "service_healthy"
        env = services[name]["environment"]
        assert env["MONGODB_URI"] == "mongodb://mongo:27017/?replicaSet=rs0"
        assert env["AUTH_MODE"] == "supabase"
        assert env["SUPABASE_URL"] == PROD_SECRETS["SUPABASE_URL"]
        assert env["GROQ_API_KEY"] == ""  # optional
    assert services["frontend"]["depends_on"]["api"]["condition"] == "service_healthy"
    assert "ports" not in services["mongo"]


def test_prod_takes_an_external_mongodb_uri(tmp_path: Path) -> None:
    uri = "mongodb+srv://user:pw@cluster.example.net/?retryWrites=true"
    services = rendered(PROD, tmp_path, env={**PROD_SECRETS, "MONGODB_URI": uri})["services"]
    assert services["api"]["environment"]["MONGODB_URI"] == uri
