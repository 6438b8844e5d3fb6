"""The driver Protocols (backend/store/driver.py): each call they name exists on motor and on the
embedded store, and works with the options it names (on real MongoDB too, when MONGODB_URI is set).

mypy checks the embedded store's classes against the Protocols (backend/store/client.py); motor's
database is taken on trust there because its stubs misdescribe a change stream. These tests hold
what mypy cannot see: the calls exist at runtime on both, with the answers the Protocols promise.
"""

from __future__ import annotations

import inspect
from typing import Any

import pytest
from motor.motor_asyncio import AsyncIOMotorClient
from pymongo import ReturnDocument

from backend.store import driver
from backend.store.embedded import EmbeddedClient

_DUNDERS = {"__getitem__", "__aiter__", "__aenter__", "__aexit__"}


def declared(protocol: type) -> set[str]:
    """The calls and attributes a Protocol declares (not typing's own machinery)."""
    return {name for name in vars(protocol) if (not name.startswith("_") or name in _DUNDERS)}


def drivers_objects(client: Any) -> dict[type, Any]:
    db = client["tandem_driver_test"]
    coll = db["things"]
    cursor = coll.find({})
    return {
        driver.Client: client,
        driver.Db: db,
        driver.Collection: coll,
        driver.Cursor: cursor,
        driver.Batched: cursor.batch_size(2),
        driver.ChangeStream: db.watch([], resume_after=None, max_await_time_ms=10),
    }


@pytest.mark.parametrize("make", ["motor", "embedded"])
def test_every_call_the_protocols_name_exists_on_both_drivers(make):
    client = (
        AsyncIOMotorClient("mongodb://127.0.0.1:9/?serverSelectionTimeoutMS=100", connect=False)
        if make == "motor"
        else EmbeddedClient(history=10)
    )
    try:
        for protocol, obj in drivers_objects(client).items():
            for name in declared(protocol):
                if name in ("alive", "resume_token"):  # properties of a stream that has not started
                    assert isinstance(inspect.getattr_static(type(obj), name), property), (protocol, name)
                    continue
                assert callable(getattr(obj, name)), (make, protocol.__name__, name)
    finally:
        client.close()


def test_the_protocols_declare_what_the_store_calls():
    """A guard against a Protocol growing by accident: the names are the store's calls."""
    assert declared(driver.Collection) == {
        "find",
        "find_one",
        "count_documents",
        "insert_one",
        "update_one",
        "update_many",
        "find_one_and_update",
        "delete_one",
        "delete_many",
        "create_index",
    }
    assert declared(driver.Cursor) == {"sort", "limit", "batch_size", "to_list", "__aiter__"}
    assert declared(driver.Db) == {"__getitem__", "command", "watch"}


async def test_each_call_with_its_options_answers_as_the_protocol_says(any_store_handle):
    db = any_store_handle.db
    coll = db["driver_calls"]
    await coll.delete_many({})

    inserted = await coll.insert_one({"_id": "a", "n": 1, "tag": "x"}, session=None)
    assert inserted.inserted_id == "a"
    upserted = await coll.update_one({"_id": "b"}, {"$set": {"n": 2, "tag": "x"}}, upsert=True, session=None)
    assert (upserted.matched_count, upserted.modified_count) == (0, 0)
    many = await coll.update_many({"tag": "x"}, {"$set": {"seen": True}})
    assert (many.matched_count, many.modified_count) == (2, 2)

    assert await coll.find_one({"_id": "a"}, {"n": 1}, session=None) == {"_id": "a", "n": 1}
    assert await coll.find_one({"_id": "missing"}) is None
    assert await coll.count_documents({"tag": "x"}) == 2

    before = await coll.find_one_and_update(
        {"tag": "x"}, {"$inc": {"n": 10}}, {"n": 1}, sort=[("n", -1)], return_document=ReturnDocument.BEFORE
    )
    assert before == {"_id": "b", "n": 2}
    after = await coll.find_one_and_update(
        {"_id": "c"}, {"$set": {"n": 3}}, upsert=True, return_document=ReturnDocument.AFTER, session=None
    )
    assert after == {"_id": "c", "n": 3}
    assert await coll.find_one_and_update({"_id": "missing"}, {"$set": {"n": 0}}) is None

    assert [d["_id"] for d in await coll.find({}).sort("n", 1).limit(2).to_list(length=2)] == ["a", "c"]
    assert [d["_id"] async for d in coll.find({}, {"_id": 1}).sort([("n", -1), ("_id", 1)])] == ["b", "c", "a"]
    batched = coll.find({}).sort("_id", 1).batch_size(1)
    assert (await batched.next())["_id"] == "a"
    await batched.close()

    name = await coll.create_index([("tag", 1), ("n", 1)], unique=True, partialFilterExpression={"n": {"$gt": 0}})
    assert name == "tag_1_n_1"
    assert (await coll.delete_one({"_id": "a"})).deleted_count == 1
    assert (await coll.delete_many({"tag": "x"})).deleted_count == 1
    assert (await db.command("ping"))["ok"] == 1
