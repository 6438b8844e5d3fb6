"""The `tandem` command as a user runs it: a real process, real HTTP."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import httpx
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"MONGODB_URI", "AUTH_MODE"}}
    env.update(extra)
    return env


@pytest.fixture
def dev_server():
    proc = subprocess.Popen([sys.executable, "-m", "backend.cli", "dev", "--host", "127.0.0.1", "--port", "0"],
                            cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    lines = []
    url = None
    while time.monotonic() < deadline and url is None:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        match = re.search(r"Tandem is ready at (http://\S+)", line)
        if match:
            url = match.group(1)
    if url is None:
        proc.kill()
        pytest.fail("tandem dev did not print its URL:\n" + "".join(lines) + proc.stderr.read())
    yield url, proc
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_tandem_dev_serves_demo_data_with_dev_login(dev_server):
    url, proc = dev_server
    login = httpx.post(f"{url}/api/auth/dev-login", json={"email": "alice@example.com"}).json()
    headers = {"authorization": f"Bearer {login['access_token']}"}
    mine = httpx.get(f"{url}/api/collaborations", headers=headers).json()["collaborations"]
    assert [c["title"] for c in mine] == ["Weekend in the mountains"]
    collab = mine[0]
    assert {m["email"] for m in collab["members"]} == {"alice@example.com", "bob@example.com"}
    assert {a["status"] for a in collab["activities"]} == {"proposed", "scheduled"}
    assert httpx.get(f"{url}/api/ready").status_code == 200


def test_tandem_dev_says_the_embedded_store_keeps_nothing(dev_server):
    url, proc = dev_server
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=15)
    assert "memory" in err.lower()


def test_bad_settings_stop_start_up_with_every_problem_listed():
    result = subprocess.run([sys.executable, "-m", "backend.cli", "api", "--port", "0"], cwd=ROOT,
                            env=_env(AUTH_MODE="supabase", SUPABASE_JWT_SECRET="changeme", MAX_BODY_BYTES="big"),
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "Tandem cannot start" in result.stderr
    assert "MAX_BODY_BYTES" in result.stderr and "SUPABASE_JWT_SECRET" in result.stderr


def test_main_can_run_twice_in_one_process(capsys):
    """The worker's commands are registered once, however often `main` is called (was: conflicting subparser)."""
    from backend.cli import main

    for _ in range(3):
        with pytest.raises(SystemExit) as exit_:
            main(["worker", "--help"])
        assert exit_.value.code == 0
        assert "--grace" in capsys.readouterr().out
