"""CPU per action, per step, in-process on the embedded store (docs/performance.md, "The cost of one action").

Builds a collaboration of `--members` members and `--activities` activities with the
engine itself, then runs `--actions` actions round robin (updateDetails,
proposeActivity, sendMessage), each as the API runs it: the token is verified, then
`ActionEngine.run`. Every step is timed with `time.process_time()` (process CPU, not
wall time: the machine is shared), exclusive of the steps it calls:

- token verify: `TokenVerifier.verify` (one token per user, as a browser reuses its own);
- decode: `payloads.decode`;
- read: the store's `get` (or `get_shared`, the engine's read once it has one) and `from_doc`
  (`read_collaboration` once the engine has it; a member it converts later counts where it is read);
- engine prepare: `effects.apply` (what the action does to the collaboration);
- build update: making the new document and its `$set`/`$unset` (`to_doc` + `update_for` before;
  `build_update` after);
- size check: the store's document-size check;
- store write: the store's `apply` (collaborations) and `messages.insert`, less the size check;
- other: the rest of `ActionEngine.run` (role, version and rule checks, the audit entry).

It runs on both sides of the change (names that do not exist are skipped), so
`PYTHONPATH=<other checkout> python benchmarks/action_cost.py` measures the other
code. Prints one JSON object: µs of CPU per action, per step, for each of `--repeat` runs
and their median.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import statistics
import time
from typing import Any, Callable

STEPS = ("token verify", "decode", "read", "engine prepare", "build update", "size check", "store write")


class Clock:
    """Exclusive process-CPU time per step: a step's time excludes the timed steps it calls."""

    def __init__(self) -> None:
        self.totals: dict[str, float] = {}
        self._stack: list[list[Any]] = []

    def reset(self) -> None:
        self.totals = {}

    def enter(self, name: str) -> None:
        self._stack.append([name, time.process_time(), 0.0])

    def leave(self) -> None:
        name, start, inner = self._stack.pop()
        spent = time.process_time() - start
        self.totals[name] = self.totals.get(name, 0.0) + spent - inner
        if self._stack:
            self._stack[-1][2] += spent


def _timed(clock: Clock, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    if asyncio.iscoroutinefunction(fn):

        async def timed_async(*args: Any, **kwargs: Any) -> Any:
            clock.enter(name)
            try:
                return await fn(*args, **kwargs)
            finally:
                clock.leave()

        return timed_async

    def timed(*args: Any, **kwargs: Any) -> Any:
        clock.enter(name)
        try:
            return fn(*args, **kwargs)
        finally:
            clock.leave()

    return timed


def _wrap(clock: Clock, owner: Any, attribute: str, step: str) -> None:
    fn = getattr(owner, attribute, None)
    if fn is not None:
        setattr(owner, attribute, _timed(clock, step, fn))


def instrument(runtime: Any, clock: Clock) -> None:
    import backend.engine as engine_module
    from backend.domain import effects, payloads

    store = runtime.store
    _wrap(clock, runtime.verifier, "verify", "token verify")
    _wrap(clock, payloads, "decode", "decode")
    _wrap(clock, store.collaborations, "get", "read")
    _wrap(clock, store.collaborations, "get_shared", "read")  # the engine's read, once it has one
    _wrap(clock, engine_module, "from_doc", "read")
    _wrap(clock, engine_module, "read_collaboration", "read")  # from_doc's successor: members as they are read
    _wrap(clock, effects, "apply", "engine prepare")
    for name in ("update_for", "to_doc", "build_update"):  # before: to_doc + update_for; after: build_update
        _wrap(clock, engine_module, name, "build update")
    for name in ("check_size", "size_after"):
        _wrap(clock, store.collaborations, name, "size check")
    _wrap(clock, store.collaborations, "apply", "store write")
    _wrap(clock, store.messages, "insert", "store write")


async def open_runtime(members: int) -> Any:
    from backend.auth.dev_tokens import dev_user_id
    from backend.runtime import Runtime
    from backend.settings import test_settings

    runtime = await Runtime.open(test_settings())
    for email in _emails(members):
        await runtime.directory.signed_in(dev_user_id(email), email)
    return runtime


def _emails(members: int) -> list[str]:
    return [f"member{i}@example.com" for i in range(members)]


async def setup(runtime: Any, members: int, activities: int) -> tuple[str, list[tuple[Any, str]]]:
    """A new collaboration of `members` members and `activities` activities, and ten members' tokens."""
    from backend.auth.dev_tokens import dev_user_id, issue_dev_token
    from backend.domain.models import Actor

    emails = _emails(members)
    owner = Actor.user(dev_user_id(emails[0]))
    created = await runtime.engine.run("createCollaboration", owner, None, {"title": "Bench"}, actor_email=emails[0])
    cid = created.collaborationId
    for email in emails[1:]:
        await runtime.engine.run("addMember", owner, cid, {"email": email, "role": "editor"})
    for i in range(activities):
        await runtime.engine.run("proposeActivity", owner, cid, {"title": f"Activity {i}", "description": "x" * 80})
    users = [(Actor.user(dev_user_id(e)), issue_dev_token(runtime.settings, e)["access_token"]) for e in emails[:10]]
    return cid, users


async def run_actions(runtime: Any, cid: str, users: list[tuple[Any, str]], count: int, start: int) -> None:
    engine, verifier = runtime.engine, runtime.verifier
    for i in range(start, start + count):
        actor, token = users[i % len(users)]
        await verifier.verify(token)
        kind = i % 3
        if kind == 0:
            await engine.run("updateDetails", actor, cid, {"description": f"Plans {i}"})
        elif kind == 1:
            await engine.run("proposeActivity", actor, cid, {"title": f"Proposed {i}", "description": "y" * 80})
        else:
            await engine.run("sendMessage", actor, cid, {"text": f"Message {i}"})


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    runtime = await open_runtime(args.members)
    clock = Clock()
    try:
        instrument(runtime, clock)
        gc.set_threshold(10_000, 10, 100)  # as the server runs (backend/serve.py tune_gc)
        runs = []
        for _ in range(args.repeat):  # each run on a new collaboration of the same size: runs compare
            cid, users = await setup(runtime, args.members, args.activities)
            await run_actions(runtime, cid, users, args.warmup, 0)
            gc.collect()
            clock.reset()
            started = time.process_time()
            await run_actions(runtime, cid, users, args.actions, args.warmup)
            total = time.process_time() - started
            per = {step: round(clock.totals.get(step, 0.0) / args.actions * 1e6, 1) for step in STEPS}
            per["other"] = round((total - sum(clock.totals.values())) / args.actions * 1e6, 1)
            per["total"] = round(total / args.actions * 1e6, 1)
            runs.append(per)
        return {
            "members": args.members,
            "activities_at_start": args.activities + (args.warmup + 1) // 3,
            "actions_per_run": args.actions,
            "unit": "CPU µs per action (time.process_time)",
            "median": {key: statistics.median(run[key] for run in runs) for key in runs[0]},
            "runs": runs,
        }
    finally:
        await runtime.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=100)
    parser.add_argument("--activities", type=int, default=50)
    parser.add_argument("--actions", type=int, default=150, help="actions per run (a third of each kind)")
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    print(json.dumps(asyncio.run(measure(args)), indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
