"""Events end to end: actions over HTTP → MongoDB → change stream → hub → real WebSocket clients.

Tests taking `store` run on the embedded store and, with MONGODB_URI set (a
replica set), on real MongoDB too; the rest drive what only the embedded
store can do (injected errors, a tiny change history).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import socket

import pytest
from pymongo.errors import AutoReconnect
from websockets.exceptions import ConnectionClosed

from backend.auth.dev_tokens import dev_user_id
from backend.clock import utcnow
from backend.domain.models import Actor
from backend.ids import new_id
from backend.realtime.changes import ChangeReader
from tests.realtime_support import STORES, Client, Copy, close_runtime, live_server, open_runtime
from tests.support import EDITOR, OWNER, VIEWER, user

MEMBERS = [f"member{i}@example.com" for i in range(3)]


async def team(live) -> str:
    cid = await live.create(OWNER)
    await live.act(OWNER, "addMember", cid, {"email": EDITOR, "role": "editor"})
    await live.act(OWNER, "addMember", cid, {"email": VIEWER, "role": "viewer"})
    return cid


async def synced(live, email, cid) -> tuple[Client, Copy]:
    client = await live.client(email)
    copy = Copy()
    copy.apply(await client.subscribe(cid))
    copy.apply(await client.expect("snapshot"))
    await client.expect("presence")
    return client, copy


async def follow(client: Client, copy: Copy, version: int, timeout: float = 10) -> list[dict]:
    """Apply frames until the copy reaches `version` (Copy asserts each is exactly the next);
    returns every frame it applied."""
    frames = []
    while copy.version < version:
        frames.append(await client.next(timeout))
        copy.apply(frames[-1])
    return frames


@pytest.fixture(params=STORES)
def store(request):
    return request.param


# -- order and completeness ------------------------------------------------------------------------


async def test_concurrent_actions_arrive_in_version_order_without_gaps(store):
    async with live_server(store=store) as live:
        cid = await team(live)
        watchers = [await synced(live, email, cid) for email in (OWNER, VIEWER)]

        async def work(email: str, n: int) -> None:
            for i in range(n):
                await live.act(email, "proposeActivity", cid, {"title": f"{email} {i}"})
                await live.act(email, "sendMessage", cid, {"text": f"{email} says {i}"})

        await asyncio.gather(work(OWNER, 10), work(EDITOR, 10), work(OWNER, 10))
        final = await live.snapshot(OWNER, cid)
        assert final["version"] == 33
        for client, copy in watchers:
            await follow(client, copy, final["version"])
            assert copy.applied == list(range(4, 34))
            assert copy.doc == final
            await asyncio.sleep(0.1)
            for frame in await client.quiet(0.2):  # the last messages may trail the last update
                copy.apply(frame)
            assert sorted(m["text"] for m in copy.messages.values()) == sorted(
                m["text"] for m in await live.messages(OWNER, cid)
            )


async def test_a_client_that_drops_at_random_resumes_to_exactly_the_servers_document(store):
    """Disconnect at random moments during a stream of actions; resume with sinceVersion each time."""
    rng = random.Random(1234)
    async with live_server(store=store) as live:
        cid = await team(live)
        for email in MEMBERS:
            await live.act(OWNER, "addMember", cid, {"email": email, "role": "editor"})
        done = asyncio.Event()
        cycles = [0]  # how many times the client has dropped and come back so far

        async def actions() -> None:
            act_rng, activities = random.Random(99), []
            for i in range(60):
                if i % 10 == 0:  # on a busy machine too, the stream spans several reconnects
                    async with asyncio.timeout(10):
                        while cycles[0] < i // 10:
                            await asyncio.sleep(0.01)
                who = act_rng.choice([OWNER, EDITOR])
                kind = act_rng.random()
                if kind < 0.3 or not activities:
                    r = await live.act(who, "proposeActivity", cid, {"title": f"a{i}"})
                    activities.append(r["result"]["activityId"])
                elif kind < 0.45:
                    await live.act(
                        who,
                        "scheduleActivity",
                        cid,
                        {"activityId": activities.pop(), "scheduledFor": "2026-12-01T10:00:00Z"},
                    )
                elif kind < 0.55:
                    await live.act(OWNER, "cancelActivity", cid, {"activityId": activities.pop(0)})
                elif kind < 0.7:
                    await live.act(who, "sendMessage", cid, {"text": f"message {i}"})
                elif kind < 0.8:
                    email = act_rng.choice(MEMBERS)
                    role = act_rng.choice(["viewer", "editor"])
                    snap = await live.snapshot(OWNER, cid)
                    member = next(m for m in snap["members"] if m["email"] == email)
                    if member["role"] != role:
                        await live.act(OWNER, "changeRole", cid, {"userId": member["userId"], "role": role})
                elif kind < 0.9:
                    await live.act(who, "updateDetails", cid, {"description": f"d{i}" * act_rng.randint(1, 5)})
                else:  # shrink and grow the members array
                    email = act_rng.choice(MEMBERS)
                    await live.act(OWNER, "removeMember", cid, {"userId": dev_user_id(email)})
                    await live.act(OWNER, "addMember", cid, {"email": email, "role": "viewer"})
                await asyncio.sleep(act_rng.random() * 0.01)
            done.set()

        driver = asyncio.create_task(actions())
        copy, reconnects = Copy(), 0
        async with asyncio.timeout(30):  # a bug must fail the test, not hang it
            while True:
                if driver.done():
                    driver.result()  # an action failed: fail here rather than wait forever
                client = await live.client(VIEWER)
                copy.apply(await client.subscribe(cid, **copy.since()))
                deadline = asyncio.get_running_loop().time() + rng.random() * 0.15
                try:
                    while asyncio.get_running_loop().time() < deadline or done.is_set():
                        try:
                            copy.apply(await client.next(0.05))
                        except asyncio.TimeoutError:
                            if done.is_set() and copy.version == (await live.snapshot(OWNER, cid))["version"]:
                                break
                finally:
                    if rng.random() < 0.5:
                        client.abort()
                    else:
                        await client.close()
                if (
                    done.is_set()
                    and copy.doc is not None
                    and copy.version == (await live.snapshot(OWNER, cid))["version"]
                ):
                    break
                reconnects += 1
                cycles[0] = reconnects
        await driver
        for frame in await _drain_messages(live, cid, copy):
            copy.apply(frame)
        server = await live.snapshot(OWNER, cid)
        assert reconnects >= 5 and copy.catch_ups >= 3, (reconnects, copy.catch_ups)
        for field in server:
            assert copy.doc[field] == server[field], field
        assert copy.doc == server
        assert sorted(copy.messages) == [m["id"] for m in await live.messages(OWNER, cid)]


async def test_resuming_after_a_message_gets_one_committed_later_with_an_earlier_id():
    """Ids are made before the insert: with concurrent senders (or several API processes) a message
    with an earlier id can commit later. Resuming after the last message received must not lose it."""
    async with live_server() as live:
        cid = await team(live)
        early_id = new_id("msg")  # a slower sendMessage made its id first
        client, copy = await synced(live, EDITOR, cid)
        await live.act(OWNER, "sendMessage", cid, {"text": "B, committed first, later id"})
        copy.apply(await client.until("message_created"))
        await client.close()
        actor = {"type": "user", "id": dev_user_id(OWNER)}
        await live.runtime.store.messages.insert(
            {
                "_id": early_id,
                "collaborationId": cid,
                "author": actor,
                "text": "A, committed second",
                "createdAt": utcnow(),
            },
            {"_id": new_id("aud"), "collaborationId": cid, "action": "sendMessage", "actor": actor, "at": utcnow()},
        )
        async with asyncio.timeout(5):  # this process's reader publishes it meanwhile
            while early_id not in live.realtime.hub.message_order(cid):
                await asyncio.sleep(0.01)
        client = await live.client(EDITOR)
        copy.apply(await client.subscribe(cid, **copy.since()))
        for frame in await client.quiet(0.5):
            copy.apply(frame)  # Copy refuses a message it already holds
        assert copy.snapshots == 1 and copy.catch_ups == 1  # a catch-up, not a snapshot
        assert sorted(copy.messages) == sorted(m["id"] for m in await live.messages(OWNER, cid))


async def test_a_message_committed_while_the_snapshot_is_read_is_sent_once():
    async with live_server() as live:
        cid = await team(live)
        # the subscribe reads the collaboration and its stream seq (store.stream.head), then the messages
        reader, messages = live.realtime.reader, live.runtime.store.stream
        handle, page = reader._handle, messages.head

        async def late_handle(change):  # the change stream a little behind the queries, as on a replica set
            await asyncio.sleep(0.1)
            await handle(change)

        async def page_meanwhile(*args, **kwargs):
            messages.head = page
            await live.runtime.engine.run("sendMessage", user(OWNER), cid, {"text": "while reading"})
            return await page(*args, **kwargs)

        reader._handle, messages.head = late_handle, page_meanwhile
        client, copy = await synced(live, EDITOR, cid)
        assert [m["text"] for m in copy.messages.values()] == ["while reading"]
        for frame in await client.quiet(0.6):
            copy.apply(frame)  # Copy refuses the message a second time
        await live.act(OWNER, "sendMessage", cid, {"text": "later"})
        copy.apply(await client.until("message_created"))
        assert [m["text"] for m in copy.messages.values()] == ["while reading", "later"]


async def _drain_messages(live, cid, copy):
    """One last resume picks up messages sent after the final update."""
    client = await live.client(VIEWER)
    frames = [await client.subscribe(cid, **copy.since())]
    frames += await client.quiet(0.3)
    await client.close()
    return frames


# -- slow consumers --------------------------------------------------------------------------------


async def slow_client(live) -> tuple[Client, socket.socket]:
    """A client whose kernel buffer is tiny and which stops reading after a frame or two."""
    host, port = live.server.url.split("//")[1].split(":")
    sock = socket.create_connection((host, int(port)))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    return await Client.open(live.ws_url, sock=sock, max_queue=1), sock


async def test_a_slow_consumer_is_closed_with_4009_while_a_fast_one_keeps_pace():
    async with live_server(ws_queue_size=8) as live:
        cid = await team(live)
        fast, fast_copy = await synced(live, OWNER, cid)
        slow, sock = await slow_client(live)
        await slow.auth(live.token(VIEWER))
        slow_copy = Copy()
        slow_copy.apply(await slow.subscribe(cid))
        slow_copy.apply(await slow.expect("snapshot"))
        slow._reader.cancel()  # stop reading: the socket fills up
        metrics = live.runtime.metrics
        text, sent = "x" * 3900, 0
        while metrics.slow_closes._value.get() == 0 and sent < 3000:
            await live.runtime.engine.run("updateDetails", user(OWNER), cid, {"description": f"{sent} {text}"})
            sent += 1
            if sent % 20 == 0:
                await asyncio.sleep(0)
        assert metrics.slow_closes._value.get() == 1, "the slow consumer was never closed"
        version = 3 + sent
        await follow(fast, fast_copy, version, timeout=3)  # the fast one has everything, at once
        assert fast_copy.version == version and live.realtime.hub.subscribers(cid) == 1
        # the slow one reads again (at full speed): what it was sent, then the close
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        with pytest.raises(ConnectionClosed):
            while True:
                slow_copy.apply(json.loads(await asyncio.wait_for(slow.ws.recv(), 5)))
        assert slow.ws.close_code == 4009
        assert slow_copy.version < version
        # and resumes with sinceVersion
        again = await live.client(VIEWER)
        slow_copy.apply(await again.subscribe(cid, **slow_copy.since()))
        await follow(again, slow_copy, version)
        assert slow_copy.doc == await live.snapshot(VIEWER, cid)


# -- the reader ------------------------------------------------------------------------------------


async def test_the_reader_resumes_after_an_error_without_loss_or_duplicates():
    async with live_server() as live:
        cid = await team(live)
        client, copy = await synced(live, EDITOR, cid)
        for i in range(5):
            await live.act(OWNER, "updateDetails", cid, {"title": f"before {i}"})
        live.runtime.handle.inject_change_stream_error(AutoReconnect("connection reset"))
        for i in range(5):
            await live.act(OWNER, "updateDetails", cid, {"title": f"after {i}"})
            await live.act(EDITOR, "sendMessage", cid, {"text": f"m{i}"})
        await follow(client, copy, 13)
        frames = await client.quiet(0.5)
        for frame in frames:
            copy.apply(frame)  # Copy refuses a repeated or skipped version
        assert copy.applied == list(range(4, 14)) and copy.doc == await live.snapshot(EDITOR, cid)
        assert sorted(m["text"] for m in copy.messages.values()) == [f"m{i}" for i in range(5)]
        assert live.runtime.metrics.reader_restarts.labels("error")._value.get() == 1
        assert live.realtime.reader.running


async def test_the_reader_survives_a_publish_that_raises_and_subscribers_resync():
    async with live_server() as live:
        cid = await team(live)
        client, _ = await synced(live, EDITOR, cid)
        reader, store = live.realtime.reader, live.runtime.store
        publish, failed = reader._publish, []

        def publish_once_failing(event):
            if not failed:
                failed.append(event)
                raise RuntimeError("a bug in the hub")
            publish(event)

        watch, reopen = store.watch_changes, asyncio.Event()

        @contextlib.asynccontextmanager
        async def held_watch(*args):  # hold the reopen, to see /api/ready while the reader is down
            await reopen.wait()
            async with watch(*args) as stream:
                yield stream

        reader._publish, store.watch_changes = publish_once_failing, held_watch
        await live.act(OWNER, "updateDetails", cid, {"title": "lost in the hub"})
        assert await client.until("resync_required") == {
            "type": "resync_required",
            "collaborationId": cid,
            "reason": "internal",
        }
        assert failed and not reader.running
        assert (await live.http.get("/api/ready")).status_code == 503
        reopen.set()
        for _ in range(100):
            if reader.running:
                break
            await asyncio.sleep(0.02)
        assert (await live.http.get("/api/ready")).status_code == 200
        client, copy = await synced(live, EDITOR, cid)  # the client subscribes again, as told
        await live.act(OWNER, "updateDetails", cid, {"title": "delivered"})
        await live.act(OWNER, "sendMessage", cid, {"text": "and this"})
        await follow(client, copy, 5)
        assert copy.doc == await live.snapshot(EDITOR, cid)
        assert (await client.until("message_created"))["message"]["text"] == "and this"
        assert live.runtime.metrics.reader_restarts.labels("internal")._value.get() == 1
        server, task = live.server, reader._task
        assert not task.done()  # still reading: it did not die of the error
    assert server._task.exception() is None and task.cancelled()  # stopped by the shutdown, cleanly


async def test_stopping_a_reader_that_died_of_an_error_does_not_raise():
    async def died():
        raise RuntimeError("boom")

    reader = ChangeReader(store=None, publish=lambda event: None, lost=lambda reason: 0)
    reader._task = asyncio.get_running_loop().create_task(died())
    await asyncio.sleep(0)
    assert not reader.running
    await reader.stop()  # logged, not raised: the app's shutdown goes on


async def test_lost_history_tells_every_subscriber_to_resync():
    async with live_server(change_history=5) as live:
        first, second = await team(live), await team(live)
        clients = [(await synced(live, OWNER, cid))[0] for cid in (first, second)]
        for i in range(12):  # no await yields in between: the reader falls out of the history
            await live.runtime.handle.db["scratch"].insert_one({"i": i})
        for client, cid in zip(clients, (first, second)):
            resync = await client.until("resync_required")
            assert resync == {"type": "resync_required", "collaborationId": cid, "reason": "history_lost"}
        assert live.runtime.metrics.reader_restarts.labels("history_lost")._value.get() == 1
        await live.act(OWNER, "updateDetails", first, {"title": "after"})
        assert await clients[0].quiet(0.3) == []  # the subscription ended with the resync
        client, copy = await synced(live, OWNER, first)  # subscribing again: a fresh snapshot, then live
        await live.act(OWNER, "updateDetails", first, {"title": "live again"})
        await follow(client, copy, 5)
        assert copy.snapshots == 1 and copy.doc == await live.snapshot(OWNER, first)


# -- membership and roles --------------------------------------------------------------------------


async def test_a_member_removed_while_subscribing_never_gets_a_message_sent_after_the_removal():
    async with live_server() as live:
        cid = await team(live)
        store, injected = live.runtime.store, asyncio.Event()

        def after_first_read(read):  # whichever of the two reads comes first, the removal lands right after it
            async def patched(*args, **kwargs):
                result = await read(*args, **kwargs)
                if not injected.is_set():
                    injected.set()
                    await live.runtime.engine.run("removeMember", user(OWNER), cid, {"userId": dev_user_id(VIEWER)})
                    await live.runtime.engine.run("sendMessage", user(OWNER), cid, {"text": "after the removal"})
                return result

            return patched

        store.stream.latest_messages = after_first_read(store.stream.latest_messages)  # the subscribe's reads
        store.stream.head = after_first_read(store.stream.head)
        client = await live.client(VIEWER)
        await client.send(type="subscribe", collaborationId=cid)
        frames = [await client.next()] + await client.quiet(0.5)
        assert injected.is_set()
        texts = [m["text"] for f in frames for m in f.get("messages", [])] + [
            f["message"]["text"] for f in frames if f["type"] == "message_created"
        ]
        assert "after the removal" not in texts, frames
        assert frames[-1]["type"] in ("error", "membership_removed"), frames


async def test_a_member_removed_while_their_presence_is_written_is_not_left_present():
    async with live_server() as live:
        cid = await team(live)
        viewer, _ = await synced(live, VIEWER, cid)
        owner, _ = await synced(live, OWNER, cid)
        keeper, gate, writing, written = live.realtime.presence, asyncio.Event(), asyncio.Event(), asyncio.Event()
        join = keeper.join

        async def slow_join(*args):
            writing.set()
            await gate.wait()  # the removal is handled while the presence write is on its way
            await join(*args)
            written.set()

        keeper.join = slow_join
        await viewer.send(type="presence", collaborationId=cid, state={"here": True})
        await asyncio.wait_for(writing.wait(), 5)
        await live.act(OWNER, "removeMember", cid, {"userId": dev_user_id(VIEWER)})
        assert await viewer.until(lambda f: f["type"] != "presence") == {
            "type": "membership_removed",
            "collaborationId": cid,
        }
        gate.set()
        await asyncio.wait_for(written.wait(), 5)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 3
        while await live.runtime.store.presence.for_collaboration(cid) and loop.time() < deadline:
            await asyncio.sleep(0.05)
        assert await live.runtime.store.presence.for_collaboration(cid) == []  # not kept alive by heartbeats
        last = [f for f in await owner.quiet(0.3) if f["type"] == "presence"]
        assert not last or last[-1]["members"] == []  # the owner does not see the removed viewer present


async def test_approvals_go_to_owners_only_as_roles_change():
    async with live_server() as live:
        cid = await team(live)
        owner, _ = await synced(live, OWNER, cid)
        editor, _ = await synced(live, EDITOR, cid)
        proposed = await live.runtime.engine.run("archiveCollaboration", Actor.ai("run_1"), cid, {})
        created = await owner.until("approval_created")
        assert created["approval"]["id"] == proposed.approval["_id"] and "_id" not in created["approval"]
        assert [f["type"] for f in await editor.quiet(0.3)] == []
        await live.act(OWNER, "changeRole", cid, {"userId": dev_user_id(EDITOR), "role": "owner"})
        await editor.until("collaboration_updated")
        await live.runtime.engine.run("archiveCollaboration", Actor.ai("run_2"), cid, {})
        assert (await editor.until("approval_created"))["approval"]["proposedBy"]["runId"] == "run_2"
        await live.act(EDITOR, "changeRole", cid, {"userId": dev_user_id(EDITOR), "role": "viewer"})
        await editor.until("collaboration_updated")
        await live.runtime.engine.run("archiveCollaboration", Actor.ai("run_3"), cid, {})
        await owner.until(lambda f: f["type"] == "approval_created" and f["approval"]["proposedBy"]["runId"] == "run_3")
        assert [f["type"] for f in await editor.quiet(0.3)] == []


# -- presence --------------------------------------------------------------------------------------


async def test_presence_joins_and_leaves_across_two_api_processes(store):
    first = await open_runtime(store)
    # A second process on the same database (its own reader, hub and presence keeper).
    second = await open_runtime(store, handle=first.handle, mongodb_db=first.settings.mongodb_db)
    try:
        async with live_server(first) as one, live_server(second) as two:
            cid = await team(one)
            alice, _ = await synced(one, OWNER, cid)
            bob, _ = await synced(two, EDITOR, cid)
            await alice.send(type="presence", collaborationId=cid, state={"cursor": 1})
            seen = await bob.until("presence")
            assert [(m["userId"], m["state"]) for m in seen["members"]] == [(dev_user_id(OWNER), {"cursor": 1})]
            assert seen["members"][0]["since"].endswith("Z")
            await bob.send(type="presence", collaborationId=cid, state={"cursor": 2})
            both = await alice.until(lambda f: f["type"] == "presence" and len(f["members"]) == 2)
            assert {m["userId"] for m in both["members"]} == {dev_user_id(OWNER), dev_user_id(EDITOR)}
            late, _ = await _late_joiner(two, cid)
            assert {m["userId"] for m in late["members"]} == {dev_user_id(OWNER), dev_user_id(EDITOR)}
            await alice.close()  # leaving: on process one, seen on process two
            left = await bob.until(lambda f: f["type"] == "presence" and len(f["members"]) == 1)
            assert left["members"][0]["userId"] == dev_user_id(EDITOR)
            await bob.send(type="unsubscribe", collaborationId=cid)
            await bob.until("unsubscribed")
            assert await one.runtime.store.presence.for_collaboration(cid) == []
    finally:
        await second.verifier.aclose()
        await second.directory.aclose()
        await close_runtime(first)


async def _late_joiner(live, cid):
    client = await live.client(VIEWER)
    await client.subscribe(cid)
    await client.expect("snapshot")
    return await client.expect("presence"), client


async def test_presence_heartbeats_send_nothing():
    async with live_server(presence_ttl=1) as live:  # a heartbeat every 0.5 s
        cid = await team(live)
        alice, _ = await synced(live, OWNER, cid)
        await alice.send(type="presence", collaborationId=cid, state={})
        await alice.expect("presence")
        assert await alice.quiet(1.6) == []
        docs = await live.runtime.store.presence.for_collaboration(cid)
        assert len(docs) == 1  # kept alive past its 1 s TTL by the heartbeats
