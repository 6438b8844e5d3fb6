"""The `tandem` command as a user runs it: a real process, real HTTP; the worker's commands in-process."""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys
import time
from datetime import timedelta

import httpx
import pytest

from backend.ai.offline import OfflineProvider
from backend.ai.provider import AIUnavailable
from backend.clock import utcnow
from backend.engine import ActionEngine
from backend.runtime import Runtime
from backend.settings import test_settings
from tests.support import EDITOR, OWNER, team, user
from worker import commands

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"MONGODB_URI", "AUTH_MODE"}}
    env.update(extra)
    return env


@pytest.fixture
def dev_server():
    proc = subprocess.Popen(
        [sys.executable, "-m", "backend.cli", "dev", "--host", "127.0.0.1", "--port", "0"],
        cwd=ROOT,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
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
    result = subprocess.run(
        [sys.executable, "-m", "backend.cli", "api", "--port", "0"],
        cwd=ROOT,
        env=_env(AUTH_MODE="supabase", SUPABASE_JWT_SECRET="changeme", MAX_BODY_BYTES="big"),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "Tandem cannot start" in result.stderr
    assert "MAX_BODY_BYTES" in result.stderr and "SUPABASE_JWT_SECRET" in result.stderr


def _api_stderr(**env: str) -> str:
    """Start `tandem api` with `env`, wait until it serves, stop it and return what it logged."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "backend.cli", "api", "--host", "127.0.0.1", "--port", "0"],
        cwd=ROOT,
        env=_env(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line or "is ready at" in line:
                break
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
    return err


def test_tandem_api_with_dev_auth_says_so_loudly_and_supabase_auth_does_not():
    assert "DEV AUTH" in _api_stderr(AUTH_MODE="dev")
    quiet = _api_stderr(AUTH_MODE="supabase", SUPABASE_JWT_SECRET="s" * 40, SUPABASE_URL="https://x.supabase.co")
    assert "Uvicorn running" in quiet and "DEV AUTH" not in quiet


def test_main_can_run_twice_in_one_process(capsys):
    """The worker's commands are registered once, however often `main` is called (was: conflicting subparser)."""
    from backend.cli import main

    for _ in range(3):
        with pytest.raises(SystemExit) as exit_:
            main(["worker", "--help"])
        assert exit_.value.code == 0
        assert "--grace" in capsys.readouterr().out


# -- tandem checkin --now, on the embedded store (a separate process would see an empty store) ----


class Watched(OfflineProvider):
    """The offline rules; notes what `out` held when each batch was asked, and fails for `failing`."""

    def __init__(self, out, failing=()):
        super().__init__()
        self.out, self.failing, self.seen = out, set(failing), []

    async def complete(self, task):
        self.seen.append(self.out.getvalue())
        if {c["collaborationId"] for c in task.context} & self.failing:
            raise AIUnavailable("the model is down")
        return await super().complete(task)


@pytest.fixture
async def one_per_batch():
    rt = await Runtime.open(test_settings(checkin_concurrency=1))
    yield rt
    await rt.close()


async def waiting_team(rt, title):
    """A collaboration with an activity proposed four days ago: the offline rules post a reminder."""
    cid = await team(rt)
    await rt.engine.run("updateDetails", user(OWNER), cid, {"title": title})
    past = ActionEngine(rt.store, rt.settings, rt.directory, clock=lambda: utcnow() - timedelta(days=4))
    await past.run("proposeActivity", user(EDITOR), cid, {"title": f"Plan {title}"})
    return cid


async def test_checkin_now_prints_a_line_per_batch_as_it_goes_then_the_summary(one_per_batch):
    rt = one_per_batch
    ids = [await waiting_team(rt, name) for name in ("A", "B", "C")]
    out, err = io.StringIO(), io.StringIO()
    provider = rt.ai_provider = Watched(out, failing=[ids[1]])
    assert await commands.checkin_command(rt, True, None, out, err) == 1  # a batch failed
    lines = out.getvalue().splitlines()
    assert lines[:3] == [
        f"collaboration 1/3 {ids[0]}: done, 1 actions run, 0 approvals, 0 invalid",
        f"collaboration 2/3 {ids[1]}: failed, 0 actions run, 0 approvals, 0 invalid — the model is down",
        f"collaboration 3/3 {ids[2]}: done, 1 actions run, 0 approvals, 0 invalid",
    ]
    assert (
        re.fullmatch(
            r"check-in run_\w+ failed: 3 collaborations, 2 actions run, 0 approvals made, "
            r"0 invalid proposals, 0 tokens",
            lines[3],
        )
        and len(lines) == 4
    )
    # each line was printed when its batch finished, before the next batch was asked
    assert [seen.count("\n") for seen in provider.seen] == [0, 1, 2]
    assert err.getvalue() == ""


async def test_checkin_now_for_named_collaborations_says_which_ones_it_skipped(one_per_batch):
    rt = one_per_batch
    good = await waiting_team(rt, "Good")
    gone = await team(rt)
    await rt.engine.run("archiveCollaboration", user(OWNER), gone, {})
    out, err = io.StringIO(), io.StringIO()
    rt.ai_provider = Watched(out)
    assert await commands.checkin_command(rt, True, [good, "col_nope", gone], out, err) == 0
    assert err.getvalue().splitlines() == [
        "skipped col_nope: no such collaboration",
        f"skipped {gone}: it is archived, not active",
    ]
    lines = out.getvalue().splitlines()
    assert lines[0] == f"collaboration 1/1 {good}: done, 1 actions run, 0 approvals, 0 invalid"
    assert " done: 1 collaborations, 1 actions run" in lines[1] and len(lines) == 2
    messages = [m for m in await rt.store.messages.page(good) if m["author"]["type"] == "ai"]
    assert len(messages) == 1

    out, err = io.StringIO(), io.StringIO()
    assert await commands.checkin_command(rt, True, ["col_nope", gone], out, err) == 1
    assert err.getvalue().splitlines() == [
        "skipped col_nope: no such collaboration",
        f"skipped {gone}: it is archived, not active",
        "check-in not run: none of the collaborations asked for is active",
    ]
    assert out.getvalue() == "" and len(await rt.store.checkin_runs.recent()) == 1  # no second run


async def test_checkin_without_now_refuses_collaborations_instead_of_enqueueing_every_one(one_per_batch):
    out, err = io.StringIO(), io.StringIO()
    assert await commands.checkin_command(one_per_batch, False, ["col_x"], out, err) == 1
    assert "--collaboration needs --now" in err.getvalue() and await one_per_batch.store.jobs.list() == []
