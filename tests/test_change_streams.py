"""Change streams: the embedded store must produce what MongoDB produces.

Tests taking `any_store_handle` run on the embedded store and, with
MONGODB_URI set (a replica set, MongoDB 6.0+), on real MongoDB too. Tests
taking `store_handle` are embedded only: they drive what only the emulation
can do (a tiny history, injected errors, closing under a waiting stream).
"""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from datetime import datetime, timezone
from typing import Any

import pytest
from bson import Timestamp
from hypothesis import given
from hypothesis import strategies as st
from pymongo import ReturnDocument
from pymongo.errors import AutoReconnect, BulkWriteError, DuplicateKeyError, OperationFailure

from backend.settings import test_settings
from backend.store.client import open_database
from backend.store.failures import EmbeddedUnsupported, history_lost
from backend.store.updates import update_description

QUICK = 200  # ms that try_next waits on a quiet stream


async def take(stream: Any, count: int = 1, timeout: float = 5.0) -> list[dict]:
    return [await asyncio.wait_for(stream.next(), timeout) for _ in range(count)]


async def one(stream: Any) -> dict:
    return (await take(stream))[0]


def keys(changes: list[dict]) -> list[tuple[str, Any]]:
    return [(c["operationType"], c["documentKey"]["_id"]) for c in changes]


def apply(doc: dict, description: dict) -> dict:
    """What a client does with an update event: set updatedFields, drop removedFields."""
    doc = _copy(doc)
    for path in description["removedFields"]:
        *parents, last = path.split(".")
        del _walk(doc, parents)[last]
    for path, value in description["updatedFields"].items():
        *parents, last = path.split(".")
        parent = _walk(doc, parents)
        if isinstance(parent, list) and int(last) == len(parent):
            parent.append(value)
        elif isinstance(parent, list):
            parent[int(last)] = value
        else:
            parent[last] = value
    return doc


def _walk(node: Any, parts: list[str]) -> Any:
    for part in parts:
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


# -- the shape of each event -------------------------------------------------------------------


async def test_insert_event(any_store_handle):
    db = any_store_handle.db
    at = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=timezone.utc)
    async with db.things.watch() as stream:
        await db.things.insert_one({"_id": "t1", "title": "Plan", "at": at})
        change = await one(stream)
    assert change["operationType"] == "insert"
    assert change["ns"] == {"db": db.name, "coll": "things"}
    assert change["documentKey"] == {"_id": "t1"}
    assert change["fullDocument"] == {"_id": "t1", "title": "Plan", "at": at}
    assert change["fullDocument"]["at"].utcoffset().total_seconds() == 0
    assert list(change["_id"]) == ["_data"] and isinstance(change["_id"]["_data"], str)
    assert isinstance(change["clusterTime"], Timestamp)
    assert change["wallTime"].tzinfo is not None


BASE = {"_id": "t1", "settings": {"timezone": "UTC", "locale": "en"}, "tags": ["a", "b", "c"], "note": "x"}


@pytest.mark.parametrize(
    ("update", "updated", "removed"),
    [
        ({"$set": {"settings.timezone": "Europe/Paris"}}, {"settings.timezone": "Europe/Paris"}, []),
        ({"$set": {"tags.1": "B"}}, {"tags.1": "B"}, []),
        ({"$push": {"tags": "d"}}, {"tags.3": "d"}, []),
        ({"$pull": {"tags": "b"}}, {"tags": ["a", "c"]}, []),
        ({"$unset": {"note": ""}}, {}, ["note"]),
        ({"$unset": {"settings.locale": ""}, "$inc": {"version": 1}}, {"version": 1}, ["settings.locale"]),
    ],
    ids=["set-nested", "set-element", "push", "pull", "unset", "unset-nested-and-inc"],
)
async def test_update_event(any_store_handle, update, updated, removed):
    coll = any_store_handle.db.things
    await coll.insert_one(dict(BASE))
    async with coll.watch() as stream:
        await coll.update_one({"_id": "t1"}, update)
        change = await one(stream)
    assert change["operationType"] == "update"
    assert change["documentKey"] == {"_id": "t1"}
    description = change["updateDescription"]
    assert description["updatedFields"] == updated
    assert description["removedFields"] == removed
    assert description.get("truncatedArrays", []) == []
    assert "fullDocument" not in change
    assert apply(BASE, description) == await coll.find_one({"_id": "t1"})


