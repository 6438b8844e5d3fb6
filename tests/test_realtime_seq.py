"""The stream sequence (issue 13 items 1, 2, 5): every collaboration_updated and message_created
carries `seq`, from 1, plus exactly 1 per event, in commit order, the same on every API process;
`subscribe` with `sinceSeq` replays what was missed from the database (the audit log and the
messages), the bytes the live stream sent, on any process, after a restart; a snapshot only when
too many were missed, `sinceSeq` is ahead, the replay would not fit the connection's budget, or
the missed events remove the caller.

Two runtimes over one store act as two API processes (replicas), as in the presence tests; each
test runs on the embedded store and, with MONGODB_URI set, on real MongoDB."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any, AsyncIterator

import pytest

from backend.auth.dev_tokens import dev_user_id
from backend.domain.models import Actor
from tests.realtime_support import STORES, Client, apply_changes, close_runtime, live_server, open_runtime
from tests.support import EDITOR, OWNER, STRANGER, VIEWER

THANKS = {
    "name": "Thank whoever completes an activity",
    "when": {"action": "completeActivity"},
    "then": {
        "action": {
            "name": "sendMessage",
            "payload": {"text": {"cat": ["Thanks for finishing ", {"var": "collaboration.activity.title"}, "!"]}},
        }
    },
}
STREAM = ("collaboration_updated", "message_created")


@pytest.fixture(params=STORES)
def store(request):
    return request.param


def user(email: str) -> Actor:
    return Actor.user(dev_user_id(email))


class Stream:
    """What a client following one collaboration by seq keeps, from frames alone: it applies an
    event whose seq is its last plus one and fails on any other (a gap, a repeat)."""

    def __init__(self) -> None:
        self.seq = 0
        self.doc: dict[str, Any] | None = None
        self.version = 0
        self.messages: dict[str, dict[str, Any]] = {}
        self.snapshots = 0
        self.events: list[dict[str, Any]] = []

    def apply(self, frame: dict[str, Any]) -> None:
        kind = frame["type"]
        if kind == "subscribed":
            assert frame["seq"] >= self.seq or self.doc is None, frame
        elif kind == "snapshot":
            self.doc, self.version, self.seq = frame["collaboration"], frame["version"], frame["seq"]
            self.messages = {m["id"]: m for m in frame["messages"]}
            self.snapshots += 1
        elif kind in STREAM:
            assert frame["seq"] == self.seq + 1, (frame["seq"], self.seq, frame)
            self.seq = frame["seq"]
            self.events.append(frame)
            if kind == "message_created":
                assert frame["message"]["id"] not in self.messages, "a message twice"
                self.messages[frame["message"]["id"]] = frame["message"]
                return
            assert frame["version"] == self.version + 1, (frame["version"], self.version)
            self.doc = apply_changes(self.doc or {}, frame["changes"])
            self.version = frame["version"]


async def follow(client: Client, stream: Stream, seq: int, timeout: float = 20) -> None:
    """Apply frames until the stream reaches `seq`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while stream.seq < seq:
        stream.apply(await client.next(max(0.05, deadline - loop.time())))


async def head(runtime: Any, cid: str) -> int:
    return (await runtime.store.stream.head(cid))[1]


async def subscribe(live: Any, email: str, cid: str, stream: Stream, **since: Any) -> Client:
    client = await live.client(email)
    subscribed = await client.subscribe(cid, **since)
    stream.apply(subscribed)
    return client


@contextlib.asynccontextmanager
async def replicas(store: str, **overrides: Any) -> AsyncIterator[tuple[Any, Any, Any]]:
    """Two runtimes (API processes) over one database, each under its own live server; yields
    (first live, second live, a function opening another runtime over the same database)."""
    first = await open_runtime(store, **overrides)
    others: list[Any] = []

    async def another() -> Any:
        runtime = await open_runtime(store, handle=first.handle, mongodb_db=first.settings.mongodb_db, **overrides)
        others.append(runtime)
        return runtime

    try:
        second = await another()
        async with live_server(first) as one, live_server(second) as two:
            yield one, two, another
    finally:
        for runtime in others:
            await runtime.verifier.aclose()
            await runtime.directory.aclose()
        await close_runtime(first)


