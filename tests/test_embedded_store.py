"""The store layer: picking the store, time zones, indexes, and what the embedded store refuses."""

from __future__ import annotations

import asyncio
import collections
import copy
import logging
import random
from datetime import datetime, timedelta, timezone
from typing import Any

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
    updated = await coll.find_one_and_update(
        {"_id": "t1"}, {"$set": {"later": at + timedelta(hours=1)}}, return_document=True
    )
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


# -- unique indexes: the embedded store checks them with a lookup (backend/store/uniques.py); these
#    tests hold it to what mongomock's scan and MongoDB refuse


def is_duplicate(caught: pytest.ExceptionInfo) -> bool:
    return caught.value.code == 11000 and "e11000 duplicate key error" in str(caught.value).lower()


async def test_a_duplicate_insert_is_refused_with_code_11000_and_nothing_is_stored(any_store_handle):
    audit = any_store_handle.db.audit
    await audit.insert_one({"_id": "a1", "collaborationId": "col_1", "version": 2, "versioned": True})
    with pytest.raises(DuplicateKeyError) as caught:
        await audit.insert_one({"_id": "a2", "collaborationId": "col_1", "version": 2, "versioned": True})
    assert is_duplicate(caught)
    assert await audit.find_one({"_id": "a2"}) is None
    with pytest.raises(DuplicateKeyError) as caught:  # and on the next attempt too
        await audit.insert_one({"_id": "a3", "collaborationId": "col_1", "version": 2, "versioned": True})
    assert is_duplicate(caught)
    assert await audit.count_documents({}) == 1


async def test_compound_keys_are_unique_as_a_whole(any_store_handle):
    audit = any_store_handle.db.audit
    for n, (cid, version) in enumerate([("col_1", 1), ("col_1", 2), ("col_2", 1), ("col_2", 2)]):
        await audit.insert_one({"_id": f"a{n}", "collaborationId": cid, "version": version, "versioned": True})
    for cid, version in [("col_1", 1), ("col_1", 2), ("col_2", 1), ("col_2", 2)]:
        with pytest.raises(DuplicateKeyError):
            await audit.insert_one(
                {"_id": f"x_{cid}_{version}", "collaborationId": cid, "version": version, "versioned": True}
            )
    await audit.insert_one({"_id": "a9", "collaborationId": "col_1", "version": 3, "versioned": True})
    await audit.insert_one({"_id": "a10", "collaborationId": "col_3", "version": 1, "versioned": True})
    await audit.insert_one({"_id": "a11", "collaborationId": "col_1", "version": 2.5, "versioned": True})
    with pytest.raises(DuplicateKeyError):  # 2.0 and 2 are the same number, to MongoDB and to mongomock
        await audit.insert_one({"_id": "a12", "collaborationId": "col_1", "version": 2.0, "versioned": True})
    assert await audit.count_documents({}) == 7


async def test_an_update_or_replacement_that_makes_a_duplicate_is_refused_and_undone(any_store_handle):
    audit = any_store_handle.db.audit
    await audit.insert_one({"_id": "a1", "collaborationId": "col_1", "version": 1, "versioned": True})
    await audit.insert_one({"_id": "a2", "collaborationId": "col_1", "version": 2, "versioned": True})
    await audit.update_one({"_id": "a2"}, {"$set": {"note": "first"}})  # undone below means back to this
    with pytest.raises(DuplicateKeyError) as caught:
        await audit.update_one({"_id": "a2"}, {"$set": {"version": 1}})
    assert is_duplicate(caught)
    with pytest.raises(DuplicateKeyError):
        await audit.update_many({"_id": "a2"}, {"$inc": {"version": -1}})
    with pytest.raises(DuplicateKeyError):
        await audit.replace_one({"_id": "a2"}, {"collaborationId": "col_1", "version": 1, "versioned": True})
    with pytest.raises(DuplicateKeyError):
        await audit.find_one_and_update({"_id": "a2"}, {"$set": {"version": 1}})
    with pytest.raises(DuplicateKeyError):
        await audit.update_one(
            {"_id": "a3"}, {"$set": {"collaborationId": "col_1", "version": 1, "versioned": True}}, upsert=True
        )
    for found in (await audit.find_one({"_id": "a2"}), await audit.find_one({"_id": "a2", "version": 2})):
        assert found == {"_id": "a2", "collaborationId": "col_1", "version": 2, "versioned": True, "note": "first"}
    assert await audit.count_documents({}) == 2
    # an update that keeps its own key, or changes other fields only, is not a duplicate of itself
    await audit.update_one({"_id": "a2"}, {"$set": {"version": 2, "note": "kept"}})
    assert (await audit.find_one({"_id": "a2"}))["note"] == "kept"
    await audit.update_one({"_id": "a2"}, {"$set": {"version": 3}})
    await audit.insert_one({"_id": "a4", "collaborationId": "col_1", "version": 2, "versioned": True})


async def test_a_key_is_free_again_once_its_document_is_deleted_or_moves_away(any_store_handle):
    audit = any_store_handle.db.audit
    entry = {"collaborationId": "col_1", "version": 5, "versioned": True}
    await audit.insert_one({"_id": "a1", **entry})
    await audit.delete_one({"_id": "a1"})
    await audit.insert_one({"_id": "a2", **entry})
    await audit.delete_many({"collaborationId": "col_1"})
    await audit.insert_one({"_id": "a3", **entry})
    await audit.find_one_and_delete({"_id": "a3"})
    await audit.insert_one({"_id": "a4", **entry})
    await audit.update_one({"_id": "a4"}, {"$set": {"version": 6}})  # moves to version 6: 5 is free
    await audit.insert_one({"_id": "a5", **entry})
    with pytest.raises(DuplicateKeyError):  # and 6 is taken
        await audit.insert_one({"_id": "a6", **entry, "version": 6})
    await audit.update_one({"_id": "a5"}, {"$unset": {"versioned": ""}})  # out of the partial index
    await audit.insert_one({"_id": "a7", **entry})
    with pytest.raises(DuplicateKeyError):  # back into it, where a7 now holds the key
        await audit.update_one({"_id": "a5"}, {"$set": {"versioned": True}})
    assert sorted([doc["_id"] async for doc in audit.find({})]) == ["a4", "a5", "a7"]


async def test_many_deletes_and_reinserts_keep_the_index_exact(any_store_handle):
    jobs = any_store_handle.db.jobs
    for round_ in range(3):  # 3 x 60 keys come and go: more than the store ever holds at once
        for n in range(60):
            await jobs.insert_one({"_id": f"j{round_}_{n}", "uniqueKey": f"k{n}"})
        with pytest.raises(DuplicateKeyError):
            await jobs.insert_one({"_id": f"dup{round_}", "uniqueKey": "k59"})
        await jobs.delete_many({"_id": {"$regex": f"^j{round_}_"}})
    await jobs.insert_one({"_id": "last", "uniqueKey": "k0"})
    with pytest.raises(DuplicateKeyError):
        await jobs.insert_one({"_id": "last2", "uniqueKey": "k0"})


async def test_a_sparse_unique_key_is_unique_only_when_present(any_store_handle):
    jobs = any_store_handle.db.jobs
    await jobs.insert_one({"_id": "j1", "kind": "send"})
    await jobs.insert_one({"_id": "j2", "kind": "send"})
    await jobs.insert_one({"_id": "j3", "uniqueKey": "k"})
    with pytest.raises(DuplicateKeyError):
        await jobs.update_one({"_id": "j1"}, {"$set": {"uniqueKey": "k"}})
    await jobs.update_one({"_id": "j3"}, {"$unset": {"uniqueKey": ""}})
    await jobs.update_one({"_id": "j1"}, {"$set": {"uniqueKey": "k"}})
    assert [doc["_id"] async for doc in jobs.find({"uniqueKey": "k"})] == ["j1"]


async def test_an_index_made_over_existing_documents_knows_them(any_store_handle):
    things = any_store_handle.db.things
    await things.insert_many([{"_id": n, "code": f"c{n}", "group": n % 2} for n in range(10)])
    await things.create_index([("group", 1), ("code", 1)], unique=True)
    with pytest.raises(DuplicateKeyError):
        await things.insert_one({"_id": 10, "code": "c4", "group": 0})
    with pytest.raises(DuplicateKeyError):
        await things.update_one({"_id": 9}, {"$set": {"code": "c7"}})
    await things.insert_one({"_id": 11, "code": "c4", "group": 1})
    await things.insert_one({"_id": 12, "group": 3})
    with pytest.raises(DuplicateKeyError):  # a missing field is null: one document per (group, null)
        await things.insert_one({"_id": 13, "group": 3})
    assert await things.count_documents({}) == 12


async def test_an_array_key_refuses_each_of_its_elements(any_store_handle):
    tags = any_store_handle.db.tags  # values a lookup cannot compare: the embedded store falls back to a scan
    await tags.create_index("tag", unique=True)
    await tags.insert_one({"_id": 1, "tag": ["red", "blue"]})
    with pytest.raises(DuplicateKeyError):
        await tags.insert_one({"_id": 2, "tag": "red"})
    await tags.insert_one({"_id": 3, "tag": "green"})
    with pytest.raises(DuplicateKeyError):
        await tags.insert_one({"_id": 4, "tag": "green"})


async def test_the_unique_check_is_a_lookup_not_a_scan(store_handle):  # embedded only
    audit = store_handle.db.audit
    await audit.insert_many(
        [{"_id": f"a{n}", "collaborationId": "col_1", "version": n, "versioned": True} for n in range(500)]
    )
    sync = audit._sync
    scans = []
    iter_documents = sync._iter_documents
    sync._iter_documents = lambda filter: scans.append(filter) or iter_documents(filter)
    try:
        await audit.insert_one({"_id": "b1", "collaborationId": "col_1", "version": 500, "versioned": True})
        await audit.insert_one({"_id": "b2", "collaborationId": "col_1", "version": 7})  # not versioned
        with pytest.raises(DuplicateKeyError):
            await sync_insert(audit, {"_id": "b3", "collaborationId": "col_1", "version": 499, "versioned": True})
    finally:
        sync._iter_documents = iter_documents
    assert scans == []


