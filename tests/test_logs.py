"""The JSON log lines (backend/logs.py): one object per line, `ts` in UTC to the millisecond with `Z`,
`level`, `logger`, `msg`, the request id when there is one, every `extra` field, the trace."""

from __future__ import annotations

import json
import logging
import random
import subprocess
import sys
from datetime import date, datetime, timezone

import pytest

from backend.logs import JSONFormatter, request_id


def record(created: float, **extra: object) -> logging.LogRecord:
    rec = logging.makeLogRecord({"name": "tandem.http", "levelno": 20, "levelname": "INFO", "msg": "request %s"})
    rec.args = ("x",)
    rec.__dict__.update(extra)
    rec.created = created
    return rec


def reference_ts(created: float) -> str:
    return datetime.fromtimestamp(created, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@pytest.mark.parametrize("seed", range(3))
def test_ts_is_datetimes_own_rounding_to_the_millisecond(seed):
    rng = random.Random(seed)
    formatter = JSONFormatter()
    for _ in range(20_000):
        whole = rng.randrange(0, 4_000_000_000)
        created = whole + rng.choice([rng.random(), 0.9995, 0.9999995, 0.99999949, 0.0000005, 0.0000004, 0.0005, 0.0])
        assert json.loads(formatter.format(record(created)))["ts"] == reference_ts(created), created


def test_a_line_has_the_fields_the_request_id_the_extras_and_the_trace():
    formatter = JSONFormatter()
    token = request_id.set("r-9")
    try:
        try:
            raise ValueError("boom")
        except ValueError:
            rec = record(1764687532.25, method="POST", status=200, ms=0.5, when=date(2026, 1, 2), text="é\n")
            rec.exc_info = sys.exc_info()
        line = formatter.format(rec)
    finally:
        request_id.reset(token)
    assert "\n" not in line and "é" not in line  # ASCII, one line, as json.dumps writes it
    entry = json.loads(line)
    exc = entry.pop("exc")
    assert "ValueError: boom" in exc and exc.startswith("Traceback")
    assert entry == {
        "ts": "2025-12-02T14:58:52.250Z",
        "level": "info",
        "logger": "tandem.http",
        "msg": "request x",
        "requestId": "r-9",
        "method": "POST",
        "status": 200,
        "ms": 0.5,
        "when": "2026-01-02",
        "text": "é\n",
    }
    assert list(entry)[:5] == ["ts", "level", "logger", "msg", "requestId"]
    assert "requestId" not in json.loads(formatter.format(record(1.0)))


def test_configure_writes_json_lines_to_stderr_without_looking_up_the_caller():
    code = (
        "import logging; from backend.logs import configure; configure('INFO');"
        "logging.getLogger('tandem.http').info('request', extra={'status': 200});"
        "logging.getLogger('tandem.http').debug('dropped');"
        "seen = [];"
        "h = logging.Handler(); h.emit = seen.append; logging.getLogger('t').addHandler(h);"
        "logging.getLogger('t').warning('w'); print(seen[0].funcName, seen[0].lineno)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    line, _ = done.stderr.splitlines()  # the request, and the warning of the caller check
    entry = json.loads(line)
    assert (entry["level"], entry["logger"], entry["msg"], entry["status"]) == ("info", "tandem.http", "request", 200)
    assert "lineno" not in entry and "funcName" not in entry
    assert done.stdout.split() == ["(unknown", "function)", "0"]