async def team(runtime: Any) -> str:
    engine = runtime.engine
    created = await engine.run("createCollaboration", user(OWNER), None, {"title": "Team"}, actor_email=OWNER)
    cid = created.collaborationId
    await engine.run("addMember", user(OWNER), cid, {"email": EDITOR, "role": "editor"})
    await engine.run("addMember", user(OWNER), cid, {"email": VIEWER, "role": "viewer"})
    return cid


async def commit(engines: list[Any], cid: str, updates: int, messages: int) -> None:
    """`updates` updateDetails and `messages` sendMessage, interleaved, through each engine in turn."""
    total = updates + messages
    for i in range(total):
        engine = engines[i % len(engines)]
        if i * updates // total != (i + 1) * updates // total:
            await engine.run("updateDetails", user(EDITOR), cid, {"title": f"t{i}"})
        else:
            await engine.run("sendMessage", user(EDITOR), cid, {"text": f"m{i}"})


# -- one sequence per collaboration ------------------------------------------------------------------


async def test_seq_counts_every_event_from_1_in_commit_order(store):
    async with replicas(store) as (one, two, _):
        cid = await team(one.runtime)
        assert await head(one.runtime, cid) == 3  # created, two members added
        stream = Stream()
        client = await subscribe(one, OWNER, cid, stream)
        stream.apply(await client.expect("snapshot"))
        assert stream.seq == 3 and "seq" not in stream.doc  # the counter is not part of the document
        assert "seq" not in await one.snapshot(OWNER, cid)
        # concurrent writes through both processes: each gets its own seq, none lost, none twice
        engines = [one.runtime.engine, two.runtime.engine]
        # (edits 5 at a time: each retries when another one's version won, at most 8 times on a real server)
        sends = [engines[i % 2].run("sendMessage", user(EDITOR), cid, {"text": f"m{i}"}) for i in range(20)]
        edits = [engines[i % 2].run("updateDetails", user(OWNER), cid, {"description": f"d{i}"}) for i in range(10)]
        await asyncio.gather(*sends[:10], *edits[:5])
        await asyncio.gather(*sends[10:], *edits[5:])
        assert await head(one.runtime, cid) == 33
        await follow(client, stream, 33)
        assert [e["seq"] for e in stream.events] == list(range(4, 34))
        assert stream.doc == await one.snapshot(OWNER, cid)
        assert sorted(stream.messages) == sorted(m["id"] for m in await one.messages(OWNER, cid))
        # the same stream, with the same seqs, on the other process
        other = Stream()
        other.seq = other.version = 3  # what it held: seq 3 is version 3 (no message yet)
        other_client = await subscribe(two, VIEWER, cid, other, sinceSeq=3)
        await follow(other_client, other, 33)
        assert [json.dumps(e) for e in other.events] == [json.dumps(e) for e in stream.events]
        assert await client.quiet(0.3) == []  # no event of a seq bump alone


