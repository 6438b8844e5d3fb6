"""CPU per action of reading its change events the way the change reader does (docs/performance.md,
"The cost of one action").

Runs the same actions as benchmarks/action_cost.py (a collaboration of 100 members, 150 actions
round robin) with the change reader's stream open (`Store.watch_changes`: one database stream,
`$match` on the watched collections), then reads every event; µs of process CPU per action for
the reads, median of three runs. `PYTHONPATH=<other checkout>` measures the other code.
"""

from __future__ import annotations

import asyncio
import logging
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import action_cost  # the benchmark next to this one


async def measure(actions: int = 150, runs: int = 3) -> None:
    runtime = await action_cost.open_runtime(100)
    spent = []
    try:
        for _ in range(runs):
            cid, users = await action_cost.setup(runtime, 100, 50)
            async with runtime.store.watch_changes(None, 0) as stream:
                await action_cost.run_actions(runtime, cid, users, actions, 30)
                started, changes = time.process_time(), 0
                while await stream.try_next() is not None:
                    changes += 1
                spent.append((time.process_time() - started) / actions * 1e6)
    finally:
        await runtime.close()
    runs_us = [round(x, 1) for x in spent]
    print(f"change stream read: {statistics.median(spent):.1f} µs CPU per action (runs {runs_us}; {changes} changes)")


if __name__ == "__main__":
    logging.disable(logging.WARNING)
    asyncio.run(measure())