async def test_replace_and_delete_events(any_store_handle):
    coll = any_store_handle.db.things
    await coll.insert_one({"_id": "t1", "title": "Old", "tags": ["a"]})
    async with coll.watch() as stream:
        await coll.replace_one({"_id": "t1"}, {"title": "New"})
        await coll.delete_one({"_id": "t1"})
        replaced, deleted = await take(stream, 2)
    assert replaced["operationType"] == "replace"
    assert replaced["fullDocument"] == {"_id": "t1", "title": "New"}
    assert replaced["documentKey"] == {"_id": "t1"}
    assert deleted["operationType"] == "delete"
    assert deleted["documentKey"] == {"_id": "t1"}
    assert "fullDocument" not in deleted and "updateDescription" not in deleted


async def test_every_write_method_reports_its_changes(any_store_handle):
    coll = any_store_handle.db.things
    async with coll.watch() as stream:
        await coll.insert_many([{"_id": 1, "n": 1}, {"_id": 2, "n": 2}])
        await coll.update_many({}, {"$inc": {"n": 10}})
        await coll.update_one({"_id": 3}, {"$set": {"n": 3}}, upsert=True)
        await coll.find_one_and_update({"_id": 1}, {"$set": {"x": True}})
        await coll.update_one({"_id": 1}, {"$set": {"x": True}})  # changes nothing: no event
        await coll.find_one_and_replace({"_id": 2}, {"n": 0})
        await coll.find_one_and_update({"_id": 4}, {"$set": {"n": 4}}, upsert=True)
        await coll.find_one_and_delete({"_id": 4})
        await coll.delete_one({"_id": 3})
        await coll.delete_many({})
        changes = await take(stream, 12)
    assert keys(changes) == [
        ("insert", 1),
        ("insert", 2),
        ("update", 1),
        ("update", 2),
        ("insert", 3),
        ("update", 1),
        ("replace", 2),
        ("insert", 4),
        ("delete", 4),
        ("delete", 3),
        ("delete", 1),
        ("delete", 2),
    ]
    assert changes[4]["fullDocument"] == {"_id": 3, "n": 3}
    assert changes[6]["fullDocument"] == {"_id": 2, "n": 0}


async def test_positional_update_changes_the_matched_element(any_store_handle):
    coll = any_store_handle.db.things
    await coll.insert_one({"_id": "c1", "acts": [{"id": "a1", "s": "open"}, {"id": "a2", "s": "open"}]})
    async with coll.watch() as stream:
        doc = await coll.find_one_and_update(
            {"_id": "c1", "acts.id": "a2"}, {"$set": {"acts.$.s": "done"}}, return_document=ReturnDocument.AFTER
        )
        change = await one(stream)
    assert [a["s"] for a in doc["acts"]] == ["open", "done"]
    assert change["updateDescription"]["updatedFields"] == {"acts.1.s": "done"}


async def test_a_failed_write_reports_what_it_did_change(any_store_handle):
    coll = any_store_handle.db.things
    await coll.create_index("k", unique=True)
    await coll.insert_one({"_id": 0, "k": "taken"})
    async with coll.watch() as stream:
        with pytest.raises(BulkWriteError):
            await coll.insert_many([{"_id": 1, "k": "one"}, {"_id": 2, "k": "taken"}, {"_id": 3, "k": "three"}])
        with pytest.raises(DuplicateKeyError):
            await coll.update_one({"_id": 1}, {"$set": {"k": "taken"}})
        await coll.delete_one({"_id": 1})
        changes = await take(stream, 2)
    assert keys(changes) == [("insert", 1), ("delete", 1)]


# -- what a stream sees ------------------------------------------------------------------------


