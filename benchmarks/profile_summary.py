"""Where a server's time goes, from py-spy's raw output (`py-spy record -f raw`: one line per
distinct stack, `frame;frame;...;frame COUNT`, root first). fanout.py --profile FILE (not .svg)
adds this summary to its JSON; by hand:

    .venv/bin/python benchmarks/profile_summary.py /tmp/tandem.raw

Each sample goes to the first part below whose marker is anywhere in its stack, so the
fan-out counts everything under `Hub.publish` (the sends included), an action everything
under the actions route, and so on; `self` lists the functions the samples were in. Samples
waiting in the event loop's select() are idle time and left out of the shares.
"""

from __future__ import annotations

import json
import re
import sys
from collections import Counter

# (part, markers): a frame is "function (path:line)"; a marker matches the function and/or the path
PARTS: list[tuple[str, list[str]]] = [
    (
        "fan-out: Hub.publish and Hub.release (frames to every subscriber's socket)",
        ["publish (backend/realtime/hub.py", "release (backend/realtime/hub.py"],
    ),
    (
        "fan-out: the bare broadcaster's send_text loop",
        ["publish (bare_broadcaster.py", "publish (benchmarks/bare_broadcaster.py"],
    ),
    ("action: token verification", ["backend/auth/", "backend/api/auth.py"]),
    ("action: the store (reads, writes, change events)", ["backend/store/", "mongomock"]),
    ("action: the engine (domain, rules, copies, diff)", ["backend/engine.py", "backend/domain/", "backend/rules/"]),
    (
        "action: the rest of the request (HTTP, Starlette, JSON)",
        ["backend/api/", "h11_impl", "httptools_impl", "starlette/"],
    ),
    ("change reader (outside publish)", ["backend/realtime/changes.py", "backend/realtime/"]),
    ("WebSocket protocol outside publish (uvicorn, websockets)", ["websockets", "uvicorn/protocols/websockets"]),
    ("garbage collection", ["<gc>", "(garbage collection)"]),
    ("event loop and the rest", [""]),
]
# inside the fan-out: where the samples were (the leaf frame), first match wins
FAN_OUT = [part for part, _ in PARTS[:2]]
INSIDE_FAN_OUT: list[tuple[str, list[str]]] = [
    ("the socket write (asyncio transport.write, send())", ["asyncio/selector_events.py", "uvloop/"]),
    ("frame building (websockets)", ["websockets/"]),
    ("uvicorn's WebSocket send", ["uvicorn/"]),
    ("Starlette's send wrappers", ["starlette/"]),
    ("the application's own code (hub, outbox, loop)", ["backend/", "bare_broadcaster.py"]),
    ("the rest (asyncio, JSON, ...)", [""]),
]
_IDLE = re.compile(r"^(select|poll|epoll_wait|EpollSelector\.select|KqueueSelector\.select) ")
_FRAME = re.compile(r"^(?P<fn>.*?) \((?P<where>[^()]*)\)$")


def short(frame: str) -> str:
    """`function (path:line)` -> `function (file)`, the paths cut to their package."""
    match = _FRAME.match(frame)
    if not match:
        return frame
    where = match.group("where").rsplit(":", 1)[0]
    for cut in ("site-packages/", "/work/", "lib/python3"):
        if cut in where:
            where = where.split(cut, 1)[1]
    where = re.sub(r"^wt-[^/]+/|^main/", "", where)
    return f"{match.group('fn')} ({where})"


def summarize(path: str, top: int = 12) -> dict:
    parts: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    inside: Counter[str] = Counter()
    total = idle = 0
    with open(path) as f:
        for line in f:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            if not stack or not count.isdigit():
                continue
            n = int(count)
            frames = stack.split(";")
            if _IDLE.search(frames[-1]):  # the loop waiting for something to do: not busy time
                idle += n
                continue
            total += n
            leaves[short(frames[-1])] += n
            for part, markers in PARTS:
                if any(m in stack for m in markers):
                    parts[part] += n
                    break
            if part in FAN_OUT:
                inside[next(name for name, marks in INSIDE_FAN_OUT if any(m in frames[-1] for m in marks))] += n
    pct = lambda n: round(100 * n / total, 1) if total else 0.0  # noqa: E731 - a one-line helper local to this report
    return {
        "samples_busy": total,
        "samples_idle": idle,  # shares below are of the busy samples
        "parts_percent": {part: pct(parts[part]) for part, _ in PARTS if parts[part]},
        "fan_out_percent_by_where": {
            name: round(100 * inside[name] / sum(inside.values()), 1) for name, _ in INSIDE_FAN_OUT if inside[name]
        },
        "self_percent_top": {name: pct(n) for name, n in leaves.most_common(top)},
    }


if __name__ == "__main__":
    print(json.dumps(summarize(sys.argv[1]), indent=2))