async def test_a_replay_is_the_bytes_the_live_stream_sent_for_every_action(store):
    async with replicas(store) as (one, two, _):
        rt = one.runtime
        cid = await team(rt)
        live = Stream()
        client = await subscribe(one, OWNER, cid, live)
        live.apply(await client.expect("snapshot"))
        run = rt.engine.run
        await run("updateDetails", user(OWNER), cid, {"title": "Renamed", "description": "about"})
        await run("updateDetails", user(OWNER), cid, {"description": "more"})
        rule = (await run("addRule", user(OWNER), cid, {"rule": THANKS})).result["ruleId"]
        await run("updateRule", user(OWNER), cid, {"rule": {**THANKS, "id": rule, "name": "Thanks again"}})
        first = (await run("proposeActivity", user(EDITOR), cid, {"title": "A"})).result["activityId"]
        second = await run("proposeActivity", user(EDITOR), cid, {"title": "B", "dueAt": "2026-12-09T10:00:00Z"})
        await run("scheduleActivity", user(EDITOR), cid, {"activityId": first, "scheduledFor": "2026-12-08T10:00:00Z"})
        await run("completeActivity", user(EDITOR), cid, {"activityId": first})  # its rule posts a message
        await run("cancelActivity", user(OWNER), cid, {"activityId": second.result["activityId"], "reason": "no"})
        await run("removeRule", user(OWNER), cid, {"ruleId": rule})
        await run("sendMessage", user(VIEWER), cid, {"text": "hello"})
        await run("changeRole", user(OWNER), cid, {"userId": dev_user_id(VIEWER), "role": "editor"})
        await run("setProtectedActions", user(OWNER), cid, {"actions": ["archiveCollaboration"]})
        await run("addMember", user(OWNER), cid, {"email": STRANGER, "role": "viewer"})
        await run("removeMember", user(OWNER), cid, {"userId": dev_user_id(STRANGER)})
        await run("addMember", user(OWNER), cid, {"email": "new@example.com", "role": "viewer"})  # an invitation
        assert await rt.invitations.accept(cid, dev_user_id("new@example.com"))  # acceptInvitation
        await run("leaveCollaboration", user(VIEWER), cid, {})
        await run("archiveCollaboration", user(OWNER), cid, {})
        last = await head(rt, cid)
        await follow(client, live, last)
        assert {e.get("action") for e in live.events if e["type"] == "collaboration_updated"} >= {
            "updateDetails",
            "addRule",
            "updateRule",
            "proposeActivity",
            "scheduleActivity",
            "completeActivity",
            "cancelActivity",
            "removeRule",
            "changeRole",
            "setProtectedActions",
            "addMember",
            "removeMember",
            "leaveCollaboration",
            "archiveCollaboration",
            "acceptInvitation",
        }
        # From seq 0 on the other process, from the database (not its history): the creation too,
        # then every event the live stream sent.
        two.realtime.hub.history.clear()
        replay = Stream()
        resumed = await subscribe(two, OWNER, cid, replay, sinceSeq=0)
        await follow(resumed, replay, last)
        assert replay.snapshots == 0 and two.realtime.metrics.ws_resumes.labels("database")._value.get() == 1
        assert [json.dumps(e) for e in replay.events[3:]] == [json.dumps(e) for e in live.events]
        assert replay.doc == live.doc == await one.snapshot(OWNER, cid)  # the creation's event gives the document


# -- resuming from the database ----------------------------------------------------------------------


async def _resume_after(store: str, restart: bool) -> None:
    async with replicas(store) as (one, two, another):
        cid = await team(one.runtime)
        stream = Stream()
        client = await subscribe(one, EDITOR, cid, stream)
        stream.apply(await client.expect("snapshot"))
        await client.until("presence")
        client.abort()  # dropped
        # 600 events through both processes: more updates and messages than the hub's history holds
        await commit([one.runtime.engine, two.runtime.engine], cid, updates=300, messages=300)
        assert await head(one.runtime, cid) == stream.seq + 600
        if restart:  # the process it resumes on is new: nothing in its memory
            await asyncio.sleep(0)
            target_runtime = await another()
            server = live_server(target_runtime)
            target = await server.__aenter__()
        else:
            server, target = None, two
        try:
            resumed = await subscribe(target, EDITOR, cid, stream, sinceSeq=stream.seq)
            await follow(resumed, stream, stream.seq + 600)
            assert stream.snapshots == 1  # the first subscribe's only
            resumes = target.runtime.metrics.ws_resumes
            assert resumes.labels("database")._value.get() == 1  # its history holds 256 updates at most
            assert [e["seq"] for e in stream.events] == list(range(4, 604))
            assert sum(e["type"] == "message_created" for e in stream.events) == 300
            assert stream.doc == await target.snapshot(EDITOR, cid)
            assert sorted(stream.messages) == sorted(
                m["id"] for m in await target.messages(EDITOR, cid) + await _older_messages(target, cid)
            )
            await one.runtime.engine.run("sendMessage", user(OWNER), cid, {"text": "live"})  # then live, no gap
            await one.runtime.engine.run("updateDetails", user(OWNER), cid, {"title": "live"})
            await follow(resumed, stream, 605)
            frames = await resumed.quiet(0.3)
            assert [f for f in frames if f["type"] in STREAM] == []  # nothing twice
        finally:
            if server is not None:
                await server.__aexit__(None, None, None)


