"""Reconnect-storm benchmark (run by hand): resuming by `sinceSeq` from the database, and what
numbering the stream costs an action (issue 13 item 6). Results in docs/performance.md.

One process runs two API runtimes over one database (the embedded store, or MONGODB_URI if set:
a replica set), each under its own uvicorn on 127.0.0.1, as two API processes would; the
WebSocket clients (`websockets`) run in the same event loop, so every number includes the
clients' own work on the same core.

1. Seq cost: `updateDetails` and `sendMessage` actions through the engine, each timed alone,
   switching at every action between the store writes as they are (the seq bump and the stored
   changes in the same write) and as they were before (the pre-seq writes, kept below as
   `_before_*`): the median action's time of each, as actions/s.
2. The storm: N clients subscribe on runtime A (N / group collaborations), all drop at once;
   actions continue (--missed events per collaboration, updates and messages, through A and B);
   then all N resume on runtime B with `sinceSeq` at once while actions keep coming (B's hub
   history holds what they missed); then the same again on runtime C, whose history holds
   nothing (as after a restart: every replay is read from the database). Per client,
   the resume time is from sending `subscribe` until it has every event up to the `seq` its
   `subscribed` named (live); events replayed per second over the storm; MongoDB reads per
   resume (the subscribe's stream reads, counted by backend.store.stream, plus its presence read).

    .venv/bin/python benchmarks/resume.py --clients 1000 --group 100 --missed 60

Everything runs on 127.0.0.1 and stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from websockets.asyncio.client import connect

from backend.auth.dev_tokens import dev_user_id, issue_dev_token
from backend.composition import build_api
from backend.domain.models import Actor
from backend.runtime import Runtime
from backend.serve import Server, uvicorn_config
from backend.settings import test_settings
from backend.store import collaborations as collaborations_module
from backend.store import messages as messages_module
from backend.store.client import open_database
from backend.store.indexes import ensure_indexes
from backend.store.writes import check_once, insert_audit

MEMBERS = 10  # distinct members per collaboration; each holds group / MEMBERS sockets


# -- the store writes as they were before seq (main before this change), for the cost comparison


POSTING_FIELDS = ("memberIds", "status")


async def fence(db: Any, session: Any, collaboration_id: str) -> None:
    """The `fences` write of those days, inside the transaction `session` (none on the embedded store)."""
    if session is None:
        return
    await db["fences"].update_one({"_id": collaboration_id}, {"$inc": {"writes": 1}}, upsert=True, session=session)


def _touches(update: dict[str, Any], fields: tuple[str, ...]) -> bool:
    return any(
        path.split(".")[0] in fields for changes in update.values() if isinstance(changes, dict) for path in changes
    )


async def _before_apply(
    self: Any,
    collaboration_id: str,
    from_version: int,
    new_doc: dict,
    update: dict,
    audit: dict,
    *,
    before: dict | None = None,
    idempotency: Any = None,
) -> bool:
    size = self.size_after(before, update) if before is not None else None
    size = self.check_size(new_doc) if size is None else self._refuse_past_cap(size)
    fenced = _touches(update, POSTING_FIELDS)

    async def write(session: Any) -> bool:
        if fenced:
            await fence(self._db, session, collaboration_id)
        if idempotency is not None:
            await idempotency.check(session)
        await check_once(self._audit, session, audit)
        outcome = await self._coll.update_one(
            {"_id": collaboration_id, "version": from_version}, update, session=session
        )
        if outcome.matched_count != 1:
            return False
        await insert_audit(self._audit, session, audit)
        if idempotency is not None:
            await idempotency.commit(session)
        return True

    written = await self._writer.atomically(write)
    if written:
        self._remember(collaboration_id, new_doc.get("version"), size)
    return written


async def _before_insert(
    self: Any, message: dict, audit: dict, *, poster: str | None = None, idempotency: Any = None
) -> bool:
    collaboration_id = message["collaborationId"]
    query: dict[str, Any] = {"_id": collaboration_id, "status": "active"}
    if poster is not None:
        query["memberIds"] = poster

    async def write(session: Any) -> bool:
        await fence(self._db, session, collaboration_id)
        if await self._collaborations.find_one(query, {"_id": 1}, session=session) is None:
            return False
        if idempotency is not None:
            await idempotency.check(session)
        await check_once(self._audit, session, audit)
        await self._coll.insert_one(message, session=session)
        await insert_audit(self._audit, session, audit)
        if idempotency is not None:
            await idempotency.commit(session)
        return True

    return await self._writer.atomically(write)


class Writes:
    """Switch the store's two numbered writes between now and before."""

    now = (collaborations_module.Collaborations.apply, messages_module.Messages.insert)

    @staticmethod
    def use(before: bool) -> None:
        apply, insert = (_before_apply, _before_insert) if before else Writes.now
        collaborations_module.Collaborations.apply = apply  # type: ignore[method-assign]  # the benchmark times the store's calls by wrapping them
        messages_module.Messages.insert = insert  # type: ignore[method-assign]  # the benchmark times the store's calls by wrapping them


# -- runtimes and servers