async def test_a_query_on_one_id_tests_that_document_only_and_answers_as_the_scan(
    store_handle, monkeypatch
):  # embedded only
    """mongomock's `_iter_documents` (under find, update, delete, count) looks a filter on one `_id`
    up (embedded.py `_install_id_lookup`): one document tested, not the collection; the same
    answers as plain mongomock's scan, errors included."""
    import mongomock.collection
    from mongomock import filtering
    from mongomock_motor import AsyncMongoMockClient

    from backend.store import embedded

    coll = store_handle.db.many
    plain = AsyncMongoMockClient(tz_aware=True)["tandem"].many
    at = datetime(2026, 5, 1, tzinfo=timezone.utc)
    for target in (coll, plain):
        await target.insert_many([{"_id": f"d{n}", "n": n, "at": at, "tags": ["a"]} for n in range(300)])
    tested = []
    real = filtering.filter_applies

    def counting(filter, document):
        tested.append(document.get("_id"))
        return real(filter, document)

    with monkeypatch.context() as patched:
        patched.setattr(mongomock.collection, "filter_applies", counting)
        patched.setattr(embedded, "matches", counting)  # the store's own one-document test
        await coll.update_one({"_id": "d7", "n": 7}, {"$set": {"n": 70}})
        assert await coll.count_documents({"_id": "d7"}) == 1
    assert 1 <= len(tested) <= 4, tested  # not 300 per query
    await plain.update_one({"_id": "d7", "n": 7}, {"$set": {"n": 70}})
    for filter in (
        {"_id": "d7"},
        {"_id": "d7", "n": 70},
        {"_id": "d7", "n": 7},
        {"_id": "d8", "at": at},
        {"_id": "d8", "tags": "a"},
        {"_id": "none"},
        {"_id": "d9", "n": {"$bogus": 1}},
        {"_id": "none", "n": {"$bogus": 1}},
    ):
        outcomes = []
        for target in (coll, plain):
            try:
                outcomes.append(
                    (
                        [d async for d in target.find(filter)],
                        await target.count_documents(filter),
                        (await target.update_many(filter, {"$inc": {"hits": 1}})).matched_count,
                        (await target.delete_many({**filter, "n": -1})).deleted_count,
                    )
                )
            except Exception as exc:  # noqa: BLE001 - whatever mongomock raises, both must raise it
                outcomes.append(type(exc).__name__)
        assert outcomes[0] == outcomes[1], filter
    assert [d async for d in coll.find({})] == [d async for d in plain.find({})]


async def sync_insert(coll, doc):
    """mongomock's insert itself, below mongomock-motor's wrapper (which, on a duplicate only, queries
    the collection again to add `keyValue` and `keyPattern` to the error)."""
    from mongomock.collection import Collection

    return Collection._insert(coll._sync, doc)


async def test_the_lookup_refuses_exactly_what_mongomocks_scan_refuses(store_handle):  # embedded only
    from mongomock_motor import AsyncMongoMockClient

    reference = AsyncMongoMockClient(tz_aware=True)["tandem"]  # plain mongomock-motor: the scan
    stores = [store_handle.db, reference]
    for db in stores:
        await db.things.create_index([("a", 1), ("b", 1)], unique=True, partialFilterExpression={"on": True})
        await db.things.create_index("k", unique=True, sparse=True)
    rng = random.Random(20260501)

    def fields() -> dict:
        doc = {name: rng.choice([0, 1, 2, None]) for name in ("a", "b", "k") if rng.random() < 0.8}
        if rng.random() < 0.7:
            doc["on"] = rng.random() < 0.7
        return doc

    for step in range(600):
        _id, op, doc = rng.randrange(12), rng.choice(["insert", "set", "unset", "replace", "delete"]), fields()
        upsert, unset = rng.random() < 0.1, rng.choice("abk")
        outcomes = []
        for db in stores:
            try:
                if op == "insert":
                    await db.things.insert_one({"_id": _id, **doc})
                elif op == "set" and doc:
                    await db.things.update_one({"_id": _id}, {"$set": doc}, upsert=upsert)
                elif op == "unset":
                    await db.things.update_one({"_id": _id}, {"$unset": {unset: ""}})
                elif op == "replace":
                    await db.things.replace_one({"_id": _id}, doc)
                elif op == "delete":
                    await db.things.delete_one({"_id": _id})
                outcomes.append("ok")
            except DuplicateKeyError as exc:
                outcomes.append(("duplicate", exc.code, str(exc).split(",")[0]))
        assert outcomes[0] == outcomes[1], (step, op, _id, doc)
        assert [d async for d in stores[0].things.find({})] == [d async for d in stores[1].things.find({})]


async def test_expired_presence_disappears_with_a_delete_event(store_handle):  # embedded only: MongoDB's
    presence = store_handle.db.presence  # TTL monitor runs each 60 s
    now = datetime.now(timezone.utc)
    async with presence.watch() as stream:
        await presence.insert_one({"_id": "p1", "collaborationId": "col_1", "expiresAt": now - timedelta(seconds=1)})
        await presence.insert_one({"_id": "p2", "collaborationId": "col_1", "expiresAt": now + timedelta(minutes=1)})
        assert [doc["_id"] async for doc in presence.find({"collaborationId": "col_1"})] == ["p2"]
        changes = [await stream.next() for _ in range(3)]
    assert [(c["operationType"], c["documentKey"]["_id"]) for c in changes] == [
        ("insert", "p1"),
        ("insert", "p2"),
        ("delete", "p1"),
    ]


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


# -- what a write reports: the embedded store copies and compares only what an update names (see
#    EmbeddedCollection._modify); its events must be those of comparing the whole document before and
#    after (describe_update over whole documents), and its documents those of plain mongomock


async def test_events_and_documents_match_plain_mongomock_over_random_writes(store_handle):  # embedded only
    from mongomock_motor import AsyncMongoMockClient
    from pymongo import ReturnDocument

    from backend.store.updates import describe_update, same

    coll = store_handle.db.docs
    plain = AsyncMongoMockClient(tz_aware=True)["tandem"].docs  # no events, no copies cut: the reference
    for target in (coll, plain):
        await target.create_index("code", unique=True, sparse=True)
    rng = random.Random(7)
    base = datetime(2026, 5, 1, 12, 0, 0, 123000, tzinfo=timezone.utc)

    def when() -> datetime:
        return base + timedelta(minutes=rng.randrange(1000))

    def member(n: int) -> dict:
        return {"id": f"m{n}", "role": rng.choice(["owner", "editor", "viewer"]), "at": when(), "tags": ["a"]}

    def document(_id: int) -> dict:
        return {
            "_id": _id,
            "kind": rng.choice("xy"),
            "title": f"t{rng.randrange(5)}",
            "version": 1,
            "meta": {"n": rng.randrange(3), "at": when(), "deep": {"list": [1, 2]}},
            "members": [member(n) for n in range(rng.randrange(4))],
        }

    def write() -> tuple[str, Any, Any]:
        """(method, args, kwargs) of one random write."""
        _id = rng.randrange(6)
        n = rng.randrange(4)
        choices = [
            ("update_one", ({"_id": _id}, {"$set": {"title": f"t{rng.randrange(5)}", "updatedAt": when()}}), {}),
            (
                "update_one",
                ({"_id": _id}, {"$set": {f"members.{n}.role": "editor", "meta.at": when()}, "$inc": {"version": 1}}),
                {},
            ),
            ("update_one", ({"_id": _id}, {"$set": {"meta.deep.list": [rng.randrange(3)]}}), {}),
            ("update_one", ({"_id": _id}, {"$unset": {rng.choice(["meta.n", "title", "code", "nothing"]): ""}}), {}),
            ("update_one", ({"_id": _id}, {"$push": {"members": member(rng.randrange(9))}}), {}),
            ("update_one", ({"_id": _id}, {"$push": {f"members.{n}.tags": "b"}}), {}),
            ("update_one", ({"_id": _id}, {"$pull": {"members": {"id": f"m{n}"}}}), {}),
            ("update_one", ({"_id": _id}, {"$rename": {"title": "name"}}), {}),
            ("update_one", ({"_id": _id}, {"$rename": {"name": "title"}}), {}),
            ("update_one", ({"_id": _id, "members.id": f"m{n}"}, {"$set": {"members.$.role": "owner"}}), {}),
            ("update_one", ({"_id": _id}, {"$set": {"code": f"c{rng.randrange(3)}"}}), {}),
            ("update_one", ({"_id": _id}, {"$set": {"_id": 99}}), {}),
            ("update_one", ({"_id": _id}, {"$set": {"title": "up"}}), {"upsert": True}),
            ("update_one", ({"_id": _id}, [{"$set": {"piped": "$title"}}]), {}),
            ("update_many", ({"kind": rng.choice("xy")}, {"$inc": {"version": 1}, "$set": {"meta.n": 9}}), {}),
            ("update_many", ({}, {"$set": {"code": "same"}}), {}),
            ("replace_one", ({"_id": _id}, {k: v for k, v in document(_id).items() if k != "_id"}), {}),
            (
                "find_one_and_update",
                ({"_id": _id}, {"$set": {"meta.n": rng.randrange(3)}}),
                {"return_document": ReturnDocument.AFTER},
            ),
            ("find_one_and_replace", ({"_id": _id}, {"title": "replaced", "members": []}), {}),
            ("insert_one", (document(_id),), {}),
            ("delete_one", ({"_id": _id},), {}),
        ]
        return rng.choice(choices)

    async def everything(target) -> list[dict]:
        return [doc async for doc in target.find({})]

    async with coll.watch(max_await_time_ms=0) as stream:
        for step in range(500):
            method, args, kwargs = write()
            befores = {doc["_id"]: doc for doc in await everything(plain)}
            outcomes = []
            for target in (coll, plain):
                try:
                    returned = await getattr(target, method)(*copy.deepcopy(args), **kwargs)
                    outcomes.append(("ok", returned if method.startswith("find") else None))
                except Exception as exc:  # noqa: BLE001 - whatever mongomock raises, both must raise it
                    outcomes.append((type(exc).__name__, None))
            assert outcomes[0] == outcomes[1], (step, method, args)
            afters = {doc["_id"]: doc for doc in await everything(plain)}
            assert await everything(coll) == list(afters.values()), (step, method, args)
            expected = []  # what comparing whole documents gives, in the order they were written
            for _id in list(befores) + [i for i in afters if i not in befores]:
                before, after = befores.get(_id), afters.get(_id)
                if before is None and after is not None:
                    expected.append(("insert", _id, after))
                elif after is None and before is not None:
                    expected.append(("delete", _id, None))
                elif method.endswith("replace_one") or method == "find_one_and_replace":
                    if not same(before, after):
                        expected.append(("replace", _id, after))
                elif "update" in method and (described := describe_update(args[1], before, after)) is not None:
                    expected.append(
                        ("update", _id, described[1]) if described[0] == "update" else ("replace", _id, after)
                    )
            seen = []
            while (change := await stream.try_next()) is not None:
                body = (
                    change.get("fullDocument")
                    if change["operationType"] in ("insert", "replace")
                    else change.get("updateDescription")
                )
                seen.append((change["operationType"], change["documentKey"]["_id"], body))
            assert sorted(seen, key=repr) == sorted(expected, key=repr), (step, method, args)


