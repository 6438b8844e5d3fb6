"""Checks of the benchmark harness itself (run by hand, not by the suite: testpaths is tests/).

    .venv/bin/python -m pytest benchmarks/test_fanout.py -q

Small, bounded runs on 127.0.0.1 (a few seconds each); they need the bench extra.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.profile_summary import summarize

ROOT = Path(__file__).resolve().parent.parent
pytest.importorskip("picows")
pytest.importorskip("uvloop")


def fanout(*args: str) -> dict:
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "fanout.py"), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


def test_compare_drives_both_servers_with_the_same_load_and_gives_ratios():
    out = fanout("--compare", "--layout", "20:10", "--layout", "20:20:10", "-r", "20", "-d", "1", "--drain", "5")
    first, second = out["layouts"]
    for kind in ("tandem", "bare"):
        run = first[kind]
        assert run["server"] == kind
        assert (run["subscribers"], run["collaborations"]) == (20, 2)
        assert run["deliveries"] == 20 * 10  # 20 actions, 10 subscribers each
        assert (run["lost"], run["out_of_order"], run["closed_by_server"]) == (0, 0, 0)
        assert second[kind]["deliveries"] == 10 * 20  # the layout's own rate: 10 actions, 20 subscribers
    # the bare broadcaster's frames are padded to the size of Tandem's
    assert abs(first["bare"]["frame_bytes"] - first["tandem"]["frame_bytes"]) <= 8
    ratio = first["ratio_tandem_over_bare"]
    assert set(ratio) == {"kb_per_connection", "deliveries_per_server_cpu_s", "server_cpu", "p50", "p99"}
    assert ratio["p99"] == round(first["tandem"]["latency_ms"]["p99"] / first["bare"]["latency_ms"]["p99"], 3)


def test_sweep_opens_more_subscribers_per_step_and_reports_the_largest_n_under_the_bound():
    out = fanout("--sweep-n", "10,30", "-s", "10", "-r", "10", "-d", "1", "--drain", "5", "--max-p99", "100000")
    assert [s["subscribers"] for s in out["sweep"]] == [10, 30]
    assert [s["deliveries"] for s in out["sweep"]] == [10 * 10, 10 * 10]
    assert out["largest_n_sustained"] == 30
    tight = fanout("--sweep-n", "10,20", "-s", "10", "-r", "10", "-d", "1", "--drain", "5", "--max-p99", "0.000001")
    assert tight["largest_n_sustained"] is None


def test_find_max_goes_down_while_no_step_is_sustained():
    out = fanout(
        "-n",
        "10",
        "-s",
        "10",
        "-r",
        "40",
        "-d",
        "1",
        "--find-max",
        "--step-duration",
        "1",
        "--ramp-steps",
        "2",
        "--drain",
        "5",
        "--max-p99",
        "0.000001",
    )
    assert out["max_sustained"] is None and out["ceiling"] == "found"
    assert [s["rate_target"] for s in out["steps"]] == [40, 20, 10]
    assert not any(s["sustained"] for s in out["steps"])
    assert out["at_rate"]["deliveries"] == 40 * 10


def test_find_max_goes_up_while_steps_are_sustained_and_compare_takes_the_medians_of_rounds():
    out = fanout(
        "--compare",
        "--rounds",
        "2",
        "-n",
        "10",
        "-s",
        "10",
        "-r",
        "10",
        "-d",
        "1",
        "--find-max",
        "--step-duration",
        "1",
        "--ramp-steps",
        "1",
        "--drain",
        "5",
        "--max-p99",
        "100000",
    )
    layout = out["layouts"][0]
    assert [r["order"] for r in layout["rounds"]] == [["tandem", "bare"], ["bare", "tandem"]]
    assert [r["tandem"]["server"] for r in layout["rounds"]] == ["tandem", "tandem"]
    for run in layout["rounds"]:
        for kind in ("tandem", "bare"):
            steps = run[kind]["steps"]
            assert len(steps) == 2 and all(s["sustained"] for s in steps)
            assert steps[1]["rate_target"] >= 12.5  # up: at least x1.25
            assert run[kind]["max_sustained"]["action_rate"] == steps[1]["action_rate"]
    ratios = [r["ratio_tandem_over_bare"]["max_sustained_deliveries_per_s"] for r in layout["rounds"]]
    assert layout["ratio_tandem_over_bare"]["max_sustained_deliveries_per_s"] == round(sum(ratios) / 2, 3)


def test_profile_summary_leaves_idle_out_and_counts_each_sample_once(tmp_path):
    raw = tmp_path / "p.raw"
    raw.write_text(
        "run (asyncio/runners.py:1);publish (backend/realtime/hub.py:10);write (asyncio/selector_events.py:5) 30\n"
        "run (asyncio/runners.py:1);action (backend/api/routes/actions.py:3);apply (backend/engine.py:9) 10\n"
        "run (asyncio/runners.py:1);action (backend/api/routes/actions.py:3);get (backend/store/embedded.py:2) 10\n"
        "run (asyncio/runners.py:1);EpollSelector.select (selectors.py:4) 50\n"
    )
    summary = summarize(str(raw))
    assert (summary["samples_busy"], summary["samples_idle"]) == (50, 50)
    parts = summary["parts_percent"]
    assert parts["fan-out: Hub.publish (frames to every subscriber's socket)"] == 60.0
    assert parts["action: the engine (domain, rules, copies, diff)"] == 20.0
    assert parts["action: the store (reads, writes, change events)"] == 20.0
    assert sum(parts.values()) == 100.0


async def test_the_load_client_reconnects_when_uvicorn_closed_an_idle_keep_alive_connection():
    """uvicorn closes keep-alive connections idle for 5 s: between sweep steps the client's are."""
    import asyncio
    import os

    from benchmarks.fanout import free_port
    from benchmarks.fanout_client import Http

    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-c", "from benchmarks.bare_broadcaster import main; main()", "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "AUTH_MODE": "dev", "LOG_LEVEL": "WARNING"},
    )
    try:
        assert "ready at" in server.stdout.readline()
        http = Http("127.0.0.1", port)
        assert (await http.post("/api/collaborations", {}))[0] == 201
        await asyncio.sleep(6)  # past uvicorn's timeout_keep_alive
        assert (await http.post("/api/collaborations", {}))[0] == 201
    finally:
        server.terminate()
        server.wait(timeout=15)


def test_the_micro_benchmark_delivers_every_frame_on_every_path_and_reports_cpu_per_delivery():
    modes = ["hub", "starlette", "write_now", "write", "send"]
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "fanout_micro.py"), "-k", "5", "-e", "3", "--rate", "50"]
        + [f"--mode={m}" for m in modes],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads(done.stdout)["results"]
    assert [r["mode"] for r in results] == modes
    for r in results:
        assert r["deliveries"] == r["received"] == 15, r  # every subscriber got every frame
        assert r["cpu_us_per_delivery_publishing"] > 0 and r["frame_bytes"] > 400
