"""The store layer: picking the store, time zones, indexes, and what the embedded store refuses."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone

import bson
import pytest
from pymongo.errors import DuplicateKeyError

from backend.settings import test_settings
from backend.store.client import open_database, ping
from backend.store.indexes import INDEXES, ensure_indexes
from backend.store.size import bson_size

PARIS_SUMMER = timezone(timedelta(hours=2))


async def test_without_mongodb_uri_the_embedded_store_opens_and_warns(caplog):
    with caplog.at_level(logging.WARNING, logger="backend.store"):
        handle = await open_database(test_settings())
    try:
        assert handle.embedded
        assert handle.db.name == "tandem"
        assert await ping(handle)
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1
        assert "memory only" in warnings[0].getMessage() and "LOST" in warnings[0].getMessage()
    finally:
        await handle.close()


async def test_with_mongodb_uri_motor_is_used_and_ping_reports_an_unreachable_server():
    settings = test_settings(mongodb_uri="mongodb://127.0.0.1:9/?serverSelectionTimeoutMS=100")
    handle = await open_database(settings)
    try:
        assert not handle.embedded
        assert type(handle.client).__module__.startswith("motor")
        assert await ping(handle) is False
        with pytest.raises(RuntimeError):
            handle.inject_change_stream_error(RuntimeError("only for the embedded store"))
    finally:
        await handle.close()


async def test_datetimes_come_back_utc_aware_at_millisecond_precision(any_store_handle):
    coll = any_store_handle.db.things
    at = datetime(2026, 7, 1, 14, 30, 0, 123456, tzinfo=PARIS_SUMMER)
    stored = datetime(2026, 7, 1, 12, 30, 0, 123000, tzinfo=timezone.utc)
    await coll.insert_one({"_id": "t1", "at": at, "log": [{"at": at}]})
    found = await coll.find_one({"_id": "t1"})
    assert found["at"] == stored and found["at"].utcoffset() == timedelta(0)
    assert found["log"][0]["at"].utcoffset() == timedelta(0)
    updated = await coll.find_one_and_update({"_id": "t1"}, {"$set": {"later": at + timedelta(hours=1)}},
                                             return_document=True)
    assert updated["later"] == stored + timedelta(hours=1) and updated["later"].utcoffset() == timedelta(0)
    [grouped] = await coll.aggregate([{"$group": {"_id": None, "last": {"$max": "$at"}}}]).to_list(None)
    assert grouped["last"] == stored and grouped["last"].utcoffset() == timedelta(0)
    assert await coll.count_documents({"at": {"$lt": datetime(2026, 7, 1, 14, 31, tzinfo=PARIS_SUMMER)}}) == 1


async def test_every_declared_index_exists_and_ensure_indexes_is_idempotent(any_store_handle):
    db = any_store_handle.db
    await ensure_indexes(db)
    for index in INDEXES:
        info = await db[index.collection].index_information()
        [found] = [spec for spec in info.values() if list(spec["key"]) == list(index.keys)]
        for option, value in index.options.items():
            assert found[option] == value, (index, option)


async def test_audit_is_unique_per_version_for_versioned_entries_only(any_store_handle):
    audit = any_store_handle.db.audit
    await audit.insert_one({"_id": "a1", "collaborationId": "col_1", "version": 2, "versioned": True})
    with pytest.raises(DuplicateKeyError):
        await audit.insert_one({"_id": "a2", "collaborationId": "col_1", "version": 2, "versioned": True})
    await audit.insert_one({"_id": "a3", "collaborationId": "col_1", "version": 2})  # e.g. a message sent
    await audit.insert_one({"_id": "a4", "collaborationId": "col_1", "version": 2})
    await audit.insert_one({"_id": "a5", "collaborationId": "col_2", "version": 2, "versioned": True})
    with pytest.raises(DuplicateKeyError):
        await audit.update_one({"_id": "a5"}, {"$set": {"collaborationId": "col_1"}})
    assert await audit.count_documents({"collaborationId": "col_1", "version": 2}) == 3


async def test_job_unique_key_is_unique_when_present(any_store_handle):
    jobs = any_store_handle.db.jobs
    await jobs.insert_one({"_id": "j1", "kind": "send"})
    await jobs.insert_one({"_id": "j2", "kind": "send"})
    await jobs.insert_one({"_id": "j3", "uniqueKey": "checkin:2026-11-23"})
    with pytest.raises(DuplicateKeyError):
        await jobs.insert_one({"_id": "j4", "uniqueKey": "checkin:2026-11-23"})


async def test_expired_presence_disappears_with_a_delete_event(store_handle):  # embedded only: MongoDB's
    presence = store_handle.db.presence                                          # TTL monitor runs each 60 s
    now = datetime.now(timezone.utc)
    async with presence.watch() as stream:
        await presence.insert_one({"_id": "p1", "collaborationId": "col_1", "expiresAt": now - timedelta(seconds=1)})
        await presence.insert_one({"_id": "p2", "collaborationId": "col_1", "expiresAt": now + timedelta(minutes=1)})
        assert [doc["_id"] async for doc in presence.find({"collaborationId": "col_1"})] == ["p2"]
        changes = [await stream.next() for _ in range(3)]
    assert [(c["operationType"], c["documentKey"]["_id"]) for c in changes] == [
        ("insert", "p1"), ("insert", "p2"), ("delete", "p1")]


async def test_bulk_write_is_refused_clearly(store_handle):  # embedded only
    from pymongo import InsertOne

    with pytest.raises(NotImplementedError, match="bulk_write"):
        await store_handle.db.things.bulk_write([InsertOne({"_id": 1})])
    assert await store_handle.db.things.count_documents({}) == 0


def test_bson_size_is_the_encoded_size():
    doc = {"_id": "col_1", "title": "Team", "members": [{"userId": "u1", "role": "owner"}]}
    assert bson_size(doc) == len(bson.encode(doc))
    assert bson_size({}) == 5
    assert bson_size({"text": "x" * 1000}) > 1000