async def test_reads_by_id_match_plain_mongomock_and_stay_private_over_random_writes(store_handle):  # embedded only
    """`find_one({"_id": x})` keeps each document's UTC-aware form between writes (embedded.py
    `_AwareForms`): what it returns is still the document as written, a copy of its own."""
    from mongomock_motor import AsyncMongoMockClient

    coll = store_handle.db.docs
    plain = AsyncMongoMockClient(tz_aware=True)["tandem"].docs
    rng = random.Random(11)
    base = datetime(2026, 5, 1, 12, 0, 0, 123000, tzinfo=timezone.utc)

    def when() -> datetime:
        return base + timedelta(minutes=rng.randrange(1000))

    def document(_id: int) -> dict:
        return {"_id": _id, "at": when(), "meta": {"at": when(), "n": 1}, "log": [{"at": when()}], "title": "t"}

    def write() -> tuple[str, tuple]:
        _id = rng.randrange(4)
        return rng.choice(
            [
                ("update_one", ({"_id": _id}, {"$set": {"title": f"t{rng.randrange(5)}", "at": when()}})),
                ("update_one", ({"_id": _id}, {"$set": {"meta.at": when()}, "$inc": {"meta.n": 1}})),
                ("update_one", ({"_id": _id}, {"$push": {"log": {"at": when()}}})),
                ("update_one", ({"_id": _id}, {"$unset": {"title": ""}})),
                ("update_one", ({"_id": _id}, {"$rename": {"meta": "moved"}})),
                ("update_one", ({"_id": _id}, [{"$set": {"piped": "$title"}}])),
                ("update_many", ({}, {"$set": {"later": when()}})),
                ("replace_one", ({"_id": _id}, {k: v for k, v in document(_id).items() if k != "_id"})),
                ("find_one_and_update", ({"_id": _id}, {"$set": {"title": "x"}})),
                ("insert_one", (document(_id),)),
                ("delete_one", ({"_id": _id},)),
            ]
        )

    for step in range(300):
        method, args = write()
        for target in (coll, plain):
            try:
                await getattr(target, method)(*copy.deepcopy(args))
            except DuplicateKeyError:
                pass
        for _id in range(4):
            found, expected = await coll.find_one({"_id": _id}), await plain.find_one({"_id": _id})
            assert found == expected, (step, method, args)
            if found is not None:  # a private copy: changing it changes nothing stored
                assert found["at"].utcoffset() == timedelta(0)
                found["title"] = "changed"
                for value in found.values():
                    if isinstance(value, dict):
                        value["n"] = "changed"
                    elif isinstance(value, list):
                        value.append("changed")
                assert await coll.find_one({"_id": _id}) == expected, (step, method, args)


async def test_a_document_read_again_unchanged_converts_no_datetime_again(store_handle):  # embedded only
    coll = store_handle.db.docs
    await coll.insert_one({"_id": "d", "at": datetime(2026, 5, 1, 12, 0), "log": [{"at": datetime(2026, 5, 2)}]})
    first = await coll.find_one({"_id": "d"})
    second = await coll.find_one({"_id": "d"})
    assert first == second and first is not second and first["log"] is not second["log"]
    assert second["at"] is first["at"] and second["log"][0]["at"] is first["log"][0]["at"]  # the kept form's
    await coll.update_one({"_id": "d"}, {"$set": {"title": "new"}})
    third = await coll.find_one({"_id": "d"})
    assert third["title"] == "new" and third["log"][0]["at"] is first["log"][0]["at"]  # untouched: not converted
    await coll.update_one({"_id": "d"}, {"$set": {"log.0.at": datetime(2026, 5, 3)}})
    fourth = await coll.find_one({"_id": "d"})
    assert fourth["log"][0]["at"] == datetime(2026, 5, 3, tzinfo=timezone.utc) and fourth["at"] is first["at"]


async def test_writes_by_id_with_a_projection_match_plain_mongomock(store_handle):  # embedded only
    """A write whose filter names one `_id` tests that document only, and an inclusion projection
    is made from it directly (embedded.py `_ids`, `_find_by_id`): the same answers as mongomock's
    scan and projection, or the same error."""
    from mongomock_motor import AsyncMongoMockClient
    from pymongo import ReturnDocument

    coll = store_handle.db.docs
    plain = AsyncMongoMockClient(tz_aware=True)["tandem"].docs
    at = datetime(2026, 5, 1, 12, 0, tzinfo=timezone.utc)
    for target in (coll, plain):
        for n in range(3):
            await target.insert_one({"_id": f"d{n}", "n": n, "seq": 1, "at": at, "sub": {"at": at}, "status": "on"})
    filters = [
        {"_id": "d1"},
        {"_id": "d1", "status": "on"},
        {"_id": "d1", "status": "off"},
        {"_id": "d1", "at": at},
        {"_id": "d1", "at": {"$lt": at}},
        {"_id": "nope"},
        {"_id": "d2", "n": {"$bogus": 1}},
        {"_id": "nope", "n": {"$bogus": 1}},
    ]
    projections = [None, {"seq": 1}, {"seq": 1, "at": True}, {"seq": 1, "_id": 0}, {"sub": 1, "nothing": 1}, {"n": 0}]
    for filter in filters:
        for projection in projections:
            for returned in (ReturnDocument.BEFORE, ReturnDocument.AFTER):
                outcomes = []
                for target in (coll, plain):
                    try:
                        outcomes.append(
                            await target.find_one_and_update(
                                filter, {"$inc": {"seq": 1}}, projection, return_document=returned
                            )
                        )
                    except Exception as exc:  # noqa: BLE001 - whatever mongomock raises, both must raise it
                        outcomes.append(type(exc).__name__)
                assert outcomes[0] == outcomes[1], (filter, projection, returned)
                if isinstance(outcomes[0], dict) and "at" in outcomes[0]:
                    assert outcomes[0]["at"].utcoffset() == timedelta(0)
    assert [d async for d in coll.find({})] == [d async for d in plain.find({})]
    found = await coll.find_one_and_update({"_id": "d0"}, {"$set": {"x": 1}}, {"seq": 1, "x": 1}, return_document=True)
    assert list(found) == ["_id", "seq", "x"]  # MongoDB's order: the document's


async def test_find_one_shared_lends_the_kept_form_and_a_reader_that_changes_it_is_caught(store_handle):
    """`find_one_shared` (the engine's read, `Collaborations.get_shared`): what `find_one` returns,
    with its own top-level dict and the store's values, not copies; the suite's check
    (`CHECK_SHARED_FORMS`, tests/conftest.py) fails a reader that changes them."""
    from backend.store import embedded

    assert embedded.CHECK_SHARED_FORMS
    coll = store_handle.db.docs
    await coll.insert_one({"_id": "s", "at": datetime(2026, 5, 1), "members": [{"id": "m1"}], "seq": 3})
    first, second = await coll.find_one_shared("s"), await coll.find_one_shared("s")
    assert first == second == await coll.find_one({"_id": "s"})
    assert first["at"].utcoffset() == timedelta(0)
    assert first is not second and first["members"] is second["members"]  # lent, not copied
    first.pop("seq")  # its own top level: changing it changes nothing stored
    first["title"] = "mine"
    assert await coll.find_one({"_id": "s"}) == second
    assert await coll.find_one_shared("nothing") is None
    second["members"][0]["id"] = "changed"  # below the top level: the store's own
    with pytest.raises(AssertionError, match="changed by a reader"):
        await coll.find_one({"_id": "s"})
    second["members"][0]["id"] = "m1"


async def test_an_update_copies_only_the_paths_it_names_and_the_next_read_reuses_the_rest(store_handle):
    """`_Writable.of` copies the containers on the update's paths only (`_copy_paths`), and the
    kept form is rebuilt from the previous one wherever the stored objects are the same
    (`_reformed`): the untouched elements of a changed list are not converted again."""
    coll = store_handle.db.docs
    items = [{"n": n, "at": datetime(2026, 5, 1), "tags": ["a"]} for n in range(5)]
    await coll.insert_one({"_id": "p", "items": items, "other": {"at": datetime(2026, 5, 2)}})
    first = await coll.find_one_shared("p")
    await coll.update_one({"_id": "p"}, {"$push": {"items.3.tags": "b"}, "$inc": {"items.3.n": 1}})
    second = await coll.find_one_shared("p")
    assert second["items"][3] == {"n": 4, "at": datetime(2026, 5, 1, tzinfo=timezone.utc), "tags": ["a", "b"]}
    assert first["items"][3]["tags"] == ["a"]  # the previous version was left alone
    assert second["items"] is not first["items"] and second["items"][3] is not first["items"][3]
    assert all(second["items"][i] is first["items"][i] for i in (0, 1, 2, 4))  # not copied, not converted
    assert second["other"] is first["other"]
    await coll.update_one({"_id": "p", "items.n": 0}, {"$set": {"items.$.n": 9}})  # positional: the whole list
    third = await coll.find_one_shared("p")
    assert [item["n"] for item in third["items"]] == [9, 1, 2, 4, 4] and third["other"] is first["other"]