async def _older_messages(live: Any, cid: str) -> list[dict[str, Any]]:
    """Messages past the first page of 200."""
    r = await live.http.get(
        f"/api/collaborations/{cid}/messages?limit=200&before=" + (await live.messages(EDITOR, cid))[0]["id"],
        headers=live.auth(EDITOR),
    )
    return r.json()["messages"]


async def test_a_dropped_client_resumes_on_another_process_with_every_event_once(store):
    await _resume_after(store, restart=False)


async def test_a_dropped_client_resumes_on_a_restarted_process_with_every_event_once(store):
    await _resume_after(store, restart=True)


async def test_a_resume_the_history_holds_reads_only_the_collaboration(store):
    async with replicas(store) as (one, two, _):
        cid = await team(one.runtime)
        stream = Stream()
        client = await subscribe(two, EDITOR, cid, stream)
        stream.apply(await client.expect("snapshot"))
        client.abort()
        await commit([one.runtime.engine, two.runtime.engine], cid, updates=20, messages=20)
        history = two.realtime.hub.history
        async with asyncio.timeout(10):  # process two's reader has published them all
            while history.by_seq(cid, 3, 43) is None:
                await asyncio.sleep(0.02)
        reads = two.runtime.store.stream.reads
        resumed = await subscribe(two, EDITOR, cid, stream, sinceSeq=3)
        await follow(resumed, stream, 43)
        assert two.runtime.store.stream.reads - reads == 1  # the head; the events came from memory
        assert two.realtime.metrics.ws_resumes.labels("history")._value.get() == 1
        assert stream.doc == await two.snapshot(EDITOR, cid)
        two.realtime.hub.history.clear()  # gone from memory: the same from the database
        again = Stream()
        again.seq = again.version = 3
        other = await subscribe(two, VIEWER, cid, again, sinceSeq=3)
        await follow(other, again, 43)
        assert [json.dumps(e) for e in again.events] == [json.dumps(e) for e in stream.events[-40:]]
        assert two.realtime.metrics.ws_resumes.labels("database")._value.get() == 1


async def test_resumes_of_the_same_range_at_once_share_one_read_of_the_database(store):
    async with replicas(store) as (one, two, another):
        cid = await team(one.runtime)
        await commit([one.runtime.engine, two.runtime.engine], cid, updates=15, messages=15)
        async with live_server(await another()) as fresh:  # nothing of it in its history
            clients = [await fresh.client(EDITOR) for _ in range(10)]
            reads = fresh.runtime.store.stream.reads
            await asyncio.gather(*[c.send(type="subscribe", collaborationId=cid, sinceSeq=3) for c in clients])
            streams = []
            for client in clients:
                stream = Stream()
                stream.seq = stream.version = 3
                stream.apply(await client.expect("subscribed"))
                await follow(client, stream, 33)
                streams.append([json.dumps(e) for e in stream.events])
            assert all(events == streams[0] for events in streams) and len(streams[0]) == 30
            if store == "embedded":  # (on a real server the first read may finish before the last resume asks)
                assert fresh.runtime.store.stream.reads - reads == 10 + 2  # a head each, one window (2 queries) for all
                assert fresh.realtime.replays.shared == 9


async def test_nothing_missed_is_nothing_replayed(store):
    async with replicas(store) as (one, two, _):
        cid = await team(one.runtime)
        stream = Stream()
        client = await subscribe(two, EDITOR, cid, stream, sinceSeq=3)
        assert stream.seq == 0  # no snapshot: it holds seq 3 already
        assert (await client.next())["type"] == "presence"
        await one.runtime.engine.run("sendMessage", user(OWNER), cid, {"text": "next"})
        event = await client.until("message_created")
        assert event["seq"] == 4 and event["message"]["seq"] == 4