async def test_database_watch_sees_every_collection_collection_watch_only_its_own(any_store_handle):
    db = any_store_handle.db
    async with db.watch() as everything, db.alpha.watch(max_await_time_ms=QUICK) as alpha:
        await db.alpha.insert_one({"_id": "a"})
        await db.beta.insert_one({"_id": "b"})
        await db.alpha.delete_one({"_id": "a"})
        seen = await take(everything, 3)
        mine = await take(alpha, 2)
        assert await alpha.try_next() is None
    assert [(c["ns"]["coll"], c["operationType"]) for c in seen] == [
        ("alpha", "insert"),
        ("beta", "insert"),
        ("alpha", "delete"),
    ]
    assert [(c["ns"]["coll"], c["operationType"]) for c in mine] == [("alpha", "insert"), ("alpha", "delete")]


async def test_match_stage_filters_events(any_store_handle):
    db = any_store_handle.db
    pipeline = [{"$match": {"operationType": {"$in": ["insert", "delete"]}, "ns.coll": "alpha"}}]
    async with db.watch(pipeline, max_await_time_ms=QUICK) as stream:
        await db.alpha.insert_one({"_id": "a", "n": 1})
        await db.alpha.update_one({"_id": "a"}, {"$set": {"n": 2}})
        await db.beta.insert_one({"_id": "b"})
        await db.alpha.delete_one({"_id": "a"})
        changes = await take(stream, 2)
        assert await stream.try_next() is None
    assert keys(changes) == [("insert", "a"), ("delete", "a")]


async def test_update_lookup_reads_the_document_as_it_is_now(any_store_handle):
    coll = any_store_handle.db.things
    await coll.insert_one({"_id": "t1", "n": 0})
    async with coll.watch(full_document="updateLookup") as stream:
        await coll.update_one({"_id": "t1"}, {"$set": {"n": 1}})
        first = await one(stream)
        await coll.update_one({"_id": "t1"}, {"$set": {"n": 2}})
        await coll.update_one({"_id": "t1"}, {"$set": {"n": 3}})
        second, _ = await take(stream, 2)
        await coll.update_one({"_id": "t1"}, {"$set": {"n": 4}})
        await coll.delete_one({"_id": "t1"})
        gone, _ = await take(stream, 2)
    assert first["fullDocument"] == {"_id": "t1", "n": 1}
    assert second["updateDescription"]["updatedFields"] == {"n": 2}
    assert second["fullDocument"] == {"_id": "t1", "n": 3}  # looked up when read, not when changed
    assert gone["fullDocument"] is None


async def test_match_sees_the_looked_up_document(any_store_handle):
    coll = any_store_handle.db.things
    await coll.insert_one({"_id": "t1", "status": "todo"})
    pipeline = [{"$match": {"operationType": "update", "fullDocument.status": "done"}}]
    async with coll.watch(pipeline, full_document="updateLookup", max_await_time_ms=QUICK) as stream:
        await coll.update_one({"_id": "t1"}, {"$set": {"status": "doing"}})
        assert await stream.try_next() is None
        await coll.update_one({"_id": "t1"}, {"$set": {"status": "done"}})
        change = await one(stream)
    assert change["updateDescription"]["updatedFields"] == {"status": "done"}


async def test_a_stream_starts_when_entered_not_when_created(any_store_handle):
    coll = any_store_handle.db.things
    stream = coll.watch()
    await coll.insert_one({"_id": "before"})
    async with stream:
        await coll.insert_one({"_id": "after"})
        change = await one(stream)
    assert change["documentKey"] == {"_id": "after"}


# -- resuming ----------------------------------------------------------------------------------


@pytest.mark.parametrize("option", ["resume_after", "start_after"])
async def test_resuming_replays_exactly_the_events_after_the_token(any_store_handle, option):
    coll = any_store_handle.db.things
    async with coll.watch() as stream:
        for i in range(3):
            await coll.insert_one({"_id": i})
        first, *_ = await take(stream, 3)
    async with coll.watch(max_await_time_ms=QUICK, **{option: first["_id"]}) as stream:
        await coll.insert_one({"_id": 3})
        resumed = await take(stream, 3)
        assert await stream.try_next() is None
    assert keys(resumed) == [("insert", 1), ("insert", 2), ("insert", 3)]