async def test_nested_updates_match_plain_mongomock_with_their_events_over_random_writes(store_handle):  # embedded only
    """Path copies against plain mongomock on nested lists and documents: the same documents,
    the change events of comparing whole documents, and every kept form checked
    (CHECK_SHARED_FORMS) on every read."""
    from mongomock_motor import AsyncMongoMockClient

    from backend.store.updates import describe_update

    coll = store_handle.db.nested
    plain = AsyncMongoMockClient(tz_aware=True)["tandem"].nested
    rng = random.Random(5)

    def item(n: int) -> dict:
        return {"n": n, "tags": ["a"], "sub": {"x": n, "deep": [[n]]}}

    for target in (coll, plain):
        await target.insert_one({"_id": 1, "items": [item(n) for n in range(4)], "meta": {"a": {"b": 1}}})

    def write() -> tuple[dict, Any]:
        i, j = rng.randrange(6), rng.randrange(3)
        return rng.choice(
            [
                ({"_id": 1}, {"$set": {f"items.{i}.tags.{j}": "z"}}),
                ({"_id": 1}, {"$push": {f"items.{i}.tags": "p"}}),
                ({"_id": 1}, {"$addToSet": {f"items.{i}.tags": rng.choice("ap")}}),
                ({"_id": 1}, {"$pop": {f"items.{i}.tags": 1}}),
                ({"_id": 1}, {"$inc": {f"items.{i}.n": 1}}),
                ({"_id": 1}, {"$unset": {f"items.{i}.sub.x": ""}}),
                ({"_id": 1}, {"$set": {f"items.{i}.sub.deep.0.0": rng.randrange(9)}}),
                ({"_id": 1}, {"$push": {f"items.{i}.sub.deep.0": 7}}),
                ({"_id": 1}, {"$set": {f"items.{i}": item(rng.randrange(9))}}),
                ({"_id": 1}, {"$push": {"items": item(rng.randrange(9))}}),
                ({"_id": 1}, {"$pull": {"items": {"n": rng.randrange(9)}}}),
                ({"_id": 1}, {"$set": {"items.9": item(9)}}),
                ({"_id": 1, "items.n": rng.randrange(9)}, {"$set": {"items.$.n": 0, "meta.a.b": rng.randrange(3)}}),
                ({"_id": 1}, {"$rename": {"meta": "info"}}),
                ({"_id": 1}, {"$rename": {"info": "meta"}}),
                ({"_id": 1}, {"$set": {"meta.a.b": {"c": [1, 2]}}}),
                ({"_id": 1}, {"$set": {"items.x": 1}}),  # a field of a list: refused
            ]
        )

    applied = 0
    async with coll.watch(max_await_time_ms=0) as stream:
        for step in range(400):
            filter, update = write()
            before = await plain.find_one({"_id": 1})
            outcomes = []
            for target in (coll, plain):
                try:
                    await target.update_one(copy.deepcopy(filter), copy.deepcopy(update))
                    outcomes.append("ok")
                except Exception as exc:  # noqa: BLE001 - whatever mongomock raises, both must raise it
                    outcomes.append(type(exc).__name__)
            assert outcomes[0] == outcomes[1], (step, filter, update)
            applied += outcomes[0] == "ok"
            after = await plain.find_one({"_id": 1})
            assert await coll.find_one_shared(1) == after, (step, filter, update)
            assert await coll.find_one({"_id": 1}) == after, (step, filter, update)
            described = describe_update(update, before, after)
            seen = []
            while (change := await stream.try_next()) is not None:
                seen.append(change["updateDescription"])
            assert seen == ([described[1]] if described else []), (step, filter, update)
    assert applied > 300  # most writes ran (a few are refused as MongoDB refuses them)


async def test_get_shared_answers_as_get_on_both_stores(any_store_handle):
    """`Collaborations.get_shared` (the engine's read) is `get` on MongoDB and, lent instead of
    copied, the same document on the embedded store."""
    from backend.store.collaborations import Collaborations
    from backend.store.writes import Writer

    collaborations = Collaborations(
        any_store_handle.db, Writer(any_store_handle.client, any_store_handle.embedded), 16_000_000
    )
    at = datetime(2026, 5, 1, 12, 0, tzinfo=timezone.utc)
    doc = {"_id": "col_shared", "title": "T", "version": 1, "members": [{"userId": "u1", "at": at}], "seq": 1}
    await any_store_handle.db.collaborations.insert_one(doc)
    shared = await collaborations.get_shared("col_shared")
    assert shared == await collaborations.get("col_shared")
    assert shared is not None and "seq" not in shared and shared["members"][0]["at"] == at
    assert await collaborations.get_shared("col_none") is None
    assert await collaborations.get_shared(7) is None  # type: ignore[arg-type]  # not an id


def test_the_stored_form_is_mongomocks_own_value_for_value(monkeypatch):
    """embedded.py installs `_stored_form` as mongomock's `patch_datetime_awareness_in_document`:
    over random nested values, the same result (types included) as mongomock's own."""
    from collections import OrderedDict

    from bson import SON, ObjectId, Timestamp
    from mongomock import helpers

    from backend.store import embedded

    rng = random.Random(3)

    def value(depth: int = 0) -> Any:
        kinds = ["str", "int", "float", "bool", "none", "oid", "naive", "aware", "ts", "bytes"]
        if depth < 4:
            kinds += ["dict", "dict", "list", "list", "ordered", "son", "tuple"]
        kind = rng.choice(kinds)
        if kind in ("dict", "ordered", "son"):
            items = [(f"k{n}", value(depth + 1)) for n in range(rng.randrange(4))]
            return {"dict": dict, "ordered": OrderedDict, "son": SON}[kind](items)
        if kind in ("list", "tuple"):
            items = [value(depth + 1) for _ in range(rng.randrange(4))]
            return items if kind == "list" else tuple(items)
        at = datetime(2026, 5, 1, 12, 0, 0, rng.randrange(10**6))
        return {
            "str": "s",
            "int": rng.randrange(9),
            "float": 1.5,
            "bool": True,
            "none": None,
            "oid": ObjectId(),
            "naive": at,
            "aware": at.replace(tzinfo=PARIS_SUMMER),
            "ts": Timestamp(5, 1),
            "bytes": b"x",
        }[kind]

    def typed(v: Any) -> Any:  # equality that also compares every type and tzinfo
        if isinstance(v, dict):
            return (type(v), [(k, typed(x)) for k, x in v.items()])
        if isinstance(v, (list, tuple)):
            return (type(v), [typed(x) for x in v])
        return (type(v), v, getattr(v, "tzinfo", None))

    assert helpers.patch_datetime_awareness_in_document is embedded._stored_form
    values = [value() for _ in range(400)]
    ours = [typed(embedded._stored_form(v)) for v in values]
    monkeypatch.setattr(helpers, "patch_datetime_awareness_in_document", embedded._patch_datetimes)
    assert ours == [typed(helpers.patch_datetime_awareness_in_document(v)) for v in values]


# -- transactions: what only real MongoDB does ----------------------------------------------------


async def test_a_write_that_fails_half_way_is_rolled_back_on_mongodb_only(any_store_handle):
    """Collaborations.insert writes the document and its audit entry in one transaction; the audit
    insert fails here (its (collaborationId, version) is taken). MongoDB rolls the document back.
    The embedded store has no transactions (docs/store.md): the document stays - this test is
    where that difference is written down."""
    from pymongo.errors import DuplicateKeyError

    from backend.store.store import Store

    store = Store(any_store_handle, test_settings())
    db = any_store_handle.db
    await db.audit.insert_one({"_id": "aud_0", "collaborationId": "col_tx", "version": 1, "versioned": True})
    doc = {"_id": "col_tx", "title": "t", "version": 1, "memberIds": [], "members": []}
    with pytest.raises(DuplicateKeyError):
        await store.collaborations.insert(
            doc, {"_id": "aud_1", "collaborationId": "col_tx", "version": 1, "versioned": True}
        )
    kept = await db.collaborations.find_one({"_id": "col_tx"})
    if any_store_handle.embedded:
        assert kept is not None  # no rollback on the embedded store
    else:
        assert kept is None  # the transaction was aborted: nothing of it is left


async def test_the_events_of_a_transaction_carry_its_identity_on_mongodb_only(any_store_handle):
    """On MongoDB the events of one transaction share its clusterTime and carry lsid and
    txnNumber; the embedded store has no transactions, so its events are separate writes. Nothing
    in Tandem reads these fields; this test is where the difference is written down."""
    from backend.store.store import Store

    store = Store(any_store_handle, test_settings())
    async with any_store_handle.db.watch(max_await_time_ms=200) as stream:
        await store.collaborations.insert(
            {"_id": "col_ev", "title": "t", "version": 1, "memberIds": [], "members": []},
            {"_id": "aud_ev", "collaborationId": "col_ev", "version": 1, "versioned": True},
        )
        events = [await asyncio.wait_for(stream.next(), 10) for _ in range(2)]
    assert [e["ns"]["coll"] for e in events] == ["collaborations", "audit"]
    if any_store_handle.embedded:
        assert events[0]["clusterTime"] < events[1]["clusterTime"]
        assert all("txnNumber" not in e and "lsid" not in e for e in events)
    else:
        assert events[0]["clusterTime"] == events[1]["clusterTime"]
        assert all("txnNumber" in e and "lsid" in e for e in events)