async def test_a_snapshot_when_too_many_were_missed_or_since_seq_is_ahead(store):
    async with replicas(store, resume_max_events=5) as (one, two, _):
        cid = await team(one.runtime)
        await commit([one.runtime.engine], cid, updates=3, messages=3)  # seq 9
        for since, snapshot in ((3, True), (4, False), (9, False), (10, True), (1000, True)):
            stream = Stream()
            client = await subscribe(two, EDITOR, cid, stream, sinceSeq=since)
            frame = await client.next()
            assert (frame["type"] == "snapshot") is snapshot, (since, frame)
            if snapshot:
                assert frame["seq"] == 9 and len(frame["messages"]) == 3
                assert [m["seq"] for m in frame["messages"]] == sorted(m["seq"] for m in frame["messages"])
            else:
                frames = [frame] + [await client.next() for _ in range(9 - since)]
                assert [f.get("seq") for f in frames if f["type"] in STREAM] == list(range(since + 1, 10))
            await client.close()


async def test_a_replay_larger_than_the_connection_may_queue_is_a_snapshot(store):
    async with replicas(store, ws_queue_bytes=4096) as (one, two, _):
        cid = await team(one.runtime)
        for i in range(20):
            await one.runtime.engine.run("sendMessage", user(OWNER), cid, {"text": "x" * 400 + str(i)})
        client = await two.client(EDITOR)
        await client.subscribe(cid, sinceSeq=3)
        snapshot = await client.expect("snapshot")
        assert snapshot["seq"] == 23
        assert two.runtime.metrics.ws_resumes.labels("snapshot")._value.get() == 1
        client = await two.client(EDITOR)
        await client.subscribe(cid, sinceSeq=21)  # two messages fit
        assert [(await client.next())["seq"] for _ in range(2)] == [22, 23]
        assert (
            two.runtime.metrics.ws_resumes.labels("history")._value.get()
            + two.runtime.metrics.ws_resumes.labels("database")._value.get()
            == 1
        )


async def test_missed_events_with_the_callers_removal_are_a_snapshot(store):
    async with replicas(store) as (one, two, _):
        cid = await team(one.runtime)
        engine = one.runtime.engine
        await engine.run("removeMember", user(OWNER), cid, {"userId": dev_user_id(VIEWER)})
        await engine.run("sendMessage", user(OWNER), cid, {"text": "not for the viewer"})
        client = await two.client(VIEWER)
        await client.send(type="subscribe", collaborationId=cid, sinceSeq=3)
        error = await client.expect("error")
        assert error["code"] == "not_found"
        await engine.run("addMember", user(OWNER), cid, {"email": VIEWER, "role": "viewer"})  # back again
        await client.subscribe(cid, sinceSeq=3)
        snapshot = await client.expect("snapshot")  # not the events of the removal and what came after it
        assert snapshot["seq"] == 6 and [m["text"] for m in snapshot["messages"]] == ["not for the viewer"]


def test_the_history_answers_a_range_only_when_it_holds_every_event_of_it():
    from backend.realtime import events as ev
    from backend.realtime.hub import History

    def update(version: int, seq: int) -> ev.Event:
        return ev.collaboration_updated("c", {"version": version}, [], None, seq)

    def message(seq: int) -> ev.Event:
        return ev.message_created({"_id": f"msg_{seq}", "collaborationId": "c", "seq": seq})

    history = History(per_collaboration=3)
    for event in (update(2, 2), message(3), update(3, 4), message(5), message(6), update(4, 7)):
        history.add(event)
    assert [e.seq for e in history.by_seq("c", 1, 7)] == [2, 3, 4, 5, 6, 7]
    assert [e.seq for e in history.by_seq("c", 4, 6)] == [5, 6]
    assert history.by_seq("c", 7, 7) == []
    history.add(message(8))  # three messages held at most: seq 3 leaves
    assert history.by_seq("c", 1, 8) is None and history.by_seq("c", 2, 8) is None
    assert [e.seq for e in history.by_seq("c", 3, 8)] == [4, 5, 6, 7, 8]
    assert history.by_seq("c", 3, 9) is None  # 9 not read yet
    assert history.by_seq("other", 0, 1) is None


async def test_since_seq_must_be_a_non_negative_integer():
    async with live_server() as live:
        client = await live.client(EDITOR)
        for bad in (-1, "3", 1.5):
            await client.send(type="subscribe", collaborationId="col_x", sinceSeq=bad)
            error = await client.expect("error")
            assert error["code"] == "validation_failed" and "sinceSeq" in json.dumps(error)


# -- what a replay reads ---------------------------------------------------------------------------