async def test_try_next_is_none_when_idle_and_the_resume_token_advances(any_store_handle):
    db = any_store_handle.db
    async with db.alpha.watch(max_await_time_ms=QUICK) as stream:
        opened = stream.resume_token
        assert opened is not None
        assert await stream.try_next() is None
        await db.beta.insert_one({"_id": "elsewhere"})
        assert await stream.try_next() is None
        quiet = stream.resume_token
    assert quiet != opened
    async with db.alpha.watch(resume_after=quiet) as stream:
        await db.alpha.insert_one({"_id": "later"})
        change = await one(stream)
    assert change["documentKey"] == {"_id": "later"}


async def test_history_lost_raises_code_286():  # embedded only: a history of three events
    handle = await open_database(test_settings(change_history=3))
    coll = handle.db.things
    try:
        tokens = []
        async with coll.watch() as stream:
            for i in range(5):
                await coll.insert_one({"_id": i})
                tokens.append((await one(stream))["_id"])
        stale = coll.watch(resume_after=tokens[0])  # like motor: nothing is checked before it starts
        with pytest.raises(OperationFailure) as lost:
            async with stale:
                await stale.next()
        assert lost.value.code == 286
        assert lost.value.details["codeName"] == "ChangeStreamHistoryLost"
        assert "resume point may no longer be in the oplog" in str(lost.value)
        async with coll.watch(resume_after=tokens[1]) as kept:
            assert keys(await take(kept, 3)) == [("insert", 2), ("insert", 3), ("insert", 4)]
    finally:
        await handle.close()


async def test_a_token_from_an_earlier_process_is_history_lost(store_handle):  # embedded only
    with pytest.raises(OperationFailure) as lost:
        async with store_handle.db.watch(resume_after={"_data": "820000000100000001"}):
            pass
    assert lost.value.code == 286


async def test_a_stream_that_falls_behind_the_history_fails_as_the_server_does():  # embedded only
    """A getMore whose oplog entries are gone fails with CappedPositionLost (136, not
    resumable: the stream closes); resuming from its token then fails with 286."""
    handle = await open_database(test_settings(change_history=3))
    coll = handle.db.things
    try:
        async with coll.watch() as stream:
            for i in range(5):
                await coll.insert_one({"_id": i})
            with pytest.raises(OperationFailure) as lost:
                await stream.next()
            assert lost.value.code == 136
            assert lost.value.details["codeName"] == "CappedPositionLost"
            assert history_lost(lost.value)
            assert not stream.alive
            token = stream.resume_token
        with pytest.raises(OperationFailure) as resumed:
            async with coll.watch(resume_after=token):
                pass
        assert resumed.value.code == 286
    finally:
        await handle.close()


# -- many readers, errors and closing -----------------------------------------------------------


async def test_concurrent_streams_each_see_every_event_in_order(any_store_handle):
    coll = any_store_handle.db.things
    per_writer = 10
    async with AsyncExitStack() as stack:
        streams = [await stack.enter_async_context(coll.watch()) for _ in range(3)]
        readers = [asyncio.create_task(take(s, 2 * per_writer)) for s in streams]

        async def writer(name: str) -> None:
            for i in range(per_writer):
                await coll.insert_one({"_id": f"{name}{i}"})
                await asyncio.sleep(0)

        await asyncio.gather(writer("a"), writer("b"))
        seen = await asyncio.gather(*readers)
    assert seen[0] == seen[1] == seen[2]
    ids = [c["documentKey"]["_id"] for c in seen[0]]
    assert [i for i in ids if i[0] == "a"] == [f"a{i}" for i in range(per_writer)]
    assert [i for i in ids if i[0] == "b"] == [f"b{i}" for i in range(per_writer)]
    times = [c["clusterTime"] for c in seen[0]]
    assert times == sorted(times) and len(set(times)) == len(times)