async def test_ttl_deletes_after_a_rename_name_the_new_collection(store_handle):  # embedded only: TTL timing
    db = store_handle.db
    await db.expiring.create_index("at", expireAfterSeconds=0)
    await db.expiring.insert_one({"_id": 1, "at": datetime.now(timezone.utc) + timedelta(milliseconds=50)})
    await db.expiring.rename("expiring_renamed")
    async with db.watch(max_await_time_ms=50) as stream:
        await asyncio.sleep(0.1)
        assert await db.expiring_renamed.count_documents({}) == 0  # the read expires it
        change = await asyncio.wait_for(stream.next(), 5)
    assert (change["operationType"], change["ns"]["coll"]) == ("delete", "expiring_renamed")


async def test_top_level_updates_match_plain_mongomock_without_its_update_machinery(
    store_handle, monkeypatch
):  # embedded only
    """`$set`/`$unset`/`$inc` of top-level fields run without mongomock's update (EmbeddedCollection.
    _update_top_level): the same documents, results, errors and events as plain mongomock, over
    random updates — lists, datetimes, missing fields, no-op writes, a unique key taken (undone),
    and the cases it hands back to mongomock (a value BSON cannot encode, an `$inc` of a string)."""
    from mongomock.collection import Collection
    from mongomock_motor import AsyncMongoMockClient
    from pymongo import ReturnDocument

    from backend.store.updates import describe_update

    machinery = []
    apply_update = Collection._apply_update_document

    def counted(self, *args, **kwargs):
        machinery.append(self.name)
        return apply_update(self, *args, **kwargs)

    monkeypatch.setattr(Collection, "_apply_update_document", counted)
    coll = store_handle.db.tops
    plain = AsyncMongoMockClient(tz_aware=True)["tandem"].tops
    rng = random.Random(11)
    base = datetime(2026, 5, 1, 12, 0, 0, 123456, tzinfo=timezone.utc)
    for target in (coll, plain):
        await target.create_index("code", unique=True, sparse=True)
        for _id in range(4):
            await target.insert_one({"_id": _id, "n": _id, "title": "t", "tags": ["a"], "at": base})

    def value() -> Any:
        return rng.choice(
            [f"t{rng.randrange(3)}", rng.randrange(3), 1.5, None, True, ["x", {"y": base}], {"k": [1, 2]}, base]
        )

    def update() -> tuple[dict, bool]:
        """A random update, and whether the embedded store runs it without mongomock's update."""
        fields = rng.sample(["n", "title", "tags", "at", "code", "new", "f"], rng.randrange(1, 5))
        out: dict[str, dict] = {}
        for name in fields:
            operator = rng.choice(["$set", "$set", "$unset", "$inc"])
            if operator == "$set":
                out.setdefault("$set", {})[name] = f"c{rng.randrange(3)}" if name == "code" else value()
            elif operator == "$unset":
                out.setdefault("$unset", {})[name] = ""
            else:
                out.setdefault("$inc", {})[name] = rng.choice([1, -2, 0.5])
        if "code" in out.get("$set", {}):  # an update failing half way keeps a duplicate key (both stores do)
            out.pop("$inc", None)
        plain_path = True
        if rng.random() < 0.1 and "code" not in out.get("$set", {}):
            out.setdefault("$set", {})["bad"] = {1, 2}  # BSON cannot encode a set: mongomock's update runs
            plain_path = False
        return out, plain_path

    def stored_kind_allows_inc(doc: dict | None, spec: dict) -> bool:
        return doc is None or all(type(doc.get(name, 0)) in (int, float) for name in spec.get("$inc", {}))

    tally: collections.Counter = collections.Counter()
    async with coll.watch(max_await_time_ms=0) as stream:
        for step in range(400):
            _id = rng.randrange(5)  # 4 matches no document
            spec, plain_path = update()
            method = rng.choice(["update_one", "find_one_and_update"])
            kwargs = {"return_document": ReturnDocument.AFTER} if method == "find_one_and_update" else {}
            before = await plain.find_one({"_id": _id})
            plain_path = plain_path and before is not None and stored_kind_allows_inc(before, spec)
            machinery.clear()
            outcomes = []
            for target in (coll, plain):
                try:
                    returned = await getattr(target, method)({"_id": _id}, copy.deepcopy(spec), **kwargs)
                    if method == "update_one":
                        raw = {k: v for k, v in returned.raw_result.items() if k != "connectionId"}
                        returned = (returned.matched_count, returned.modified_count, returned.upserted_id, raw)
                    outcomes.append(("ok", returned))
                except Exception as exc:  # noqa: BLE001 - whatever mongomock raises, both must raise it
                    outcomes.append((type(exc).__name__, str(exc)))
            assert outcomes[0] == outcomes[1], (step, spec)
            modified = outcomes[0][1][1] if method == "update_one" and outcomes[0][0] == "ok" else None
            tally[(plain_path, outcomes[0][0], modified)] += 1
            # plain mongomock's update ran; the embedded store's too only where it hands the update back
            assert machinery == ["tops"] * (0 if before is None else 1 if plain_path else 2), (step, spec)
            after = await plain.find_one({"_id": _id})
            assert [d async for d in coll.find({})] == [d async for d in plain.find({})], (step, spec)
            seen = []
            while (change := await stream.try_next()) is not None:
                seen.append((change["operationType"], change["documentKey"]["_id"], change.get("updateDescription")))
            described = describe_update(spec, before, after) if before is not None and after is not None else None
            assert seen == ([("update", _id, described[1])] if described else []), (step, spec)
    # each case was met: written, unchanged (nothing modified), a key taken (undone), handed back
    for case in [(True, "ok", 1), (True, "ok", 0), (True, "DuplicateKeyError", None)]:
        assert tally[case] >= 3, tally
    assert tally[(False, "TypeError", None)] and tally[(False, "InvalidDocument", None)], tally


async def test_after_a_rename_a_query_on_one_id_reads_the_collection_under_its_name(any_store_handle):
    """A one-`_id` query tests the document stored under the collection's name at the time of the
    query: after `a` is renamed `b`, a handle on `a` (taken before) finds nothing, and handles on
    `b` (taken before or after) find, change and delete the document."""
    db = any_store_handle.db
    await db.drop_collection("renamed_from")
    await db.drop_collection("renamed_to")
    a, b_before = db.renamed_from, db.renamed_to
    await a.insert_one({"_id": "x", "n": 1})
    assert await a.find_one({"_id": "x"}) == {"_id": "x", "n": 1}
    await a.rename("renamed_to")
    assert await a.count_documents({"_id": "x"}) == 0
    assert (await a.update_one({"_id": "x"}, {"$set": {"n": 99}})).matched_count == 0
    assert (await a.delete_one({"_id": "x"})).deleted_count == 0
    b = db.renamed_to
    assert (await b_before.update_one({"_id": "x"}, {"$set": {"n": 2}})).matched_count == 1
    assert await b.find_one({"_id": "x"}) == {"_id": "x", "n": 2}
    assert await b.find({"n": {"$gte": 0}}).to_list(None) == [{"_id": "x", "n": 2}]  # the scan agrees
    assert await b_before.count_documents({"_id": "x"}) == 1
    assert (await b_before.delete_one({"_id": "x"})).deleted_count == 1
    assert await b.find_one({"_id": "x"}) is None


async def test_a_deleted_or_dropped_documents_kept_form_is_let_go(store_handle):  # embedded only
    """The UTC-aware forms kept for reads (`_AwareForms`) go with their documents: a delete, a
    TTL expiry, a drop and a dropped database leave none behind (nor the memory they hold)."""
    from backend.store.embedded import _AwareForms

    db = store_handle.db

    def kept(coll: Any) -> int:
        return len(_AwareForms.of(coll._sync._store)._forms)

    coll = db.forms_kept
    await coll.insert_many([{"_id": f"d{i}", "items": [{"k": k} for k in range(20)]} for i in range(30)])
    for i in range(30):
        await coll.find_one({"_id": f"d{i}"})
    assert kept(coll) == 30
    await coll.delete_one({"_id": "d0"})
    await coll.find_one_and_delete({"_id": "d1"})
    assert kept(coll) == 28
    await coll.delete_many({"_id": {"$in": ["d2", "d3"]}})
    assert kept(coll) == 26
    await coll.drop()
    assert kept(coll) == 0

    await coll.create_index("at", expireAfterSeconds=0)
    await coll.insert_one({"_id": "t", "at": datetime.now(timezone.utc) + timedelta(milliseconds=30)})
    await coll.find_one({"_id": "t"})
    assert kept(coll) == 1
    await asyncio.sleep(0.06)
    assert await coll.count_documents({}) == 0  # the read expires it
    assert kept(coll) == 0

    await coll.insert_one({"_id": "z"})
    await coll.find_one({"_id": "z"})
    assert kept(coll) == 1
    await store_handle.client.drop_database(db.name)
    assert kept(coll) == 0


async def test_a_top_level_update_refused_by_a_unique_index_is_undone_for_a_dict_id(store_handle):  # embedded only
    """The top-level fast path undoes a write a unique index refuses by the document's stored key:
    a dict `_id` (a hashdict in mongomock's store) included. The other document keeps its code."""
    coll = store_handle.db.dict_ids
    await coll.create_index("code", unique=True)
    await coll.insert_one({"_id": {"k": 1}, "code": "a"})
    await coll.insert_one({"_id": {"k": 2}, "code": "b"})
    with pytest.raises(DuplicateKeyError):
        await coll.update_one({"_id": {"k": 2}}, {"$set": {"code": "a"}})
    assert await coll.find({}, {"_id": 1, "code": 1}).to_list(None) == [
        {"_id": {"k": 1}, "code": "a"},
        {"_id": {"k": 2}, "code": "b"},
    ]


