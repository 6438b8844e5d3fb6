"""CPU per `POST /api/actions/updateDetails` request, in-process, outside the engine (docs/performance.md,
"The cost of one action").

The API app (`create_app`) is called as uvicorn calls it (one ASGI http scope per request, the body
in one message; no socket, no HTTP parsing) on the embedded store, by the owner of a collaboration of
`--members` members, the action `fanout.py --compare` publishes with. Prints µs of process CPU per
request: the whole request, the engine's `run` within it, and the rest (middleware, routing, token,
rate limit, body, answer, metrics, access log), median of `--repeat` runs. `PYTHONPATH=<other
checkout>` measures the other code. `--stub-engine`: `run` answers every request with the outcome
of the first, so the rest is measured without the engine's work in between (whose cache misses
make the rest dearer in the default mode).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import action_cost  # the benchmark next to this one: its runtime and collaboration


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    from backend.api.app import create_app
    from backend.api.ratelimit import Limits
    from backend.settings import test_settings

    runtime = await action_cost.open_runtime(args.members)
    runtime.limits = Limits(test_settings(action_rate_limit=100_000_000))  # as fanout.py's server
    app = create_app(runtime.settings, runtime=runtime)
    engine_cpu = [0.0]
    run = runtime.engine.run

    first: list[Any] = []

    async def timed_run(*a: Any, **k: Any) -> Any:
        started = time.process_time()
        try:
            if not args.stub_engine:
                return await run(*a, **k)
            if not first:
                first.append(await run(*a, **k))
            return first[0]
        finally:
            engine_cpu[0] += time.process_time() - started

    runtime.engine.run = timed_run  # type: ignore[method-assign]
    runs = []
    try:
        for _ in range(args.repeat):
            cid, users = await action_cost.setup(runtime, args.members, 10)
            token = users[0][1]  # the owner's
            statuses: list[int] = []

            async def post(i: int, cid: str = cid, token: str = token, statuses: list[int] = statuses) -> None:
                body = json.dumps({"collaborationId": cid, "payload": {"description": f"Plans {i}"}}).encode()
                scope = {
                    "type": "http",
                    "asgi": {"version": "3.0"},
                    "http_version": "1.1",
                    "method": "POST",
                    "scheme": "http",
                    "path": "/api/actions/updateDetails",
                    "raw_path": b"/api/actions/updateDetails",
                    "query_string": b"",
                    "root_path": "",
                    "headers": [
                        (b"host", b"127.0.0.1:8000"),
                        (b"authorization", f"Bearer {token}".encode()),
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                    ],
                    "client": ("127.0.0.1", 40000),
                    "server": ("127.0.0.1", 8000),
                }
                sent = False

                async def receive() -> dict[str, Any]:
                    nonlocal sent
                    if sent:
                        await asyncio.sleep(3600)
                    sent = True
                    return {"type": "http.request", "body": body, "more_body": False}

                async def send(message: dict[str, Any]) -> None:
                    if message["type"] == "http.response.start":
                        statuses.append(message["status"])

                await app(scope, receive, send)

            for i in range(args.warmup):
                await post(i)
            engine_cpu[0] = 0.0
            started = time.process_time()
            for i in range(args.requests):
                await post(args.warmup + i)
            total = (time.process_time() - started) / args.requests * 1e6
            engine = engine_cpu[0] / args.requests * 1e6
            if set(statuses) != {200}:
                raise RuntimeError(f"unexpected statuses: {sorted(set(statuses))}")
            runs.append({"request": round(total, 1), "engine": round(engine, 1), "outside": round(total - engine, 1)})
    finally:
        await runtime.close()
    return {
        "members": args.members,
        "engine": "stub (the first outcome, every time)" if args.stub_engine else "real",
        "unit": "CPU µs per request (time.process_time)",
        "median": {key: statistics.median(run[key] for run in runs) for key in runs[0]},
        "runs": runs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=100)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--stub-engine", action="store_true", help="the engine answers with its first outcome")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    print(json.dumps(asyncio.run(measure(args)), indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