async def test_injected_error_closes_the_stream_and_a_resume_misses_nothing(store_handle):  # embedded only
    coll = store_handle.db.things
    async with coll.watch() as stream:
        await coll.insert_one({"_id": 1})
        await one(stream)
        token = stream.resume_token
        store_handle.inject_change_stream_error(OperationFailure("injected failure", 8000))
        await coll.insert_one({"_id": 2})
        with pytest.raises(OperationFailure, match="injected failure"):
            await stream.next()
        assert not stream.alive
        with pytest.raises(StopAsyncIteration):
            await stream.next()
    async with coll.watch(resume_after=token) as stream:
        assert keys([await one(stream)]) == [("insert", 2)]


async def test_injected_resumable_error_is_raised_once_and_the_stream_goes_on(store_handle):  # embedded only
    coll = store_handle.db.things
    async with coll.watch() as stream:
        store_handle.inject_change_stream_error(AutoReconnect("connection reset"))
        await coll.insert_one({"_id": 1})
        with pytest.raises(AutoReconnect):
            await stream.next()
        assert stream.alive
        assert keys([await one(stream)]) == [("insert", 1)]


async def test_injected_error_wakes_a_waiting_stream(store_handle):  # embedded only
    async with store_handle.db.things.watch() as stream:
        waiting = asyncio.create_task(stream.next())
        await asyncio.sleep(0.01)
        store_handle.inject_change_stream_error(OperationFailure("injected failure", 8000))
        with pytest.raises(OperationFailure):
            await asyncio.wait_for(waiting, 1)


async def test_a_cancel_that_arrives_with_a_wakeup_is_not_lost(store_handle):  # embedded only
    """A waiting stream cancelled in the same tick as an unrelated write still stops.

    With asyncio.wait_for (Python 3.11) the cancel was swallowed when the wakeup
    fired first, the stream went back to waiting, and a shutdown hung."""
    async with store_handle.db.things.watch(max_await_time_ms=5000) as stream:
        for _ in range(20):
            waiting = asyncio.create_task(stream.try_next())
            await asyncio.sleep(0.01)
            await store_handle.db.others.insert_one({})  # wakes the stream; nothing for it
            waiting.cancel()
            with pytest.raises(asyncio.CancelledError):
                await asyncio.wait_for(waiting, 1)


async def test_closing_a_stream_ends_async_for(store_handle):  # embedded only
    stream = store_handle.db.things.watch()
    seen: list[dict] = []

    async def read() -> None:
        async with stream:
            async for change in stream:
                seen.append(change)

    reader = asyncio.create_task(read())
    await asyncio.sleep(0.01)
    await store_handle.db.things.insert_one({"_id": 1})
    await asyncio.sleep(0.01)
    await stream.close()
    await asyncio.wait_for(reader, 1)
    assert keys(seen) == [("insert", 1)]


async def test_closing_the_database_ends_open_streams():  # embedded only
    handle = await open_database(test_settings())
    async with handle.db.things.watch(max_await_time_ms=QUICK) as stream:
        waiting = asyncio.create_task(stream.next())
        await asyncio.sleep(0.01)
        await handle.close()
        with pytest.raises(StopAsyncIteration):
            await asyncio.wait_for(waiting, 1)
        assert not stream.alive
        assert await stream.try_next() is None


def test_watch_refuses_what_it_cannot_emulate(store_handle):  # embedded only
    with pytest.raises(EmbeddedUnsupported, match="the whole client"):
        store_handle.client.watch()
    with pytest.raises(EmbeddedUnsupported, match="collation"):
        store_handle.db.things.watch(collation={"locale": "fr"})
    with pytest.raises(NotImplementedError, match=r"\$match"):
        store_handle.db.things.watch([{"$project": {"fullDocument": 1}}])
    with pytest.raises(NotImplementedError, match="whenAvailable"):
        store_handle.db.things.watch(full_document="whenAvailable")


# -- updateDescription, for any pair of documents ----------------------------------------------

_scalars = st.none() | st.booleans() | st.integers(-3, 3) | st.text("xy", max_size=2)
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from("abc"), inner, max_size=3),
    max_leaves=8,
)
_documents = st.dictionaries(st.sampled_from("abcd"), _values, max_size=4)