async def open_runtime(settings: Any, handle: Any = None) -> Runtime:
    if handle is None:
        handle = await open_database(settings)
        await ensure_indexes(handle.db)
    return Runtime(settings, handle)


class Served:
    def __init__(self, runtime: Runtime):
        self.runtime = runtime
        self.server: Any = None
        self.task: Any = None
        self.url = ""

    async def __aenter__(self) -> "Served":
        config = uvicorn_config(
            build_api(self.runtime.settings, runtime=self.runtime), self.runtime.settings, "127.0.0.1", 0
        )
        config.backlog = 4096
        self.server = Server(config, config.app)
        self.server.install_signal_handlers = lambda: None
        self.task = asyncio.create_task(self.server.serve())
        while not self.server.started:
            if self.task.done():
                self.task.result()
            await asyncio.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"ws://127.0.0.1:{port}/ws"
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.server.should_exit = True
        await self.task


def user(email: str) -> Actor:
    return Actor.user(dev_user_id(email))


async def setup(runtime: Runtime, collaborations: int) -> list[tuple[str, list[str]]]:
    out = []
    for c in range(collaborations):
        owner = f"owner{c}@bench.example"
        members = [owner] + [f"m{c}-{i}@bench.example" for i in range(MEMBERS - 1)]
        for email in members:
            await runtime.directory.signed_in(dev_user_id(email), email)
        cid = (
            await runtime.engine.run("createCollaboration", user(owner), None, {"title": f"c{c}"}, actor_email=owner)
        ).collaborationId
        for email in members[1:]:
            await runtime.engine.run("addMember", user(owner), cid, {"email": email, "role": "editor"})
        out.append((cid, members))
    return out


async def act(runtime: Runtime, cid: str, email: str, i: int) -> None:
    if i % 2:
        await runtime.engine.run("sendMessage", user(email), cid, {"text": f"message {i}"})
    else:
        await runtime.engine.run("updateDetails", user(email), cid, {"title": f"title {i}"})


# -- 1. what numbering costs an action


async def seq_cost(runtime: Runtime, cid: str, email: str, actions: int) -> dict[str, Any]:
    """Each action timed alone, the writes switched between before and now at every action (so a
    collection growing, or the machine's other load, weighs on both alike); medians of each."""
    spent: dict[tuple[str, bool], list[float]] = {}
    for i in range(2 * actions):
        before = i % 2 == 0
        Writes.use(before)
        for name in ("updateDetails", "sendMessage"):
            body = {"title": f"t{i}"} if name == "updateDetails" else {"text": f"x{i}"}
            started = time.perf_counter()
            await runtime.engine.run(name, user(email), cid, body)
            spent.setdefault((name, before), []).append(time.perf_counter() - started)
    Writes.use(False)
    out: dict[str, Any] = {}
    for name in ("updateDetails", "sendMessage"):
        before, after = statistics.median(spent[(name, True)]), statistics.median(spent[(name, False)])
        out[name] = {
            "actions_per_s_before": round(1 / before),
            "actions_per_s_after": round(1 / after),
            "us_per_action_added": round((after - before) * 1e6, 1),
        }
    return out


# -- 2. the storm


class Follower:
    """One client: subscribed on A by snapshot; later resumes on B by seq."""

    def __init__(self, cid: str, token: str):
        self.cid, self.token = cid, token
        self.seq = 0
        self.ws: Any = None
        self.replayed = 0
        self.snapshots = 0

    async def open(self, url: str) -> None:
        self.ws = await connect(url, ping_interval=None, max_queue=None, open_timeout=60)
        await self.ws.send(json.dumps({"type": "auth", "token": self.token}))
        assert json.loads(await self.ws.recv())["type"] == "ready"

    async def subscribe(self, since: int | None) -> float:
        """Subscribe; returns the seconds until every event up to `subscribed.seq` is in."""
        frame: dict[str, Any] = {"type": "subscribe", "collaborationId": self.cid}
        if since is not None:
            frame["sinceSeq"] = since
        started = time.perf_counter()
        await self.ws.send(json.dumps(frame))
        target = None
        while target is None or self.seq < target:
            msg = json.loads(await self.ws.recv())
            kind = msg["type"]
            if kind == "subscribed":
                target = msg["seq"]
            elif kind == "snapshot":
                self.seq = msg["seq"]
                self.snapshots += 1
            elif kind in ("collaboration_updated", "message_created"):
                if msg["seq"] != self.seq + 1:
                    raise AssertionError(f"seq {msg['seq']} after {self.seq}")
                self.seq = msg["seq"]
                self.replayed += 1
            elif kind == "error":
                raise AssertionError(msg)
        return time.perf_counter() - started

    def drop(self) -> None:
        self.ws.transport.abort()