def big_rule(i: int) -> dict[str, Any]:
    """A rule of about 4 KB (MAX_RULE_BYTES is 4096)."""
    return {
        "name": f"Rule {i}",
        "when": {"action": "completeActivity"},
        "then": {"action": {"name": "sendMessage", "payload": {"text": f"{i:03} " + "x" * 3900}}},
    }


async def churn(runtime: Any, rules: int, pairs: int) -> str:
    """A team with `rules` rules of 4 KB, then `pairs` times: remove the oldest rule, add it back
    (a removal sets the shrunk list whole: its stored changes are all the other rules)."""
    cid = await team(runtime)
    run = runtime.engine.run
    ids = [(await run("addRule", user(OWNER), cid, {"rule": big_rule(i)})).result["ruleId"] for i in range(rules)]
    for i in range(pairs):
        await run("removeRule", user(OWNER), cid, {"ruleId": ids.pop(0)})
        ids.append((await run("addRule", user(OWNER), cid, {"rule": big_rule(rules + i)})).result["ruleId"])
    return cid


async def bounded_read(runtime: Any, cid: str, since: int, budget: int) -> tuple[Any, int, int]:
    """A replay from the database (backend/realtime/replay.py) with `budget`: its answer, the stored
    events it read, and the peak of memory it allocated meanwhile (tracemalloc)."""
    import tracemalloc

    from backend.realtime.replay import Replays

    stream = runtime.store.stream
    before = stream.documents
    tracemalloc.start()
    try:
        events = await Replays(runtime.store, budget).read(cid, since, await head(runtime, cid))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return events, stream.documents - before, peak


async def test_changes_too_large_to_store_are_left_out_and_a_replay_across_them_is_a_snapshot(store):
    from backend.store.size import bson_size
    from backend.store.stream import CHANGES_MAX_BYTES

    runtime = await open_runtime(store)
    try:
        cid = await churn(runtime, rules=50, pairs=150)  # 300 actions past the 50 rules
        audit = runtime.store.db["audit"]
        removals = await audit.find({"collaborationId": cid, "action": "removeRule"}).to_list(length=None)
        assert len(removals) == 150 and all(e["changes"] is None for e in removals)  # 49 rules: ~200 KB each
        assert max(bson_size(e) for e in removals) < 16_384  # the entry keeps its payload, not the rules
        additions = await audit.find({"collaborationId": cid, "action": "addRule"}).to_list(length=None)
        assert all(bson_size(e["changes"]) <= CHANGES_MAX_BYTES for e in additions)
        # From 0: the first removal (seq 54, after the creation, 2 members and 50 rules) has nothing
        # stored, so the replay stops there, a snapshot, having read the entries up to it and no more
        events, read, peak = await bounded_read(runtime, cid, 0, runtime.settings.ws_queue_bytes)
        assert events is None and read <= 54
        if store == "embedded":  # (a real server's cursor batches come on top)
            assert peak < 2 * 1_048_576, peak  # the window of 256 whole entries: 10.5 MB
        # after the last removal: replayed as usual
        last = await head(runtime, cid)
        events, read, _ = await bounded_read(runtime, cid, last - 1, runtime.settings.ws_queue_bytes)
        assert [e.seq for e in events] == [last] and read == 1
    finally:
        await close_runtime(runtime)


async def test_a_replay_stops_reading_as_soon_as_its_events_pass_the_budget(store):
    runtime = await open_runtime(store)
    try:
        cid = await churn(runtime, rules=12, pairs=100)  # a removal's changes: 11 rules, ~45 KB, stored
        everything, _, _ = await bounded_read(runtime, cid, 0, 1 << 40)
        assert [e.seq for e in everything] == list(range(1, await head(runtime, cid) + 1))
        budget = 256 * 1024
        sizes = [e.size for e in everything]
        within = next(i for i in range(len(sizes)) if sum(sizes[: i + 1]) > budget)  # events that fit
        events, read, _ = await bounded_read(runtime, cid, 0, budget)
        assert events is None  # a snapshot instead
        # the event that passed the budget, and not one more (the whole window of 215 entries was
        # read before: on a real server ~5 MB of BSON, payloads and rulesFired included)
        assert read == within + 1 and read < 100
    finally:
        await close_runtime(runtime)