@given(_documents, _documents)
def test_applying_an_update_description_rebuilds_the_new_document(before, after):
    description = update_description(before, after)
    assert description["truncatedArrays"] == []
    assert apply(before, description) == after


# -- the change reader and the events that end a stream (drop, rename, dropDatabase, invalidate) --


async def test_the_reader_resyncs_everyone_after_a_drop_and_reads_on(any_store_handle):
    """A drop of a watched collection is no change to publish and has no documentKey: the reader
    reopens its stream and tells every subscriber to resync (after the new stream is open), then
    goes on publishing. Same for dropDatabase, whose invalidate ends the stream."""
    from backend.realtime.changes import ChangeReader
    from backend.store.store import Store

    store = Store(any_store_handle, test_settings())
    published: list = []
    lost: list[str] = []
    reader = ChangeReader(store, published.append, lost.append, max_await_ms=50)
    await reader.start()
    try:
        db = any_store_handle.db
        await db.messages.insert_one({"_id": "msg_1", "collaborationId": "col_1", "text": "before"})
        await db.messages.drop()
        await wait_until(lambda: lost == ["invalidated"] and reader.running)
        await db.messages.insert_one({"_id": "msg_2", "collaborationId": "col_1", "text": "after"})
        await wait_until(
            lambda: [e.body["message"]["id"] for e in published if e.type == "message_created"] == ["msg_1", "msg_2"]
        )
        await any_store_handle.client.drop_database(db.name)  # on MongoDB its drops may span reopenings
        await wait_until(lambda: len(lost) >= 2 and set(lost) == {"invalidated"} and reader.running)
        assert all(e.type == "message_created" for e in published)
    finally:
        await reader.stop()