def test_plain_filters_are_matched_as_mongomock_matches_them(monkeypatch):
    """`backend.store.matching.matches` answers plain filters (equality on values of plain types,
    `$exists`, `$in`, dotted paths through dicts) itself: over random filters and documents —
    lists, tuples, nulls and missing fields on the way, 1 / 1.0 / True, naive and aware datetimes,
    SON, dotted and odd keys, operators and regexes it hands on — the same answer or the same error
    as mongomock's `filter_applies`, and many of them without it."""
    import re

    from bson import SON, ObjectId
    from mongomock import filtering

    from backend.store import matching
    from backend.store.embedded import _Writable

    rng = random.Random(5)
    oid = ObjectId()
    at = datetime(2026, 5, 1, 12, 0)
    leaves = ["a", "b", "", 0, 1, 2, 1.0, 2.5, True, False, None, oid, str(oid), at, at.replace(tzinfo=timezone.utc)]
    keys = ["a", "b", "n", "a.b", "a.c", "x.y"] * 4 + ["a.b.c", "a.0", ".a", "a..b", "a.", "", "$comment", "$and", "$x"]

    def value(depth: int = 0) -> Any:
        roll = rng.random()
        if depth < 3 and roll < 0.25:
            kind = rng.choice([dict, dict, SON])
            return kind((rng.choice(["a", "b", "c", "n", "0"]), value(depth + 1)) for _ in range(rng.randrange(4)))
        if depth < 3 and roll < 0.4:
            items = [value(depth + 1) for _ in range(rng.randrange(3))]
            return items if rng.random() < 0.8 else tuple(items)
        return rng.choice(leaves)

    def condition() -> Any:
        roll = rng.random()
        if roll < 0.5:
            return rng.choice(leaves)
        if roll < 0.65:
            return {"$exists": rng.choice([True, False, 1, 0])}
        if roll < 0.8:
            return {"$in": rng.sample(leaves, rng.randrange(4)) if rng.random() < 0.9 else "a"}
        return rng.choice(
            [{"$ne": "a"}, {"$gt": 1}, re.compile("^a"), {"$exists": True, "$ne": None}, {}, [1], {"b": 1}]
        )

    def answer(fn: Any, search: Any, document: Any) -> Any:
        try:
            return fn(search, document)
        except Exception as exc:  # noqa: BLE001 - whatever mongomock raises, matches must raise it too
            return (type(exc).__name__, str(exc))

    handed_on = []
    plain = filtering.filter_applies

    def counted(search: Any, document: Any) -> Any:
        handed_on.append(search)
        return plain(search, document)

    monkeypatch.setattr(matching, "filter_applies", counted)
    cases = 6000
    for step in range(cases):
        document = {k: value() for k in rng.sample(["a", "b", "n", "x", "_id"], rng.randrange(5))}
        document = rng.choice([document, document, _Writable(document)])
        search = {rng.choice(keys): condition() for _ in range(rng.randrange(1, 4))}
        if rng.random() < 0.3:  # a condition the document meets, to get past the first one
            key = rng.choice(list(document) or ["a"])
            search = {key: document.get(key), **search}
        expected = answer(plain, search, document)
        assert answer(matching.matches, search, document) == expected, (step, search, document)
    assert len(handed_on) < cases * 0.6  # two in five at least answered without mongomock's matcher


async def test_inserts_match_plain_mongomock_without_its_insert(store_handle, monkeypatch):  # embedded only
    """`insert_one` of a plain dict runs mongomock's insert steps itself (EmbeddedCollection.
    _insert_plain): over random documents — with and without `_id` (a string, an int, a dict), keys that are not strings or hold NUL or `$`, values BSON cannot encode, an `_id`
    taken, a (sparse or partial) unique key taken — the same results, errors (with their details),
    stored documents, caller's dicts and events as plain mongomock; refusals go to mongomock itself."""
    from bson import SON
    from mongomock.collection import Collection
    from mongomock_motor import AsyncMongoMockClient

    inserts = []
    plain_insert = Collection._insert

    def counted(self, *args, **kwargs):
        inserts.append(self.name)
        return plain_insert(self, *args, **kwargs)

    monkeypatch.setattr(Collection, "_insert", counted)
    coll = store_handle.db.inserts
    plain = AsyncMongoMockClient(tz_aware=True)["tandem"].inserts
    for target in (coll, plain):
        await target.create_index("code", unique=True, sparse=True)
        await target.create_index([("c", 1), ("v", 1)], unique=True, partialFilterExpression={"versioned": True})
    rng = random.Random(17)
    at = datetime(2026, 5, 1, 12, 0, 0, 123456, tzinfo=PARIS_SUMMER)

    def value() -> Any:
        return rng.choice(
            ["s", rng.randrange(3), 2.5, None, True, at, [1, {"at": at}], {"k": [at]}, {"a\x00": 1}]
            + [[{"b\x00": 1}], {"k": {"$x": 1}}, SON([("k", at), ("a\x00", 1)]), SON([("k", 1)]), {7: "int key"}]
        )

    def document() -> dict:
        doc: dict[Any, Any] = {}
        if rng.random() < 0.8:
            doc["_id"] = rng.choice([f"d{rng.randrange(30)}", rng.randrange(30), {"k": rng.randrange(5)}])
        for name in rng.sample(["a", "b", "code", "c", "v", "versioned"], rng.randrange(5)):
            doc[name] = {"code": f"k{rng.randrange(8)}", "c": "c", "v": rng.randrange(6), "versioned": True}.get(
                name, value()
            )
        roll = rng.random()
        if roll < 0.04:
            doc[3] = "not a string key"
        elif roll < 0.08:
            doc["$top"] = 1
        elif roll < 0.12:
            doc["n\x00ul"] = 1
        elif roll < 0.16:
            doc["bad"] = {1, 2}  # BSON cannot encode a set
        return doc

    tally: collections.Counter = collections.Counter()
    generated: list[dict] = [{}, {}]  # per store: the ObjectId each added -> one name for both

    def named(side: int, value: Any) -> Any:
        return generated[side].get(value, value) if isinstance(value, bson.ObjectId) else value

    async def stored(side: int, target: Any) -> list:
        return [{**d, "_id": named(side, d["_id"])} async for d in target.find({})]

    async with coll.watch(max_await_time_ms=0) as stream:
        for step in range(500):
            doc = document()
            given = [copy.deepcopy(doc), copy.deepcopy(doc)]
            inserts.clear()
            outcomes = []
            for side, (target, mine) in enumerate(zip((coll, plain), given)):
                try:
                    inserted = (await target.insert_one(mine)).inserted_id
                    outcomes.append(("ok", inserted))
                except Exception as exc:  # noqa: BLE001 - whatever mongomock raises, both must raise it
                    outcomes.append((type(exc).__name__, str(exc), getattr(exc, "details", None)))
                if "_id" not in doc and "_id" in mine:  # added to the caller's dict, as pymongo does
                    assert type(mine["_id"]) is bson.ObjectId
                    generated[side][mine["_id"]] = mine["_id"] = f"generated {step}"
                    if outcomes[-1][0] == "ok":
                        outcomes[-1] = ("ok", f"generated {step}")
            assert outcomes[0] == outcomes[1], (step, doc)
            assert given[0] == given[1], (step, doc)
            tally[outcomes[0][0]] += 1
            tally["no _id"] += "_id" not in doc
            # plain mongomock inserted; the embedded store handed to mongomock only what it refuses,
            # and documents holding another kind of mapping (SON), whose keys it leaves to mongomock
            handed_on = outcomes[0][0] != "ok" or "SON(" in repr(doc)
            assert inserts == ["inserts"] * (2 if handed_on else 1), (step, doc, inserts)
            assert await stored(0, coll) == await stored(1, plain), (step, doc)
            seen = []
            while (change := await stream.try_next()) is not None:
                full = {**change["fullDocument"], "_id": named(0, change["fullDocument"]["_id"])}
                seen.append((change["operationType"], named(0, change["documentKey"]["_id"]), full))
            if outcomes[0][0] == "ok":
                raw_id = next((k for k, v in generated[1].items() if v == outcomes[0][1]), outcomes[0][1])
                found = await plain.find_one({"_id": raw_id})
                assert seen == [("insert", outcomes[0][1], {**found, "_id": outcomes[0][1]})], (step, doc)
            else:
                assert seen == [], (step, doc)
    assert tally["ok"] >= 50 and tally["DuplicateKeyError"] >= 20 and tally["no _id"] >= 20, tally
    assert tally["InvalidDocument"] and tally["ValueError"], tally


def test_a_writable_copy_shares_and_copies_what_it_did_field_by_field():
    """`_Writable.of` starts from a copy of the stored document's top level and replaces the fields
    an update touches by copies: over random documents and updates, the same fields in the same
    order, the same values, and the same ones shared with the stored document (the others new)
    as building it field by field (what it did before)."""
    from backend.store.embedded import _LEAVES, _copy_paths, _paths, _touched, _Writable
    from backend.store.trees import structure

    def field_by_field(before: dict, touched: set | None, paths: dict | None) -> dict:
        if paths is None:
            return {k: v if type(v) in _LEAVES or k not in touched else structure(v) for k, v in before.items()}
        return {
            k: v if type(v) in _LEAVES or k not in touched else _copy_paths(v, paths.get(k, [[]]))
            for k, v in before.items()
        }

    rng = random.Random(23)
    names = ["a", "b", "c", "d", "e"]

    def value(depth: int = 0) -> Any:
        roll = rng.random()
        if depth < 3 and roll < 0.3:
            return {k: value(depth + 1) for k in rng.sample(names, rng.randrange(4))}
        if depth < 3 and roll < 0.5:
            return [value(depth + 1) for _ in range(rng.randrange(4))]
        return rng.choice(["s", 1, None, 2.5, datetime(2026, 5, 1)])

    for step in range(2000):
        before = {k: value() for k in rng.sample(names, rng.randrange(1, 6))}
        paths_named = [
            ".".join(rng.sample(names + ["0", "1"], rng.randrange(1, 4))) for _ in range(rng.randrange(1, 4))
        ]
        update = {"$set": {p: 1 for p in paths_named}}
        touched = _touched(update)
        for paths in (_paths(update), None):
            made = _Writable.of(before, touched, paths)
            expected = field_by_field(before, touched, paths)
            assert type(made) is _Writable and made.before is before
            assert list(made) == list(expected) and dict(made) == expected, (step, before, update)
            for k in before:
                assert (made[k] is before[k]) == (expected[k] is before[k]), (step, k, update)


