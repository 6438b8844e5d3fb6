"""The embedded store's change events against MongoDB's own specification.

Every case runs on the embedded store and, with MONGODB_URI set (`make test-mongodb`), on a
real replica set: the expectations are MongoDB's, and the embedded run must meet them. Each
case names where its expectation comes from:

- mongodb/specifications: source/change-streams/change-streams.md and its unified tests
  source/change-streams/tests/unified/change-streams.yml, change-streams-errors.yml;
- mongodb/mongo: jstests/change_streams/*.js, and the update nodes that decide what an
  update logs, src/mongo/db/update/{modifier_node,set_node,push_node,addtoset_node}.cpp and
  document_diff_calculator.cpp (pipeline updates).

Where the emulation refuses instead (EmbeddedUnsupported), the case says so and checks the
server's answer on the real run.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from bson import Timestamp
from pymongo.errors import AutoReconnect, OperationFailure

from backend.store.failures import EmbeddedUnsupported

WAIT = 10  # seconds a real replica set gets to deliver an event


async def change(stream: Any) -> dict:
    return await asyncio.wait_for(stream.next(), WAIT)


async def described(handle: Any, document: dict, update: Any, **kwargs: Any) -> dict | None:
    """The updateDescription MongoDB reports for `update` on `document` (None: no event)."""
    coll = handle.db.spec
    await coll.insert_one(document)
    async with coll.watch(max_await_time_ms=200) as stream:
        await coll.update_one({"_id": document["_id"]}, update, **kwargs)
        await coll.insert_one({"_id": "marker"})  # the next event: shows whether the update made one
        event = await change(stream)
    if event["operationType"] == "insert":
        return None
    assert event["operationType"] == "update", event
    return event["updateDescription"]


def fields(updated: dict, removed: list | None = None, truncated: list | None = None) -> dict:
    return {"updatedFields": updated, "removedFields": removed or [], "truncatedArrays": truncated or []}


# -- 1. updateDescription as the server logs an operator update --------------------------------


# src/mongo/db/update/modifier_node.cpp (applyToExistingElement -> logUpdatedField(pathTaken,
# element)): $set of an existing field logs that field whole, even a sub-document or an array.
async def test_set_of_an_existing_sub_document_reports_the_field_whole(any_store_handle):
    doc = {"_id": 1, "settings": {"timezone": "UTC", "locale": "en"}}
    assert await described(
        any_store_handle, doc, {"$set": {"settings": {"timezone": "CET", "locale": "en"}}}
    ) == fields({"settings": {"timezone": "CET", "locale": "en"}})


# same source: an array set whole is reported whole, not element by element
async def test_set_of_an_array_reports_the_array_whole(any_store_handle):
    assert await described(any_store_handle, {"_id": 1, "arr": [1, 2]}, {"$set": {"arr": [1, 2, 3]}}) == fields(
        {"arr": [1, 2, 3]}
    )


# same source: a dotted $set reports the dotted path it was told to set
async def test_set_of_a_dotted_path_reports_that_path(any_store_handle):
    doc = {"_id": 1, "settings": {"timezone": "UTC", "locale": "en"}}
    assert await described(any_store_handle, doc, {"$set": {"settings.timezone": "CET"}}) == fields(
        {"settings.timezone": "CET"}
    )


# src/mongo/db/update/modifier_node.cpp (applyToNonexistentElement -> logCreatedField): a path
# created under a missing parent is logged as the first created field, whole
async def test_set_under_a_missing_parent_reports_the_created_parent(any_store_handle):
    assert await described(any_store_handle, {"_id": 1}, {"$set": {"n.m": 1}}) == fields({"n": {"m": 1}})


# jstests/change_streams/change_stream.js ("Testing partial update with $inc")
async def test_inc_reports_the_new_value(any_store_handle):
    assert await described(any_store_handle, {"_id": 3, "a": 5, "b": 1}, {"$inc": {"b": 2}}) == fields({"b": 3})


# src/mongo/db/update/modifier_node.cpp (kNoOp: nothing logged) - a $set to the same value
# and an $unset of a missing field write no oplog entry, so no event
async def test_a_write_that_changes_nothing_has_no_event(any_store_handle):
    assert await described(any_store_handle, {"_id": 1, "a": {"b": 1}}, {"$set": {"a": {"b": 1}}}) is None
    await any_store_handle.db.spec.delete_many({})
    assert await described(any_store_handle, {"_id": 1, "a": 1}, {"$unset": {"zzz": ""}}) is None


# src/mongo/db/update/unset_node.cpp (logDeletedField) via change_stream.js-style events
async def test_unset_reports_a_removed_field(any_store_handle):
    assert await described(any_store_handle, {"_id": 1, "a": 1, "b": 2}, {"$unset": {"a": ""}}) == fields({}, ["a"])


# src/mongo/db/update/push_node.cpp (logUpdate, kArrayAppendUpdate): appending to a non-empty
# array logs each new element as arr.N
async def test_push_at_the_end_of_a_non_empty_array_reports_the_new_elements(any_store_handle):
    assert await described(any_store_handle, {"_id": 1, "arr": [1, 2]}, {"$push": {"arr": 3}}) == fields({"arr.2": 3})
    await any_store_handle.db.spec.delete_many({})
    assert await described(any_store_handle, {"_id": 1, "arr": [1]}, {"$push": {"arr": {"$each": [2, 3]}}}) == fields(
        {"arr.1": 2, "arr.2": 3}
    )


# src/mongo/db/update/push_node.cpp (insertElementsWithPosition: arraySize == 0 ->
# kNormalUpdate; logUpdate logs the whole array)
async def test_push_onto_an_empty_array_reports_the_whole_array(any_store_handle):
    assert await described(any_store_handle, {"_id": 1, "arr": []}, {"$push": {"arr": 1}}) == fields({"arr": [1]})


# src/mongo/db/update/push_node.cpp (setValueForNewElement, logCreatedField): a missing array is created whole
async def test_push_onto_a_missing_field_reports_the_created_array(any_store_handle):
    assert await described(any_store_handle, {"_id": 1}, {"$push": {"arr": 1}}) == fields({"arr": [1]})


# src/mongo/db/update/push_node.cpp (insertElementsWithPosition: a $position inside the array,
# its end included, -> kNormalUpdate, the whole array; a $position past the end appends)
async def test_push_with_a_position_reports_the_whole_array(any_store_handle):
    update = {"$push": {"arr": {"$each": [0], "$position": 0}}}
    assert await described(any_store_handle, {"_id": 1, "arr": [1, 2]}, update) == fields({"arr": [0, 1, 2]})
    await any_store_handle.db.spec.delete_many({})
    update = {"$push": {"arr": {"$each": [3], "$position": 2}}}
    assert await described(any_store_handle, {"_id": 1, "arr": [1, 2]}, update) == fields({"arr": [1, 2, 3]})
    await any_store_handle.db.spec.delete_many({})
    update = {"$push": {"arr": {"$each": [3], "$position": 5}}}
    assert await described(any_store_handle, {"_id": 1, "arr": [1, 2]}, update) == fields({"arr.2": 3})


# src/mongo/db/update/push_node.cpp (performPush: a $slice that trims -> kNormalUpdate)
async def test_push_with_a_trimming_slice_reports_the_whole_array(any_store_handle):
    update = {"$push": {"arr": {"$each": [3], "$slice": -2}}}
    assert await described(any_store_handle, {"_id": 1, "arr": [1, 2]}, update) == fields({"arr": [2, 3]})


# src/mongo/db/update/addtoset_node.cpp (updateExistingElement returns kNormalUpdate: the
# default ModifierNode::logUpdate logs the whole array)
async def test_add_to_set_reports_the_whole_array(any_store_handle):
    assert await described(any_store_handle, {"_id": 1, "tags": ["a"]}, {"$addToSet": {"tags": "b"}}) == fields(
        {"tags": ["a", "b"]}
    )


# src/mongo/db/update/array_culling_node.cpp ($pull, $pullAll, $pop: the array, whole)
async def test_pull_and_pop_report_the_whole_array(any_store_handle):
    assert await described(any_store_handle, {"_id": 1, "tags": ["a", "b", "c"]}, {"$pull": {"tags": "b"}}) == fields(
        {"tags": ["a", "c"]}
    )
    await any_store_handle.db.spec.delete_many({})
    assert await described(any_store_handle, {"_id": 1, "tags": ["a", "b"]}, {"$pop": {"tags": 1}}) == fields(
        {"tags": ["a"]}
    )


# src/mongo/db/update/rename_node.cpp (an $unset of the source and a $set of the destination)
async def test_rename_reports_the_old_field_removed_and_the_new_one_set(any_store_handle):
    assert await described(any_store_handle, {"_id": 1, "title": "t"}, {"$rename": {"title": "name"}}) == fields(
        {"name": "t"}, ["title"]
    )


# src/mongo/db/update/update_array_node.cpp: the positional $ resolves to the matched index
async def test_a_positional_set_reports_the_matched_element_path(any_store_handle):
    coll = any_store_handle.db.spec
    await coll.insert_one({"_id": 1, "members": [{"id": "a", "role": "viewer"}, {"id": "b", "role": "viewer"}]})
    async with coll.watch() as stream:
        await coll.update_one({"_id": 1, "members.id": "b"}, {"$set": {"members.$.role": "editor"}})
        event = await change(stream)
    assert event["updateDescription"] == fields({"members.1.role": "editor"})


# -- 1b. pipeline-style updates: the delta of the whole documents ------------------------------


# jstests/change_streams/pipeline_style_updates.js ("pipeline-based update with $set")
async def test_a_pipeline_set_reports_the_changed_field(any_store_handle):
    assert await described(any_store_handle, {"_id": 100, "a": 1, "b": 2}, [{"$set": {"a": 2}}]) == fields({"a": 2})


# source/change-streams/tests/unified/change-streams.yml ("Test array truncation")
async def test_a_pipeline_that_shrinks_an_array_reports_truncated_arrays(any_store_handle):
    doc = {"_id": 1, "a": 1, "array": ["foo", {"a": "bar"}, 1, 2, 3]}
    assert await described(any_store_handle, doc, [{"$set": {"array": ["foo", {"a": "bar"}]}}]) == fields(
        {}, [], [{"field": "array", "newSize": 2}]
    )


# src/mongo/db/update/document_diff_calculator.cpp (computeDocDiff recurses into sub-documents)
async def test_a_pipeline_reports_the_leaves_it_changed_in_a_sub_document(any_store_handle):
    doc = {"_id": 100, "b": 2, "obj": {"a": 1, "b": 2, "str": "*" * 512}}
    assert await described(any_store_handle, doc, [{"$set": {"obj.a": 2}}]) == fields({"obj.a": 2})


# src/mongo/db/update/document_diff_calculator.cpp (computeArrayDiff returns no delta when it
# would not be smaller than the array: the array is logged whole)
async def test_a_pipeline_that_changes_most_of_an_array_reports_it_whole(any_store_handle):
    doc = {"_id": 1, "name": "unchanged", "arr": [1, 2, 3]}
    assert await described(any_store_handle, doc, [{"$set": {"arr": [4, 5, 6]}}]) == fields({"arr": [4, 5, 6]})
    await any_store_handle.db.spec.delete_many({})
    doc = {"_id": 1, "name": "unchanged", "arr": ["*" * 64, "*" * 64, 3]}
    assert await described(any_store_handle, doc, [{"$set": {"arr": ["*" * 64, "*" * 64, 4, 5]}}]) == fields(
        {"arr.2": 4, "arr.3": 5}
    )


# jstests/change_streams/pipeline_style_updates.js ("pipeline-based update with $unset"); the
# embedded store runs $unset as the $project exclusion it is an alias of (mongomock lacks $unset)
async def test_a_pipeline_unset_reports_removed_fields(any_store_handle):
    assert await described(any_store_handle, {"_id": 1, "a": 1, "b": 2}, [{"$unset": ["a"]}]) == fields({}, ["a"])
    await any_store_handle.db.spec.delete_many({})
    assert await described(
        any_store_handle, {"_id": 1, "a": 1, "obj": {"x": 1, "y": "*" * 64}}, [{"$unset": "obj.x"}]
    ) == fields({}, ["obj.x"])


# src/mongo/db/update/document_diff_calculator.cpp (computeOplogDiff: a delta no smaller than
# the document is not used; the whole document is logged, which a change stream reports as replace)
async def test_a_pipeline_that_rewrites_a_small_document_is_a_replace(any_store_handle):
    coll = any_store_handle.db.spec
    await coll.insert_one({"_id": 1, "a": 1})
    async with coll.watch() as stream:
        await coll.update_one({"_id": 1}, [{"$replaceWith": {"_id": 1, "b": 2}}])
        event = await change(stream)
    assert event["operationType"] == "replace"
    assert event["fullDocument"] == {"_id": 1, "b": 2}


# -- 2. drop, rename, invalidate ---------------------------------------------------------------


# jstests/change_streams/change_stream_invalidation.js; change-streams.md ("invalidate"):
# a collection stream sees drop, then invalidate, then is closed
async def test_dropping_a_watched_collection_emits_drop_then_invalidate(any_store_handle):
    coll = any_store_handle.db.spec
    await coll.insert_one({"_id": 1})
    async with coll.watch() as stream:
        await coll.drop()
        drop, invalidate = await change(stream), await change(stream)
        assert drop["operationType"] == "drop" and "documentKey" not in drop
        assert drop["ns"] == {"db": any_store_handle.db.name, "coll": "spec"}
        assert invalidate["operationType"] == "invalidate" and "ns" not in invalidate
        with pytest.raises(StopAsyncIteration):
            await change(stream)
        assert not stream.alive


# source/change-streams/tests/unified/change-streams.yml ("to field is set in a rename change event")
async def test_renaming_a_watched_collection_emits_rename_with_to_then_invalidate(any_store_handle):
    coll = any_store_handle.db.spec
    await coll.insert_one({"_id": 1})
    async with coll.watch() as stream:
        await coll.rename("spec_renamed")
        rename, invalidate = await change(stream), await change(stream)
    db = any_store_handle.db.name
    assert rename["operationType"] == "rename"
    assert rename["ns"] == {"db": db, "coll": "spec"} and rename["to"] == {"db": db, "coll": "spec_renamed"}
    assert invalidate["operationType"] == "invalidate"


# jstests/change_streams/change_stream_rename_target.js: renaming another collection onto the
# watched one invalidates its stream; since 4.0.1 the rename event (ns: the source, to: the
# watched collection) comes first, as on the source's stream
async def test_renaming_onto_a_watched_collection_invalidates_its_stream(any_store_handle):
    db = any_store_handle.db
    await db.spec.insert_one({"_id": 1})
    async with db.spec_target.watch() as stream:
        await db.spec.insert_one({"_id": 2})  # not the watched collection: nothing
        await db.spec.rename("spec_target")
        rename, invalidate = await change(stream), await change(stream)
    assert rename["operationType"] == "rename"
    assert rename["ns"]["coll"] == "spec" and rename["to"]["coll"] == "spec_target"
    assert invalidate["operationType"] == "invalidate"


# jstests/change_streams/change_stream_whole_db_invalidations.js: dropping a collection does
# not invalidate a database stream; it sees the drop and reads on
async def test_a_database_stream_sees_a_drop_and_goes_on(any_store_handle):
    db = any_store_handle.db
    await db.spec.insert_one({"_id": 1})
    async with db.watch() as stream:
        await db.spec.drop()
        await db.other.insert_one({"_id": 2})
        drop, insert = await change(stream), await change(stream)
    assert drop["operationType"] == "drop" and drop["ns"]["coll"] == "spec"
    assert insert["operationType"] == "insert" and insert["documentKey"] == {"_id": 2}


# jstests/change_streams/change_stream_whole_db.js, change-streams.yml ("to field is set in a
# rename change event"): a database stream sees the rename and is not invalidated by it
async def test_a_database_stream_sees_a_rename_and_goes_on(any_store_handle):
    db = any_store_handle.db
    await db.spec.insert_one({"_id": 1})
    async with db.watch() as stream:
        await db.spec.rename("spec_renamed")
        await db.spec_renamed.insert_one({"_id": 2})
        rename, insert = await change(stream), await change(stream)
    assert rename["operationType"] == "rename" and rename["to"] == {"db": db.name, "coll": "spec_renamed"}
    assert insert["ns"]["coll"] == "spec_renamed" and insert["documentKey"] == {"_id": 2}


# jstests/change_streams/change_stream_whole_db_invalidations.js: dropDatabase gives a drop
# per collection, then dropDatabase, then invalidate
async def test_drop_database_emits_drops_then_drop_database_then_invalidate(any_store_handle):
    db = any_store_handle.db
    await db.spec.insert_one({"_id": 1})
    async with db.watch() as stream:
        await any_store_handle.client.drop_database(db.name)
        seen = []
        while not seen or seen[-1]["operationType"] != "invalidate":
            seen.append(await change(stream))
    kinds = [event["operationType"] for event in seen]
    assert kinds[-2:] == ["dropDatabase", "invalidate"] and set(kinds[:-2]) == {"drop"}
    assert "spec" in {event["ns"]["coll"] for event in seen[:-2]}
    assert seen[-2]["ns"] == {"db": db.name}


# change-streams.md (startAfter: "allows a change stream to be resumed after an invalidate");
# src/mongo/db/pipeline/document_source_change_stream.cpp (resumeAfter an invalidate token:
# InvalidResumeToken, 260)
async def test_after_an_invalidate_only_start_after_resumes(any_store_handle):
    coll = any_store_handle.db.spec
    await coll.insert_one({"_id": 1})
    async with coll.watch() as stream:
        await coll.drop()
        await change(stream)
        token = (await change(stream))["_id"]
    with pytest.raises(OperationFailure) as refused:
        async with coll.watch(resume_after=token) as again:
            await again.try_next()
    assert refused.value.code == 260
    assert "not allowed from an invalidate notification" in str(refused.value)
    await coll.insert_one({"_id": 2})
    async with coll.watch(start_after=token) as again:
        event = await change(again)
    assert event["operationType"] == "insert" and event["documentKey"] == {"_id": 2}


# src/mongo/db/pipeline/document_source_change_stream_check_invalidate.cpp: the drop met again
# on resuming queues its invalidate, which follows the resume point (only a startAfter of the
# invalidate's own token swallows it)
async def test_resuming_from_the_drop_gives_the_invalidate_again(any_store_handle):
    coll = any_store_handle.db.spec
    await coll.insert_one({"_id": 1})
    async with coll.watch() as stream:
        await coll.drop()
        drop = await change(stream)
        await change(stream)
    async with coll.watch(resume_after=drop["_id"]) as again:
        assert (await change(again))["operationType"] == "invalidate"


# jstests/change_streams/start_after_invalidation_exception.js: a $match that drops the
# invalidate event still ends the stream, and its resume token is the invalidate's
async def test_a_match_that_drops_the_invalidate_still_closes_the_stream(any_store_handle):
    coll = any_store_handle.db.spec
    await coll.insert_one({"_id": 0})
    async with coll.watch([{"$match": {"operationType": "insert"}}], max_await_time_ms=200) as stream:
        await coll.insert_one({"_id": 1})
        assert (await change(stream))["documentKey"] == {"_id": 1}
        await coll.drop()
        deadline = asyncio.get_running_loop().time() + WAIT
        while stream.alive:
            assert await stream.try_next() is None
            assert asyncio.get_running_loop().time() < deadline
        token = stream.resume_token
    await coll.insert_one({"_id": 2})
    async with coll.watch([{"$match": {"operationType": "insert"}}], start_after=token) as again:
        assert (await change(again))["documentKey"] == {"_id": 2}


# -- 3. errors and options as the server gives them --------------------------------------------


# resume_after with start_after: the server refuses both in one $changeStream stage
# (src/mongo/db/pipeline/document_source_change_stream.cpp, uassert 50865), but pymongo never
# sends both: startAfter wins, and a token wins over start_at_operation_time
# (pymongo/change_stream_shared.py, _change_stream_options). What a motor caller sees, then:
async def test_start_after_wins_over_resume_after_as_pymongo_sends_it(any_store_handle):
    coll = any_store_handle.db.spec
    async with coll.watch() as stream:
        await coll.insert_one({"_id": 1})
        await coll.drop()
        await change(stream)
        await change(stream)
        invalidate = (await change(stream))["_id"]
    await coll.insert_one({"_id": 2})
    # resume_after alone of an invalidate token is refused (260); with start_after it is not sent
    async with coll.watch(
        resume_after=invalidate, start_after=invalidate, start_at_operation_time=Timestamp(1, 1)
    ) as both:
        assert (await change(both))["documentKey"] == {"_id": 2}


# source/change-streams/tests/unified/change-streams-errors.yml (an invalid stage is a server
# error, met when the change stream is created); the server's "Unrecognized pipeline stage name"
async def test_an_unknown_stage_fails_at_the_first_read(any_store_handle):
    stream = any_store_handle.db.spec.watch([{"$frobnicate": {}}])
    with pytest.raises(OperationFailure) as refused:
        async with stream:
            await stream.try_next()
    assert refused.value.code == 40324


# src/mongo/db/pipeline/pipeline.cpp ("is not permitted in a $changeStream pipeline", IllegalOperation 20)
async def test_a_stage_not_allowed_in_change_streams_fails_at_the_first_read(any_store_handle):
    stream = any_store_handle.db.spec.watch([{"$group": {"_id": "$operationType"}}])
    with pytest.raises(OperationFailure) as refused:
        async with stream:
            await stream.try_next()
    assert refused.value.code == 20


# jstests/change_streams/change_stream_start_at_cluster_time.js: startAtOperationTime is
# inclusive - the event at that time is returned
async def test_start_at_operation_time_replays_from_that_time(any_store_handle):
    coll = any_store_handle.db.spec
    async with coll.watch() as stream:
        await coll.insert_one({"_id": 1})
        await coll.insert_one({"_id": 2})
        first = await change(stream)
    async with coll.watch(start_at_operation_time=first["clusterTime"]) as again:
        assert [(await change(again))["documentKey"]["_id"] for _ in range(2)] == [1, 2]


# change-streams.md (resumability: the oplog window): a point before the kept history is 286,
# on the aggregate - the oplog window exceeded, on both stores
async def test_a_start_before_the_kept_history_is_history_lost(any_store_handle):
    stream = any_store_handle.db.spec.watch(start_at_operation_time=Timestamp(1, 1))
    with pytest.raises(OperationFailure) as lost:
        async with stream:
            await stream.try_next()
    assert lost.value.code == 286
    assert lost.value.details["codeName"] == "ChangeStreamHistoryLost"


# change-streams.md ("Resume Process": a resumable error is retried once, by resuming from the
# cached token) - embedded only: errors are injected
async def test_a_resumable_error_is_retried_once_and_never_seen(store_handle):
    coll = store_handle.db.spec
    async with coll.watch() as stream:
        store_handle.inject_change_stream_error(AutoReconnect("connection reset"), times=1)
        await coll.insert_one({"_id": 1})
        assert (await change(stream))["documentKey"] == {"_id": 1}
        assert stream.alive
        store_handle.inject_change_stream_error(AutoReconnect("connection reset"), times=2)
        with pytest.raises(AutoReconnect):  # the retry failed too: the caller sees it, the stream stays open
            await stream.try_next()
        assert stream.alive


# change-streams.md (a resume that finds its point gone is not resumable) - embedded only:
# the retry after a resumable error resumes from the token, and that point has left the history
async def test_a_retry_whose_point_left_the_history_is_286():
    from backend.settings import test_settings
    from backend.store.client import open_database

    handle = await open_database(test_settings(change_history=2))
    try:
        coll = handle.db.spec
        async with coll.watch() as stream:
            await stream.try_next()
            for i in range(4):
                await coll.insert_one({"_id": i})
            handle.inject_change_stream_error(AutoReconnect("connection reset"), times=1)
            with pytest.raises(OperationFailure) as lost:
                await stream.try_next()
            assert lost.value.code == 286 and not stream.alive
    finally:
        await handle.close()


# -- what the emulation refuses: EmbeddedUnsupported, never another exception ------------------


async def test_each_stream_returns_its_own_copy_and_matches_what_it_returns(any_store_handle):
    """Changing a change a stream returned changes nothing another stream (or a resume) reads;
    a $match is tested on the change as returned, fullDocument of updateLookup included
    (specifications: change-streams.md, "fullDocument")."""
    coll = any_store_handle.db.spec
    looked_up = [{"$match": {"fullDocument.tags": "b"}}]
    async with (
        coll.watch(max_await_time_ms=200) as first,
        coll.watch(max_await_time_ms=200) as second,
        coll.watch(looked_up, full_document="updateLookup", max_await_time_ms=200) as third,
    ):
        await coll.insert_one({"_id": "c1", "tags": ["a"], "sub": {"n": 1}})
        await coll.update_one({"_id": "c1"}, {"$push": {"tags": "b"}})
        mine = await change(first)
        mine["fullDocument"]["tags"].append("changed")
        mine["fullDocument"]["sub"]["n"] = 2
        mine["_id"]["_data"] = "changed"
        theirs = await change(second)
        assert theirs["fullDocument"] == {"_id": "c1", "tags": ["a"], "sub": {"n": 1}}
        assert theirs["_id"] != mine["_id"]
        found = await change(third)  # the insert has ["a"]: only the update's looked-up document matches
        assert found["operationType"] == "update" and found["fullDocument"]["tags"] == ["a", "b"]


async def test_what_mongomock_lacks_is_refused_by_name(store_handle):  # embedded only
    from pymongo import UpdateOne

    coll = store_handle.db.spec
    await coll.insert_one({"_id": 1, "arr": [1, 2]})
    refusals = {
        "array_filters": coll.update_one({"_id": 1}, {"$set": {"arr.$[e]": 0}}, array_filters=[{"e": 1}]),
        "$[]": coll.update_one({"_id": 1}, {"$set": {"arr.$[]": 0}}),
        "session": coll.update_one({"_id": 1}, {"$set": {"a": 1}}, session=object()),
        "pipeline expression": coll.update_one({"_id": 1}, [{"$set": {"a": {"$getField": "arr"}}}]),
        "bulk_write": coll.bulk_write([UpdateOne({"_id": 1}, {"$set": {"a": 1}})]),
        "rename dropTarget": coll.rename("other", dropTarget=True),
    }
    reads = {  # mongomock ignores a read's session, or raises its own NotImplementedError
        "find_one session": lambda: coll.find_one({"arr": 1}, session=object()),
        "count session": lambda: coll.count_documents({}, session=object()),
        "find session": lambda: coll.find({}, session=object()).to_list(None),
        "aggregate stage": lambda: coll.aggregate([{"$densify": {"field": "a", "range": {"step": 1}}}]).to_list(None),
        "find operator": lambda: coll.find({"$where": "true"}).sort("_id").to_list(None),  # met on reading
        # mongomock ignores a collation and answers as if there were none
        "find collation": lambda: coll.find({}, collation={"locale": "en", "strength": 2}).to_list(None),
        "cursor collation": lambda: coll.find({}).collation({"locale": "en"}).to_list(None),
        "update collation": lambda: coll.update_one({}, {"$set": {"a": 1}}, collation={"locale": "en"}),
    }
    for _name, call in refusals.items():
        with pytest.raises(EmbeddedUnsupported):
            await call
    for _name, read in reads.items():
        with pytest.raises(EmbeddedUnsupported):
            await read()
    with pytest.raises(EmbeddedUnsupported, match="sessions"):
        store_handle.client.start_session()
    with pytest.raises(EmbeddedUnsupported, match="with_options"):
        coll.with_options()  # mongomock-motor would hand back a synchronous collection: no events
    with pytest.raises(EmbeddedUnsupported, match="with_options"):
        store_handle.db.with_options()
    assert type(store_handle.db.spec.sub) is type(coll) and store_handle.db.spec.sub.name == "spec.sub"
    with pytest.raises(EmbeddedUnsupported, match=r"\$project"):
        coll.watch([{"$project": {"operationType": 1}}])
    assert await coll.find_one({"_id": 1}) == {"_id": 1, "arr": [1, 2]}  # nothing was written
    await coll.update_one({"_id": 1}, {"$set": {"b": 1}}, comment="why")  # a comment changes nothing: accepted
    assert await coll.find_one({"_id": 1}, comment="why") == {"_id": 1, "arr": [1, 2], "b": 1}


# -- the real-MongoDB suite is one command -------------------------------------------------------


def test_the_real_mongodb_suite_is_make_test_mongodb():
    import os
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    assert "run: make test-mongodb" in (root / ".github/workflows/ci.yml").read_text()
    env = {k: v for k, v in os.environ.items() if k != "MONGODB_URI"}
    dry = subprocess.run(["make", "-n", "test-mongodb"], cwd=root, env=env, capture_output=True, text=True)
    assert dry.returncode == 0 and "pytest -m mongodb" in dry.stdout