async def wait_until(condition, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


# -- only a real replica set: a primary step-down ---------------------------------------------------


@pytest.mark.mongodb
async def test_a_stream_resumes_across_a_primary_step_down(real_store_handle):
    """replSetStepDown closes every connection of the primary; the change stream's next read
    meets a resumable error, resumes from its token once a primary is back, and misses nothing.
    The embedded store has no primary: its resumable-error retry is tested with an injected error."""
    from pymongo.errors import PyMongoError

    client, coll = real_store_handle.client, real_store_handle.db.things
    async with coll.watch(max_await_time_ms=500) as stream:
        await coll.insert_one({"_id": 1})
        assert keys([await one(stream)]) == [("insert", 1)]
        try:
            await client.admin.command({"replSetStepDown": 15, "secondaryCatchUpPeriodSecs": 5, "force": True})
        except PyMongoError:
            pass  # the primary drops its connections, this one too
        deadline = asyncio.get_running_loop().time() + 60
        while True:  # the single node is elected again once its step-down period is over
            try:
                if (await client.admin.command("hello")).get("isWritablePrimary"):
                    break
            except PyMongoError:
                pass
            assert asyncio.get_running_loop().time() < deadline, "no primary again within 60 s"
            await asyncio.sleep(0.5)
        await coll.insert_one({"_id": 2})
        assert keys([await asyncio.wait_for(stream.next(), 60)]) == [("insert", 2)]


async def test_the_reader_recovers_when_its_match_drops_the_invalidate(any_store_handle):
    """dropDatabase with no watched collection in it: the drop, dropDatabase and invalidate events
    all miss the reader's ns.coll filter, so the stream just ends (as on MongoDB, see
    jstests/change_streams/start_after_invalidation_exception.js). Resuming after its token, the
    invalidate's, is refused (260), so the reader starts afresh and every subscriber resyncs."""
    from backend.realtime.changes import ChangeReader
    from backend.store.store import Store

    store = Store(any_store_handle, test_settings())
    lost: list[str] = []
    reader = ChangeReader(store, lambda event: None, lost.append, max_await_ms=50)
    db = any_store_handle.db
    for name in await db.list_collection_names():
        await db.drop_collection(name)
    await db.scratch.insert_one({"_id": 1})
    await reader.start()
    try:
        await any_store_handle.client.drop_database(db.name)
        await wait_until(lambda: lost == ["history_lost"] and reader.running)
    finally:
        await reader.stop()


# -- describe_update: what a client rebuilds from it ---------------------------------------------


def apply_all(doc: dict, description: dict) -> dict:
    """`apply`, with truncatedArrays (arrays cut to newSize before the updated fields are set)."""
    doc = apply(doc, {"removedFields": description["removedFields"], "updatedFields": {}})
    for entry in description["truncatedArrays"]:
        *parents, last = entry["field"].split(".")
        parent = _walk(doc, parents)
        key = int(last) if isinstance(parent, list) else last
        parent[key] = parent[key][: entry["newSize"]]
    return apply(doc, {"removedFields": [], "updatedFields": description["updatedFields"]})


@given(_documents, _documents)
def test_a_pipeline_description_rebuilds_the_new_document(before, after):
    from backend.store.updates import describe_update

    described = describe_update([{"$replaceWith": "any pipeline"}], before, after)
    if described is None:
        assert before == after
    elif described[0] == "update":
        assert apply_all(before, described[1]) == after


async def test_operator_update_events_rebuild_the_stored_document(store_handle):  # embedded only
    """Random operator updates on random documents: applying each event's updateDescription to
    the document before gives the document stored after (whole fields, arr.N appends, created
    parents, positional paths)."""
    import random

    rng = random.Random(14)
    coll = store_handle.db.things

    def value() -> Any:
        return rng.choice([1, 2.5, "x", None, True, [1, 2], {"k": 1}, [], {}])

    def document(_id: int) -> dict:
        return {
            "_id": _id,
            "a": value(),
            "s": {"x": value(), "y": {"z": 1}},
            "arr": [value() for _ in range(3)],
            "list": [{"id": i, "v": value()} for i in range(rng.randrange(3))],
        }

    def update() -> tuple[dict, dict]:
        n = rng.randrange(3)
        return rng.choice(
            [
                ({}, {"$set": {"a": value()}}),
                ({}, {"$set": {"s": {"x": value(), "y": {"z": 2}}}}),
                ({}, {"$set": {"s.y.z": rng.randrange(3)}}),
                ({}, {"$set": {"new.deep.field": value()}}),
                ({}, {"$unset": {rng.choice(["a", "s.x", "arr.1", "nothing"]): ""}}),
                ({}, {"$inc": {"counter": 1}}),
                ({}, {"$push": {"arr": value()}}),
                ({}, {"$push": {"arr": {"$each": [value(), value()], "$position": rng.randrange(5)}}}),
                ({}, {"$push": {"arr": {"$each": [value()], "$slice": -2}}}),
                ({}, {"$push": {"fresh": value()}}),
                ({}, {"$addToSet": {"arr": value()}}),
                ({}, {"$pull": {"arr": value()}}),
                ({}, {"$pop": {"arr": rng.choice([1, -1])}}),
                ({}, {"$rename": {"a": "b"}}),
                ({"list.id": n}, {"$set": {"list.$.v": value()}}),
                ({}, [{"$set": {"a": value(), "arr": [value() for _ in range(rng.randrange(4))]}}]),
                ({}, [{"$unset": ["s.x"]}]),
            ]
        )

    async with coll.watch(max_await_time_ms=0) as stream:
        for step in range(400):
            _id = rng.randrange(4)
            if await coll.find_one({"_id": _id}) is None:
                await coll.insert_one(document(_id))
                await stream.try_next()
            before = await coll.find_one({"_id": _id})
            extra, spec = update()
            try:
                await coll.update_one({"_id": _id, **extra}, spec)
            except OperationFailure:
                continue  # a $push onto a non-array and the like: refused, nothing written
            after = await coll.find_one({"_id": _id})
            event = await stream.try_next()
            if before == after and (event is None or event["operationType"] != "update"):
                assert event is None, (step, spec)
                continue
            assert event is not None, (step, spec)
            if event["operationType"] == "replace":
                assert event["fullDocument"] == after
            else:
                assert apply_all(before, event["updateDescription"]) == after, (step, spec, event["updateDescription"])