def test_same_answers_as_its_plain_definition():
    """`updates.same` (the no-op check of every update's change event) is written as loops: over
    random pairs of values — nested dicts in different key orders, SON, lists, tuples, 1 / 1.0 /
    True, NaN, naive and aware datetimes, ObjectIds — the same answer as the plain recursive
    definition it replaced."""
    from bson import SON, ObjectId

    from backend.store.updates import same

    def plain(a: Any, b: Any) -> bool:
        if type(a) is not type(b):
            return False
        if isinstance(a, dict):
            return list(a) == list(b) and all(plain(a[k], b[k]) for k in a)
        if isinstance(a, list):
            return len(a) == len(b) and all(plain(x, y) for x, y in zip(a, b))
        return bool(a == b)

    rng = random.Random(29)
    oid = ObjectId()
    at = datetime(2026, 5, 1, 12, 0)
    leaves = ["a", "b", 1, 1.0, True, 0, False, None, float("nan"), at, at.replace(tzinfo=timezone.utc), oid, b"x"]

    def value(depth: int = 0) -> Any:
        roll = rng.random()
        if depth < 3 and roll < 0.3:
            kind = rng.choice([dict, dict, SON])
            return kind((k, value(depth + 1)) for k in rng.sample("abc", rng.randrange(4)))
        if depth < 3 and roll < 0.5:
            items = [value(depth + 1) for _ in range(rng.randrange(3))]
            return items if rng.random() < 0.8 else tuple(items)
        return rng.choice(leaves)

    def varied(v: Any) -> Any:  # often equal, sometimes reordered or changed a little
        roll = rng.random()
        if isinstance(v, dict) and roll < 0.2:
            return type(v)(reversed(list(v.items())))
        if isinstance(v, dict):
            return type(v)((k, varied(x)) for k, x in v.items())
        if isinstance(v, list):
            return [varied(x) for x in v] if roll < 0.9 else v[:-1]
        return v if roll < 0.85 else rng.choice(leaves)

    answers = collections.Counter()
    for step in range(5000):
        a = value()
        b = varied(a) if rng.random() < 0.8 else value()
        assert same(a, b) == plain(a, b), (step, a, b)
        answers[plain(a, b)] += 1
    assert answers[True] > 1000 and answers[False] > 1000, answers


async def test_an_insert_events_document_is_made_when_a_stream_reads_it(store_handle):  # embedded only
    """An insert event's `fullDocument` (changestream.Deferred) is made when a stream first reads the
    event: a `$match` on the envelope drops it unmade (the change reader and the audit entry), a
    `$match` on one of its fields sees it UTC-aware (an aware datetime matches), and it is the
    document as inserted even when read after the document was updated and deleted."""
    from backend.store.changestream import Deferred

    db = store_handle.db
    at = datetime(2026, 5, 1, 12, 0, 0, 123000, tzinfo=timezone.utc)
    log = db._changes
    by_ns = db.watch([{"$match": {"ns.coll": {"$in": ["other"]}}}], max_await_time_ms=0)
    by_field = db.watch([{"$match": {"fullDocument.at": at}}], max_await_time_ms=0)
    everything = db.watch(max_await_time_ms=0)
    async with by_ns, by_field, everything:
        await db.entries.insert_one({"_id": "e1", "at": at, "tags": [{"at": at}]})
        await db.entries.insert_one({"_id": "e2", "at": at.replace(year=2025)})
        inserted = [event for event in log._events if event["operationType"] == "insert"]
        assert [type(event["fullDocument"]) for event in inserted] == [Deferred, Deferred]
        assert await by_ns.try_next() is None
        assert [type(event["fullDocument"]) for event in inserted] == [Deferred, Deferred]  # still unmade
        await db.entries.update_one({"_id": "e1"}, {"$set": {"at": at.replace(year=2027), "tags": []}})
        await db.entries.delete_one({"_id": "e1"})
        matched = await by_field.try_next()
        assert matched is not None and matched["documentKey"] == {"_id": "e1"}
        assert await by_field.try_next() is None  # e2's `at` differs
        assert matched["fullDocument"] == {"_id": "e1", "at": at, "tags": [{"at": at}]}
        assert matched["fullDocument"]["tags"][0]["at"].utcoffset() == timedelta(0)
        first = await everything.try_next()
        assert first is not None and first["fullDocument"] == matched["fullDocument"]
        assert first["fullDocument"] is not matched["fullDocument"]  # each stream its own copy


def test_an_elements_size_is_counted_as_bson_encodes_it():
    """`size._element_size` counts the bytes of an element of a fixed-size type or a string itself:
    for every pair of keys and values below (ints at the int32 / int64 edges and past them, strings
    with multi-byte and unencodable characters, datetimes in several zones, Int64, nested values,
    keys with NUL or non-ASCII), the same size as BSON's own encoding, or the same error."""
    from bson import Int64, ObjectId

    from backend.store.size import _element_size

    at = datetime(2026, 5, 1, 12, 0, 0, 123456)
    values = [0, 1, -1, 2**31 - 1, 2**31, -(2**31), -(2**31) - 1, 2**63 - 1, -(2**63), 2**63, -(2**63) - 1]
    values += ["", "a", "é", "日本", "\ud800", "a\x00b", 1.5, float("nan"), True, False, None, ObjectId(), Int64(3)]
    values += [
        at,
        at.replace(tzinfo=timezone.utc),
        at.replace(tzinfo=PARIS_SUMMER),
        at.replace(tzinfo=bson.tz_util.utc),
    ]
    values += [[1, "x"], {"a": at}, b"bytes", bson.Timestamp(1, 2), [], {}, {"a": {"b": [1, {"c": "é"}]}}]
    values += [{"a": 2**63}, {"a\x00": 1}, {1: "x"}, {"é": 1}, [{"a": "\ud800"}], ({"a": 1},), {"a": (1, 2)}]
    values += [{"name": "updateDetails", "actor": {"type": "user", "id": "u1"}, "at": at.replace(tzinfo=timezone.utc)}]
    for key in ["k", "description", "activities.7.votes", "", "é", "a\x00", "\ud800"]:
        for value in values:
            try:
                expected: Any = len(bson.encode({key: value})) - 5
            except Exception as exc:  # noqa: BLE001 - whatever bson raises, the count must raise too
                expected = type(exc)
            try:
                counted: Any = _element_size(key, value)
            except Exception as exc:  # noqa: BLE001
                counted = type(exc)
            assert counted == expected, (key, value)


def test_an_updates_changes_of_top_level_fields_are_what_the_path_walk_gave():
    """`updates._operator_changes` answers a top-level field of a whole-field operator (`$set`, `$inc`,
    ...) directly: over random operator updates (every operator, top-level, dotted and positional
    paths, `$rename`, `$push`, `$setOnInsert`) and random documents before and after, the same
    updatedFields and removedFields, in the same order, as the path walk for every field it did."""
    from backend.store.updates import _MISSING, _appended, _get, _operator_changes, _resolve, same

    def path_walk(update: dict, before: dict, after: dict) -> tuple[dict, list]:  # what it was
        updated: dict = {}
        removed: list = []

        def set_path(parts: list) -> None:
            old, new = _get(before, parts), _get(after, parts)
            if new is _MISSING or (old is not _MISSING and same(old, new)):
                return
            if old is _MISSING:
                depth = next(i for i in range(len(parts)) if _get(before, parts[: i + 1]) is _MISSING)
                created = parts[: depth + 1]
                updated[".".join(created)] = _get(after, created)
            else:
                updated[".".join(parts)] = new

        for operator, spec in update.items():
            for raw, argument in spec.items():
                parts = _resolve(str(raw).split("."), before, after)
                if parts is None or operator == "$setOnInsert":
                    continue
                if operator == "$unset":
                    if _get(before, parts) is _MISSING:
                        continue
                    if isinstance(_get(before, parts[:-1]), list):
                        updated[".".join(parts)] = None
                    else:
                        removed.append(".".join(parts))
                elif operator == "$rename":
                    if _get(before, parts) is _MISSING:
                        continue
                    removed.append(".".join(parts))
                    set_path(str(argument).split("."))
                elif operator == "$push" and _appended(argument, _get(before, parts), _get(after, parts)):
                    old, new = _get(before, parts), _get(after, parts)
                    for index in range(len(old), len(new)):
                        updated[f"{'.'.join(parts)}.{index}"] = new[index]
                else:
                    set_path(parts)
        return updated, removed

    rng = random.Random(31)
    operators = ["$set", "$set", "$unset", "$inc", "$max", "$push", "$addToSet", "$pull", "$rename", "$setOnInsert"]
    names = ["a", "b", "c", "$", "a$b"]

    def value(depth: int = 0) -> Any:
        roll = rng.random()
        if depth < 2 and roll < 0.25:
            return {k: value(depth + 1) for k in rng.sample(["a", "b", "c"], rng.randrange(3))}
        if depth < 2 and roll < 0.45:
            return [value(depth + 1) for _ in range(rng.randrange(3))]
        return rng.choice([1, 1.0, True, "x", None, datetime(2026, 5, 1)])

    def path() -> str:
        return ".".join(rng.choice(names + ["0", "1"]) for _ in range(rng.choice([1, 1, 1, 2, 3])))

    counted = collections.Counter()
    for step in range(4000):
        before = {k: value() for k in rng.sample(["a", "b", "c", "a$b"], rng.randrange(4))}
        after = {k: (value() if rng.random() < 0.5 else v) for k, v in before.items()}
        after.update({k: value() for k in rng.sample(["a", "b", "c"], rng.randrange(2))})
        update: dict = {}
        for _ in range(rng.randrange(1, 4)):
            operator = rng.choice(operators)
            update.setdefault(operator, {})[path()] = path() if operator == "$rename" else value()
        answer = _operator_changes(update, before, after)
        assert answer == path_walk(update, before, after), (step, update, before, after)
        assert [list(part) for part in answer] == [list(part) for part in path_walk(update, before, after)]
        counted[bool(answer[0] or answer[1])] += 1
    assert counted[True] > 500 and counted[False] > 500, counted


