"""Structured JSON logs, one object per line, with the request id when there is one."""

from __future__ import annotations

import contextvars
import json
import logging
import math
import sys
from datetime import datetime, timezone

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
_NOT_EXTRA = frozenset(_STANDARD | {"color_message"})
_ENCODER = json.JSONEncoder(default=str)  # json.dumps(entry, default=str), without a new encoder a line


class JSONFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__()
        self._second: float | None = None
        self._second_text = ""

    def _ts(self, created: float) -> str:
        """`datetime.fromtimestamp(created, utc).isoformat(timespec="milliseconds")` with `Z`: the
        same rounding to microseconds (half to even, as datetime's), the date and time of day made
        once a second."""
        fraction, second = math.modf(created)
        micro = round(fraction * 1e6)
        if micro >= 1_000_000:
            micro -= 1_000_000
            second += 1.0
        elif micro < 0:
            micro += 1_000_000
            second -= 1.0
        if second != self._second:
            self._second_text = datetime.fromtimestamp(second, timezone.utc).isoformat()[:19]
            self._second = second
        return f"{self._second_text}.{micro // 1000:03d}Z"

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": self._ts(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        rid = request_id.get()
        if rid:
            entry["requestId"] = rid
        for key, value in record.__dict__.items():
            if key not in _NOT_EXTRA and key[:1] != "_":
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return _ENCODER.encode(entry)


_LOGGED = "_tandem_logged"  # set on an exception whose trace Tandem has logged (under its request id)


def mark_logged(exc: BaseException) -> None:
    """`exc`'s trace is logged: uvicorn's own "Exception in ASGI application" for it (or for an
    exception raised from it) is left out, so each trace is in the log once."""
    try:
        setattr(exc, _LOGGED, True)
    except (AttributeError, TypeError):  # an exception type without a __dict__: logged twice, as before
        pass


class _LoggedOnce(logging.Filter):
    """On `uvicorn.error`: drops a record whose exception, or the one it was raised from, is marked."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        while exc is not None:
            if getattr(exc, _LOGGED, False):
                return False
            exc = exc.__cause__
        return True


def configure(level: str = "INFO") -> None:
    # No caller lookup (a walk up the stack for every record): the lines have no file, line or
    # function (the logging HOWTO, "Optimization"); the access log writes one a request. It is
    # process-wide: every logger's records get "(unknown file)", 0, "(unknown function)", and
    # `stack_info=True` is ignored. Nothing of Tandem's reads them (JSONFormatter writes neither;
    # tests/test_logs.py checks it); traces (`exc_info`) keep their lines (docs/deployment.md, "Health and monitoring").
    logging._srcfile = None
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JSONFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    errors = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _LoggedOnce) for f in errors.filters):
        errors.addFilter(_LoggedOnce())
    logging.getLogger("uvicorn.access").disabled = True
    # APScheduler narrates every job it adds and runs at INFO; tandem.scheduler says what matters.
    logging.getLogger("apscheduler").setLevel(max(logging.WARNING, root.level))
