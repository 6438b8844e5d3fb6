"""Loaded into the benchmark's server by `fanout.py --server-gc-stats FILE`: what Python's GC does there.

SIGUSR1 starts recording every collection (generation, pause); SIGUSR2 stops and
writes a summary to FILE as JSON. fanout.py sends them when the client starts
and stops driving actions, so the numbers cover the measured run only. Never
used outside benchmarks.
"""

from __future__ import annotations

import gc
import json
import signal
import time
from typing import Any


def install(path: str) -> None:
    pauses: dict[int, list[float]] = {0: [], 1: [], 2: []}
    state: dict[str, Any] = {}

    def callback(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            state["t"] = time.perf_counter()
        elif "t" in state:
            pauses[info["generation"]].append(time.perf_counter() - state.pop("t"))

    def start(*_: Any) -> None:
        for times in pauses.values():
            times.clear()
        state["since"] = time.perf_counter()
        gc.callbacks.append(callback)

    def stop(*_: Any) -> None:
        if callback in gc.callbacks:
            gc.callbacks.remove(callback)
        summary: dict[str, Any] = {
            "seconds": round(time.perf_counter() - state.get("since", time.perf_counter()), 1),
            "threshold": gc.get_threshold(),
            "frozen_objects": gc.get_freeze_count(),
            "tracked_objects": sum(gc.get_count()) + len(gc.get_objects(2)) + len(gc.get_objects(1)),
        }
        for generation, times in pauses.items():
            times = sorted(times)
            summary[f"gen{generation}"] = {
                "collections": len(times),
                "total_ms": round(1000 * sum(times), 1),
                "p50_ms": round(1000 * times[len(times) // 2], 2) if times else None,
                "max_ms": round(1000 * times[-1], 2) if times else None,
            }
        with open(path, "w") as out:
            json.dump(summary, out)

    signal.signal(signal.SIGUSR1, start)
    signal.signal(signal.SIGUSR2, stop)