async def test_a_query_a_unique_index_answers_tests_one_document_and_answers_as_the_scan(
    store_handle, monkeypatch
):  # embedded only
    """A filter naming every field of a unique index kept by lookup (and its partial filter as
    stated) tests the key's holder only (uniques.holder_of): `audit.for_version` is not a scan of
    the audit. Over random inserts, updates that move keys in and out of the index, refused
    duplicates, deletes and renamed fields, every such query answers as plain mongomock's scan
    (and the suite's CHECK_SHARED_FORMS compares each answer with the scan as well)."""
    from mongomock_motor import AsyncMongoMockClient

    from backend.store import embedded
    from backend.store.audit import Audit

    coll = store_handle.db.audit  # with its indexes (backend/store/indexes.py)
    plain = AsyncMongoMockClient(tz_aware=True)["tandem"].audit
    for index in INDEXES:
        if index.collection == "audit":
            await plain.create_index(list(index.keys), **index.options)
    rng = random.Random(37)

    def fields() -> dict:
        out: dict = {"collaborationId": f"c{rng.randrange(3)}", "version": rng.choice([1, 2, 3, 2.0])}
        if rng.random() < 0.8:
            out["versioned"] = rng.choice([True, True, False, 1])
        if rng.random() < 0.3:
            out["seq"] = rng.randrange(4)
        return out

    tested: list = []
    real = embedded.matches

    def counting(filter: Any, document: Any) -> bool:
        tested.append(document.get("_id"))
        return real(filter, document)

    monkeypatch.setattr(embedded, "matches", counting)
    outcomes = collections.Counter()
    for step in range(600):
        roll, written, which = rng.random(), fields(), f"a{rng.randrange(step + 1)}"
        results = []
        for target in (coll, plain):
            try:
                if roll < 0.4:
                    await target.insert_one({"_id": f"a{step}", **written})
                elif roll < 0.7:
                    await target.update_one({"_id": which}, {"$set": dict(written)})
                elif roll < 0.8:
                    await target.delete_one({"_id": which})
                results.append("ok")
            except DuplicateKeyError:
                results.append("duplicate")
        assert results[0] == results[1], step
        assert await coll.find().to_list(None) == await plain.find().to_list(None), step
        outcomes[results[0]] += 1
        query = {"collaborationId": f"c{rng.randrange(3)}", "version": rng.choice([1, 2, 3]), "versioned": True}
        if rng.random() < 0.2:
            query["actor"] = "nobody"
        tested.clear()
        found = await coll.find_one(query)
        assert found == await plain.find_one(query), (step, query)
        assert await coll.count_documents(query) == await plain.count_documents(query), (step, query)
        assert len(tested) <= 2, (step, tested)  # the holder only, for each of the two queries
        outcomes["found" if found else "none"] += 1
    assert outcomes["duplicate"] >= 20 and outcomes["found"] >= 100 and outcomes["none"] >= 100, outcomes
    entry = {"_id": "aud_x", "collaborationId": "c9", "version": 4, "versioned": True, "action": "a"}
    await coll.insert_one(entry)
    tested.clear()
    assert await Audit(store_handle.db).for_version("c9", 4) == entry
    assert len(tested) == 1


async def test_an_insert_events_document_is_the_inserted_one_whatever_the_id(store_handle):  # embedded only
    """An insert event's `fullDocument` is the document as inserted, read after a later update, for an
    `_id` whose stored form differs from the inserter's (a naive datetime, a sub-millisecond aware one)
    and for a dict `_id`; each later update records its update event with the UTC-aware `_id`, and
    find_one_and_update finds the document (the store keys it by the inserter's `_id`)."""
    from pymongo import ReturnDocument

    db = store_handle.db
    naive = datetime(2026, 1, 2, 3, 4, 5, 123000)
    sub_ms = datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=timezone.utc)
    ids = [naive, sub_ms, {"k": 1}]
    aware = datetime(2026, 1, 2, 3, 4, 5, 123000, tzinfo=timezone.utc)
    keys = [aware, aware, {"k": 1}]
    found = []
    async with db.watch(max_await_time_ms=0) as stream:
        for n, _id in enumerate(ids):
            await db[f"ids{n}"].insert_one({"_id": _id, "state": "inserted"})
            await db[f"ids{n}"].update_one({"_id": _id}, {"$set": {"state": "updated"}})
            found.append(
                await db[f"ids{n}"].find_one_and_update(
                    {"_id": _id}, {"$push": {"seen": 1}}, return_document=ReturnDocument.AFTER
                )
            )
        events = []
        while (event := await stream.try_next()) is not None:
            events.append(event)
    got = [(e["operationType"], e["ns"]["coll"], e["documentKey"], e.get("fullDocument")) for e in events]
    expected = []
    for n, key in enumerate(keys):
        expected += [
            ("insert", f"ids{n}", {"_id": key}, {"_id": key, "state": "inserted"}),
            ("update", f"ids{n}", {"_id": key}, None),
            ("update", f"ids{n}", {"_id": key}, None),
        ]
    assert got == expected
    assert [e["updateDescription"]["updatedFields"] for e in events if e["operationType"] == "update"] == [
        {"state": "updated"},
        {"seen": [1]},
    ] * 3
    assert all(e["documentKey"]["_id"].utcoffset() == timedelta(0) for e in events[:6])
    assert found == [{"_id": key, "state": "updated", "seen": [1]} for key in keys]


async def test_an_inserted_or_upserted_dict_id_is_the_callers_own_not_the_stored_one(any_store_handle):
    """`inserted_id` is the caller's own `_id` object, as pymongo's, and `upserted_id` is not the stored
    document's: changing either changes neither the stored document nor an event's documentKey."""
    db = any_store_handle.db
    inserted = {"_id": {"k": 1}, "v": 1}
    async with db.ids.watch(max_await_time_ms=0) as stream:
        result = await db.ids.insert_one(inserted)
        assert result.inserted_id is inserted["_id"]
        result.inserted_id["k"] = "changed"
        upserted = await db.ids.update_one({"_id": {"up": 1}}, {"$set": {"w": 1}}, upsert=True)
        assert upserted.upserted_id == {"up": 1}
        upserted.upserted_id["up"] = "changed"
        events = [await stream.next(), await stream.next()]
    assert await db.ids.find({}).to_list(None) == [{"_id": {"k": 1}, "v": 1}, {"_id": {"up": 1}, "w": 1}]
    assert [e["documentKey"] for e in events] == [{"_id": {"k": 1}}, {"_id": {"up": 1}}]
    assert [e["fullDocument"] for e in events] == [{"_id": {"k": 1}, "v": 1}, {"_id": {"up": 1}, "w": 1}]


async def test_a_unique_key_of_a_str_subclass_is_compared_as_mongodb_does(any_store_handle):
    """bson's `Code` (a str subclass, another BSON type than a string) as a unique key: "x" and
    Code("x") are two keys, a second Code("x") is a duplicate, refused with nothing stored."""
    from bson.code import Code

    coll = any_store_handle.db.codes
    await coll.create_index("k", unique=True)
    await coll.insert_one({"_id": 1, "k": "x"})
    await coll.insert_one({"_id": 2, "k": Code("x")})
    with pytest.raises(DuplicateKeyError) as caught:
        await coll.insert_one({"_id": 3, "k": Code("x")})
    assert is_duplicate(caught)
    assert [doc["_id"] for doc in await coll.find({}).to_list(None)] == [1, 2]


async def test_a_refused_update_leaves_every_unique_key_held_as_it_was(any_store_handle):
    """Unique indexes on `a` and `b`; P's `a` changed often (the `a` index's lookup table then
    rebuilds itself during a write), then an update of P that `b` refuses: P keeps its `a`, and
    an insert of that `a` is a duplicate. Found by a review: the rebuild indexed P under the
    refused `a`, and after the undo a second P.a was accepted."""
    coll = any_store_handle.db.twice
    await coll.create_index("a", unique=True)
    await coll.create_index("b", unique=True)
    await coll.insert_one({"_id": "P", "a": 0, "b": 0})
    await coll.insert_one({"_id": "O", "a": -1, "b": 1})
    for n in range(1, 67):
        await coll.update_one({"_id": "P"}, {"$set": {"a": n}})
    with pytest.raises(DuplicateKeyError):
        await coll.update_one({"_id": "P"}, {"$set": {"a": 1000, "b": 1}})
    assert await coll.find_one({"_id": "P"}) == {"_id": "P", "a": 66, "b": 0}
    with pytest.raises(DuplicateKeyError) as caught:
        await coll.insert_one({"_id": "R", "a": 66, "b": 7})
    assert is_duplicate(caught)
    assert [d["_id"] for d in await coll.find({"a": 66}).to_list(None)] == ["P"]


class _Uncomparable(str):
    """A key whose comparison fails: the unique-index check raises something else than a duplicate."""

    __hash__ = str.__hash__

    def __eq__(self, other: object) -> bool:
        raise ValueError("not comparable")

    def __ne__(self, other: object) -> bool:
        raise ValueError("not comparable")


async def test_an_insert_whose_unique_check_fails_stores_nothing_and_records_no_event(store_handle):  # embedded only
    coll = store_handle.db.touchy
    await coll.create_index("k", unique=True)
    await coll.insert_one({"_id": 1, "k": "x"})
    async with coll.watch(max_await_time_ms=0) as stream:
        with pytest.raises(ValueError, match="not comparable"):
            await coll.insert_one({"_id": 2, "k": _Uncomparable("x")})
        assert await stream.try_next() is None
    assert await coll.find({}).to_list(None) == [{"_id": 1, "k": "x"}]