async def storm(
    a: Served,
    targets: list[tuple[str, Served]],
    groups: list[tuple[str, list[str]]],
    group: int,
    missed: int,
    settings: Any,
) -> dict[str, Any]:
    """N clients on `a`, dropped at once, `missed` events each, then resuming all at once on each
    target in turn (dropped again in between, missing as many again)."""
    followers = []
    for cid, members in groups:
        for i in range(group):
            token = issue_dev_token(settings, members[i % len(members)])["access_token"]
            followers.append(Follower(cid, token))
    started = time.perf_counter()
    for chunk in range(0, len(followers), 100):
        await asyncio.gather(*[f.open(a.url) for f in followers[chunk : chunk + 100]])
        await asyncio.gather(*[f.subscribe(None) for f in followers[chunk : chunk + 100]])
    out: dict[str, Any] = {
        "clients": len(followers),
        "collaborations": len(groups),
        "missed_per_collaboration": missed,
        "initial_subscribe_s": round(time.perf_counter() - started, 2),
    }
    runtimes = [a.runtime] + [t.runtime for _, t in targets]
    n = 0
    for name, target in targets:
        for f in followers:
            f.drop()  # all at once
            f.replayed = f.snapshots = 0
        for i in range(missed):  # missed while away: through both processes
            await asyncio.gather(
                *[act(runtimes[i % 2], cid, members[1 + i % (len(members) - 1)], n + i) for cid, members in groups]
            )
        n += missed
        await asyncio.sleep(1)  # the target's reader has published them (its history, if it holds them)
        for chunk in range(0, len(followers), 100):
            await asyncio.gather(*[f.open(target.url) for f in followers[chunk : chunk + 100]])
        stop = asyncio.Event()

        async def keep_acting(start: int) -> int:  # actions go on during the storm, ~100/s
            k = 0
            while not stop.is_set():  # noqa: B023 - awaited within this round, before `stop` is rebound
                cid, members = groups[k % len(groups)]
                await act(runtimes[k % 2], cid, members[1], start + k)
                k += 1
                await asyncio.sleep(0.01)
            return k

        actor = asyncio.create_task(keep_acting(n))
        reads_before = target.runtime.store.stream.reads
        resumes = target.runtime.metrics.ws_resumes
        storm_started = time.perf_counter()
        times = sorted(await asyncio.gather(*[f.subscribe(f.seq) for f in followers]))
        storm_s = time.perf_counter() - storm_started
        stop.set()
        during = await actor
        n += during
        reads = target.runtime.store.stream.reads - reads_before
        replayed = sum(f.replayed for f in followers)
        out[name] = {
            "resume_s": {
                "p50": round(times[len(times) // 2], 3),
                "p99": round(times[int(len(times) * 0.99) - 1], 3),
                "max": round(times[-1], 3),
            },
            "storm_s": round(storm_s, 2),
            "events_replayed": replayed,
            "events_replayed_per_s": round(replayed / storm_s),
            "snapshots": sum(f.snapshots for f in followers),
            "resumed_from": {how: int(resumes.labels(how)._value.get()) for how in ("history", "database", "snapshot")},
            "reads_per_resume": round(reads / len(followers) + 1, 2),  # + its presence read
            "database_reads_shared": target.runtime.realtime.replays.shared,
            "actions_during_storm": during,
        }
    for f in followers:
        await f.ws.close()
    return out


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    overrides: dict[str, Any] = {
        "action_rate_limit": 100_000_000,
        "ws_max_sockets_per_user": 1_000_000,
        "change_history": 1_000_000,
        "log_level": "WARNING",
    }
    if os.environ.get("MONGODB_URI"):
        overrides.update(mongodb_uri=os.environ["MONGODB_URI"], mongodb_db=f"tandem_bench_{os.getpid()}")
    settings = test_settings(**overrides)
    first = await open_runtime(settings)
    second = await open_runtime(settings, first.handle)
    third = second
    result: dict[str, Any] = {"store": "mongodb" if settings.mongodb_uri else "embedded"}
    try:
        groups = await setup(first, max(1, args.clients // args.group))
        cid, members = groups[0]
        await seq_cost(first, cid, members[0], 50)  # warm up
        result["seq_cost"] = await seq_cost(first, cid, members[0], args.cost_actions)
        third = await open_runtime(settings, first.handle)  # started after every event it will replay
        async with Served(first) as a, Served(second) as b:
            async with Served(third) as c:
                c.runtime.realtime.hub.history.per_collaboration = 0  # a restart: nothing in memory
                result["storm"] = await storm(
                    a,
                    [("on_another_process", b), ("on_a_restarted_process", c)],
                    groups,
                    args.group,
                    args.missed,
                    settings,
                )
    finally:
        if settings.mongodb_uri:
            await first.handle.client.drop_database(settings.mongodb_db)
        for other in (second, third):
            await other.verifier.aclose()
            await other.directory.aclose()
        await first.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", "-n", type=int, default=1000)
    parser.add_argument("--group", "-s", type=int, default=100, help="clients per collaboration")
    parser.add_argument("--missed", type=int, default=60, help="events per collaboration while away")
    parser.add_argument("--cost-actions", type=int, default=500, help="actions of each kind, before and after")
    parser.add_argument("--timeout", type=float, default=120)
    args = parser.parse_args()

    async def bounded() -> dict[str, Any]:
        return await asyncio.wait_for(main_async(args), args.timeout)

    print(json.dumps(asyncio.run(bounded()), indent=2))


if __name__ == "__main__":
    main()
