"""The embedded store: mongomock-motor, plus change events for every write.

(Over 300 lines: each motor method the store uses is wrapped once, to record its change
event or to refuse what mongomock lacks; the wrappers are short and alike, and apart they would
only scatter one emulation. The change streams are backend/store/changestream.py.)

`EmbeddedClient` / `EmbeddedDatabase` / `EmbeddedCollection` are
mongomock-motor's motor look-alikes. Each write method reads the documents it
will touch, runs the write and reads them again on the synchronous mongomock
collection with no `await` in between, so a write and its change event are
atomic with respect to other coroutines. `watch()` on a collection or on the
database returns a `ChangeStream` (backend/store/changestream.py).

Datetimes come back timezone-aware UTC, like motor with `tz_aware=True`.
Unique indexes are checked with a lookup (backend/store/uniques.py), not by
mongomock's scan of the collection.

Copies are kept to what is needed, since a collaboration document can be tens
of KB and is written on every action: `find_one({"_id": x})` copies the
document once; an update copies only the top-level fields it names and
compares only those for its change event (`_modify`).
"""

from __future__ import annotations

import contextlib
import copy
import functools
import inspect
import re
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Coroutine, Iterable, Iterator, TypeVar

from bson import BSON, ObjectId
from bson.errors import InvalidDocument
from bson.tz_util import utc
from mongomock import DuplicateKeyError, helpers
from mongomock.collection import Collection as SyncCollection
from mongomock_motor import (
    AsyncCommandCursor,
    AsyncCursor,
    AsyncLatentCommandCursor,
    AsyncMongoMockClient,
    AsyncMongoMockCollection,
    AsyncMongoMockDatabase,
)
from pymongo import ReturnDocument
from pymongo.errors import OperationFailure
from pymongo.results import InsertOneResult, UpdateResult

from backend.store import uniques
from backend.store.changestream import ChangeLog, ChangeStream, Deferred
from backend.store.failures import EmbeddedUnsupported
from backend.store.matching import matches
from backend.store.trees import IMMUTABLE, copy_dict, structure
from backend.store.updates import describe_update, same

_R = TypeVar("_R")


def _write(method: Callable[..., _R]) -> Callable[..., Coroutine[Any, Any, _R]]:
    """Make a synchronous write body a motor-style coroutine method.

    The body cannot await, so the reads before, the write, the reads after and
    the events are one step for every other coroutine. TTL expiry is held
    meanwhile: MongoDB's TTL monitor never runs in the middle of a write.
    """

    @functools.wraps(method)
    async def write(self: "EmbeddedCollection", *args: Any, **kwargs: Any) -> _R:
        store = self._sync._store
        store._tandem_ttl_held = True
        try:
            _check_options(method.__name__, kwargs)
            return method(self, *args, **kwargs)
        except Exception as exc:  # mongomock's own refusals, under the one name (as `_renaming`, inline)
            gap = _gap(exc, method.__name__)
            if gap is None:
                raise
            raise gap from exc
        finally:
            store._tandem_ttl_held = False

    return write


def _refusing(cls: type) -> type:
    """Every public method `cls` inherits from mongomock-motor raises EmbeddedUnsupported where
    mongomock raises its own NotImplementedError (a session, an operator it lacks, ...)."""
    for name in dir(cls):
        if name.startswith("_") or name in cls.__dict__:
            continue
        attr = inspect.getattr_static(cls, name)
        if isinstance(attr, (property, staticmethod, classmethod)) or not inspect.isfunction(attr):
            continue
        setattr(cls, name, _renamed(attr, name))
    return cls


_CURSORS = (AsyncCursor, AsyncCommandCursor, AsyncLatentCommandCursor)

# MongoDB's aggregation expression operators (its "Aggregation Operators" reference). mongomock
# answers one it does not know with OperationFailure "Unrecognized expression", which MongoDB
# gives only for a name it does not know either: for these, that is a gap of the emulation.
_MONGODB_EXPRESSIONS = frozenset(
    """
$abs $accumulator $acos $acosh $add $addToSet $allElementsTrue $and $anyElementTrue $arrayElemAt
$arrayToObject $asin $asinh $atan $atan2 $atanh $avg $binarySize $bitAnd $bitNot $bitOr $bitXor
$bottom $bottomN $bsonSize $ceil $cmp $concat $concatArrays $cond $convert $cos $cosh $count
$covariancePop $covarianceSamp $dateAdd $dateDiff $dateFromParts $dateFromString $dateSubtract
$dateToParts $dateToString $dateTrunc $dayOfMonth $dayOfWeek $dayOfYear $degreesToRadians
$denseRank $derivative $divide $documentNumber $eq $exp $expMovingAvg $filter $first $firstN
$floor $function $getField $gt $gte $hour $ifNull $in $indexOfArray $indexOfBytes $indexOfCP
$integral $isArray $isNumber $isoDayOfWeek $isoWeek $isoWeekYear $last $lastN $let $linearFill
$literal $ln $locf $log $log10 $lt $lte $ltrim $map $max $maxN $median $mergeObjects $meta $min
$minN $millisecond $minute $mod $month $multiply $ne $not $objectToArray $or $percentile $pow
$push $radiansToDegrees $rand $range $rank $reduce $regexFind $regexFindAll $regexMatch
$replaceOne $replaceAll $reverseArray $round $rtrim $sampleRate $second $setDifference
$setEquals $setField $setIntersection $setIsSubset $setUnion $shift $sin $sinh $size $slice
$sortArray $split $sqrt $stdDevPop $stdDevSamp $strcasecmp $strLenBytes $strLenCP $substr
$substrBytes $substrCP $subtract $sum $switch $tan $tanh $toBool $toDate $toDecimal $toDouble
$toHashedIndexKey $toInt $toLong $toObjectId $top $topN $toString $toLower $toUpper $toUUID
$trim $trunc $tsIncrement $tsSecond $type $unsetField $week $year $zip
""".split()
)


def _gap(exc: BaseException, name: str) -> EmbeddedUnsupported | None:
    """The EmbeddedUnsupported for an exception of mongomock's that marks a gap of its own,
    None for any other (a real error, as MongoDB would raise it)."""
    if isinstance(exc, EmbeddedUnsupported):
        return None
    if isinstance(exc, NotImplementedError):
        return EmbeddedUnsupported(f"the embedded store (mongomock) cannot run {name}: {exc}")
    if isinstance(exc, OperationFailure):
        found = re.fullmatch(r"Unrecognized expression '(\$\w+)'", str(exc))
        if found and found.group(1) in _MONGODB_EXPRESSIONS:
            return EmbeddedUnsupported(
                f"the embedded store (mongomock) cannot run {name}: it lacks the expression {found.group(1)}"
            )
    return None


def _check_options(name: str, kwargs: dict[str, Any]) -> None:
    """Refuse the options mongomock cannot honour (it fails on a session, and ignores a collation,
    answering as if it had none); drop `comment`, which changes nothing and mongomock's writes
    do not accept."""
    if kwargs.get("session") is not None:
        raise EmbeddedUnsupported(_NO_SESSIONS)
    if kwargs.get("collation") is not None:
        raise EmbeddedUnsupported(
            f"collations are not available on the embedded store ({name}): mongomock "
            "compares strings as if there were none"
        )
    kwargs.pop("comment", None)


_NO_SESSIONS = (
    "sessions and transactions are not available on the embedded store (mongomock has none): "
    "pass session=None; a sequence of writes without an await is already atomic"
)


def _renamed(method: Callable[..., Any], name: str) -> Callable[..., Any]:
    if inspect.iscoroutinefunction(method):

        @functools.wraps(method)
        async def renamed_async(*args: Any, **kwargs: Any) -> Any:
            _check_options(name, kwargs)
            with _renaming(name):
                return await method(*args, **kwargs)

        return renamed_async

    @functools.wraps(method)
    def renamed(*args: Any, **kwargs: Any) -> Any:
        _check_options(name, kwargs)
        with _renaming(name):
            result = method(*args, **kwargs)
        return _RefusingCursor(result, name) if isinstance(result, _CURSORS) else result

    return renamed


@contextlib.contextmanager
def _renaming(name: str) -> Iterator[None]:
    """mongomock's own gaps (see _gap) leave as EmbeddedUnsupported; everything else as it is."""
    try:
        yield
    except Exception as exc:
        gap = _gap(exc, name)
        if gap is None:
            raise
        raise gap from exc


class _RefusingCursor:
    """A mongomock-motor cursor whose reads refuse with EmbeddedUnsupported: mongomock runs a
    find lazily, so an operator it lacks is met only when the cursor is read."""

    def __init__(self, cursor: AsyncCursor[Any] | AsyncCommandCursor[Any] | AsyncLatentCommandCursor[Any], name: str):
        self._cursor = cursor
        self._name = name

    def __aiter__(self) -> "_RefusingCursor":
        return self

    async def __anext__(self) -> Any:
        return await self.next()

    async def next(self) -> Any:
        with _renaming(self._name):
            return await self._cursor.next()

    async def to_list(self, *args: Any, **kwargs: Any) -> list[Any]:
        with _renaming(self._name):
            return await self._cursor.to_list(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        if name == "collation":
            raise EmbeddedUnsupported(
                "collations are not available on the embedded store: mongomock compares strings as if there were none"
            )
        attr = getattr(self._cursor, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            with _renaming(f"{self._name}().{name}"):
                result = attr(*args, **kwargs)
            if result is self._cursor:  # sort(), limit(), ...: chaining keeps the wrapper
                return self
            if inspect.isawaitable(result):
                return self._awaited(result, name)
            return result

        return call

    async def _awaited(self, result: Awaitable[Any], name: str) -> Any:
        with _renaming(f"{self._name}().{name}"):
            return await result


@_refusing
class EmbeddedClient(AsyncMongoMockClient):  # type: ignore[type-arg]  # mongomock-motor's stub is motor's generic class; its own is not generic at runtime
    """An in-memory client; each database keeps its last `history` change events."""

    def __init__(self, history: int):
        super().__init__(tz_aware=True)
        self._history = history
        self._logs: dict[str, ChangeLog] = {}

    def get_database(self, name: str | None = None, **kwargs: Any) -> "EmbeddedDatabase":  # type: ignore[override]  # motor's options by keyword only
        sync_db = super().get_database(name, **kwargs).delegate
        log = self._logs.get(sync_db.name)
        if log is None:
            lookup = lambda coll, _id: _snapshot(sync_db.get_collection(coll), _id)  # noqa: E731 - a one-line helper local to this branch
            log = self._logs[sync_db.name] = ChangeLog(sync_db.name, self._history, lookup)
        return EmbeddedDatabase(self, sync_db, log)

    if TYPE_CHECKING:  # mongomock-motor's __getitem__ is get_database; its stub says motor's database

        def __getitem__(self, name: str) -> EmbeddedDatabase: ...

    def watch(self, *args: Any, **kwargs: Any) -> ChangeStream:  # type: ignore[override]  # refuses; on a database or collection: the embedded ChangeStream, not motor's class
        raise EmbeddedUnsupported("the embedded store watches a database or a collection, not the whole client")

    def start_session(self, *args: Any, **kwargs: Any) -> Any:
        raise EmbeddedUnsupported(
            "sessions and transactions are not available on the embedded store (mongomock has none); "
            "backend.store.writes.Writer runs without one there"
        )

    async def drop_database(self, name_or_database: Any, *args: Any, **kwargs: Any) -> None:
        """Drop every collection (a drop event each), then a dropDatabase event, as MongoDB does."""
        if args or any(value is not None for value in kwargs.values()):
            raise EmbeddedUnsupported("drop_database() on the embedded store takes only the database")
        name = name_or_database if isinstance(name_or_database, str) else name_or_database.name
        database = self.get_database(name)
        names = sorted(database.delegate._store.list_created_collection_names())
        for coll in names:
            _AwareForms.of(database.delegate.get_collection(coll)._store).clear()
            database.delegate.drop_collection(coll)
            database._changes.record("drop", coll)
        if names:
            database._changes.record("dropDatabase", None)

    def close(self) -> None:
        """End every open change stream. The data stays until the process ends."""
        for log in self._logs.values():
            log.close()


@_refusing
class EmbeddedDatabase(AsyncMongoMockDatabase):  # type: ignore[type-arg]  # not generic at runtime (as EmbeddedClient)
    def __init__(self, client: EmbeddedClient, database: Any, changes: ChangeLog):
        super().__init__(client, database)
        self._changes = changes

    def get_collection(self, name: str, **kwargs: Any) -> "EmbeddedCollection":  # type: ignore[override]  # motor's options by keyword only
        return EmbeddedCollection(self, self.delegate.get_collection(name, **kwargs), self._changes)

    if TYPE_CHECKING:  # mongomock-motor's __getitem__ is get_collection; its stub says motor's collection

        def __getitem__(self, name: str) -> EmbeddedCollection: ...

    def watch(self, pipeline: list[Any] | None = None, **options: Any) -> ChangeStream:  # type: ignore[override]  # the embedded ChangeStream: motor's change-stream API, not its class
        return ChangeStream(self._changes, None, pipeline, **options)

    def with_options(self, *args: Any, **kwargs: Any) -> Any:
        raise EmbeddedUnsupported(
            "with_options() is not available on the embedded store (mongomock-motor would "
            "hand back a synchronous database that records no change events)"
        )

    async def drop_collection(self, name_or_collection: Any, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]  # None, where motor hands back the server's reply (nothing reads it)
        name = name_or_collection if isinstance(name_or_collection, str) else name_or_collection.name
        await self.get_collection(name).drop(*args, **kwargs)

    def inject_change_stream_error(self, exc: BaseException, times: int = 2) -> None:
        """Tests: the next `times` read attempts of every open stream raise `exc`.

        As with pymongo, a resumable error (ConnectionFailure, CursorNotFound or
        the ResumableChangeStreamError label) is retried once inside the read (the
        stream resumes from its token); with times=1 the caller never sees it, with
        the default 2 the retry fails too, the read raises it and the stream stays
        open. Any other error is raised by the next read and closes the stream.
        """
        self._changes.inject_error(exc, times)


@_refusing
class EmbeddedCollection(AsyncMongoMockCollection):  # type: ignore[type-arg]  # not generic at runtime (as EmbeddedClient)
    def __init__(self, database: EmbeddedDatabase, collection: SyncCollection, changes: ChangeLog):
        super().__init__(database, collection)  # type: ignore[arg-type]  # mongomock-motor's (database, mongomock collection); its stub has motor's (database, name)
        self._sync = collection
        self._changes = changes
        store = collection._store  # its name follows a rename

        def expired(key: Any) -> None:
            _AwareForms.of(store).forget(key)
            changes.record("delete", store.name, key)

        _report_ttl_deletes(collection, expired)
        uniques.install(collection)  # unique indexes checked by lookup, not by mongomock's scan
        _install_id_lookup(collection)  # a query on one _id tests that document, not every one

    def watch(self, pipeline: list[Any] | None = None, **options: Any) -> ChangeStream:  # type: ignore[override]  # the embedded ChangeStream: motor's change-stream API, not its class
        return ChangeStream(self._changes, self._sync.name, pipeline, **options)

    def __getattr__(self, name: str) -> Any:
        """What mongomock-motor hands on from the synchronous mongomock collection: plain values
        (`name`, `full_name`, ...) and, for `coll.sub`, the collection `coll.sub`. A method it
        would hand on (`with_options`, legacy `update`, ...) bypasses the change events and
        motor's awaitables, so it is refused."""
        value = super().__getattr__(name)
        if name.startswith("_"):
            return value
        if isinstance(value, SyncCollection):
            return self.database.get_collection(value.name)
        if callable(value):
            raise EmbeddedUnsupported(
                f"the embedded store's collections have no {name}(): it is not in the "
                "motor API it emulates (see docs/store.md)"
            )
        return value

    async def find_one(self, filter: Any = None, *args: Any, **kwargs: Any) -> dict[str, Any] | None:
        """`find_one({"_id": x})` reads the one document; anything else is mongomock's query.

        mongomock would test the filter on every document of the collection and copy the
        match twice (its copy, then its UTC-aware copy); the result is the same document.
        """
        if not args and not kwargs and type(filter) is dict and len(filter) == 1 and type(filter.get("_id")) in _IDS:
            return self._read(filter["_id"], keep=True)
        _check_options("find_one", kwargs)
        return await super().find_one(filter, *args, **kwargs)

    async def find_one_shared(self, _id: Any) -> dict[str, Any] | None:
        """`find_one({"_id": _id})` for a reader that changes nothing below its top level (not in
        the motor API: `Collaborations.get_shared`). Its top-level dict is its own; every value
        in it is the store's kept UTC-aware form (`_AwareForms`), shared, not copied. A caller
        that changed one would change what later reads return: the test suite runs with
        `CHECK_SHARED_FORMS` on, which compares every kept form with the stored document."""
        if type(_id) not in _IDS:
            return await self.find_one({"_id": _id})
        store = self._sync._store
        key = _key(_id)
        stored = _stored(store, key)
        if stored is None:
            _AwareForms.of(store).forget(key)
            return None
        return dict(_AwareForms.of(store).form(key, stored))

    async def drop(self, *args: Any, **kwargs: Any) -> None:
        """Drop the collection: a drop event if it existed (streams on it then get invalidate)."""
        if args or any(value is not None for value in kwargs.values()):
            raise EmbeddedUnsupported("drop() on the embedded store takes no session or options")
        existed = self._sync._store.is_created
        _AwareForms.of(self._sync._store).clear()
        self._sync.drop()
        if existed:
            self._changes.record("drop", self._sync.name)

    async def rename(self, new_name: str, *args: Any, **kwargs: Any) -> Any:
        """Rename the collection: a rename event (with `to`); streams on it then get invalidate."""
        if args or any(value not in (None, False) for value in kwargs.values()):
            raise EmbeddedUnsupported("rename() on the embedded store takes no session, dropTarget or other option")
        result = self._sync.rename(new_name)
        self._changes.record("rename", self._sync.name, to=new_name)
        return result

    async def bulk_write(self, *args: Any, **kwargs: Any) -> Any:
        raise EmbeddedUnsupported(
            "bulk_write is not available on the embedded store: mongomock cannot run it with "
            "pymongo >= 4.11 and it would emit no change events; use the single-operation methods"
        )

    # -- inserts

    @_write
    def insert_one(self, document: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        result = None
        if not args and type(document) is dict and all(k == "session" and v is None for k, v in kwargs.items()):
            result = self._insert_plain(document)
        if result is None:
            result = self._sync.insert_one(document, *args, **kwargs)
            if isinstance(document, Mapping) and "_id" in document:  # pymongo's: the caller's own `_id`
                result = InsertOneResult(document["_id"], result.acknowledged)
        self._report_insert(result.inserted_id)
        return result

    def _insert_plain(self, document: dict[str, Any]) -> InsertOneResult | None:
        """mongomock's `insert_one` of one plain dict, its `_insert`'s steps in its order (string keys,
        no NUL nor top-level `$` in a key, BSON-encodable, an `_id` added if it has none, the stored
        form stored, the unique indexes checked), without its store's lock, its version checks and
        mongomock-motor's wrappers. None, having changed nothing, where mongomock would refuse the
        document (a bad key or value, an `_id` or unique key taken): mongomock's own insert then runs
        and raises its own error (with mongomock-motor's details) from the same state."""
        if not all(isinstance(k, str) for k in document) or not _valid_keys(document, True):
            return None
        try:
            BSON.encode(document)
        except Exception:  # noqa: BLE001 - whatever mongomock would raise, it raises it itself
            return None
        if "_id" not in document:
            document["_id"] = ObjectId()  # as mongomock does (and pymongo): in the caller's dict
        _id = document["_id"]
        key = _key(_id)
        store = self._sync._store
        store._remove_expired_documents()
        if key in store._documents:
            return None
        stored = _stored_form(document)
        store._documents[key] = stored
        try:
            self._sync._ensure_uniques(stored)
        except DuplicateKeyError:
            del store._documents[key]  # mongomock's rollback; its own insert refuses it again
            return None
        except Exception:  # any other failure of the check stores nothing either (mongomock's would keep it)
            del store._documents[key]
            raise
        # pymongo's: the caller's own `_id` (mongomock's is the stored document's own object, which a
        # caller changing a dict `_id` through it would change in the store)
        return InsertOneResult(_id, acknowledged=True)

    @_write
    def insert_many(self, documents: Iterable[dict[str, Any]], *args: Any, **kwargs: Any) -> Any:
        documents = list(documents)
        existed = [doc["_id"] for doc in documents if "_id" in doc and self._exists(doc["_id"])]
        try:
            return self._sync.insert_many(documents, *args, **kwargs)
        finally:  # an ordered insert_many that failed half way still inserted its first documents
            reported: list[Any] = []
            for doc in documents:
                _id = doc.get("_id")
                if "_id" in doc and _id not in existed and _id not in reported and self._exists(_id):
                    reported.append(_id)
                    self._report_insert(_id)

    # -- updates and replacements

    @_write
    def update_one(
        self, filter: dict[str, Any], update: Any, upsert: bool = False, sort: Any = None, **kwargs: Any
    ) -> Any:
        return self._write_one("update", filter, update, upsert, sort, kwargs)[0]

    @_write
    def replace_one(
        self, filter: dict[str, Any], replacement: dict[str, Any], upsert: bool = False, sort: Any = None, **kwargs: Any
    ) -> Any:
        return self._write_one("replace", filter, replacement, upsert, sort, kwargs)[0]

    @_write
    def update_many(self, filter: dict[str, Any], update: Any, upsert: bool = False, **kwargs: Any) -> Any:
        _check_update(update, kwargs)
        runnable = _for_mongomock(update)
        return self._modify(
            "update",
            self._ids(filter),
            _touched(update),
            lambda: self._sync.update_many(filter, runnable, upsert=upsert, **kwargs),
            update,
        )

    @_write
    def find_one_and_update(
        self,
        filter: dict[str, Any],
        update: Any,
        projection: Any = None,
        sort: Any = None,
        upsert: bool = False,
        return_document: bool = ReturnDocument.BEFORE,
        **kwargs: Any,
    ) -> dict[str, Any] | None:
        return self._find_one_and("update", filter, update, projection, sort, upsert, return_document, kwargs)

    @_write
    def find_one_and_replace(
        self,
        filter: dict[str, Any],
        replacement: dict[str, Any],
        projection: Any = None,
        sort: Any = None,
        upsert: bool = False,
        return_document: bool = ReturnDocument.BEFORE,
        **kwargs: Any,
    ) -> dict[str, Any] | None:
        return self._find_one_and("replace", filter, replacement, projection, sort, upsert, return_document, kwargs)

    # -- deletes

    @_write
    def delete_one(self, filter: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        ids = self._ids(filter, first=True)
        try:
            return self._sync.delete_one(filter, *args, **kwargs)
        finally:
            self._report_deletes(ids)

    @_write
    def delete_many(self, filter: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        ids = self._ids(filter)
        try:
            return self._sync.delete_many(filter, *args, **kwargs)
        finally:
            self._report_deletes(ids)

    @_write
    def find_one_and_delete(
        self, filter: dict[str, Any], projection: Any = None, sort: Any = None, **kwargs: Any
    ) -> dict[str, Any] | None:
        ids = self._ids(filter, first=True, sort=sort)
        if not ids:
            return None
        try:
            deleted: dict[str, Any] | None = self._sync.find_one_and_delete({"_id": ids[0]}, projection, **kwargs)
            return deleted
        finally:
            self._report_deletes(ids)

    # -- the events

    def _write_one(
        self,
        operation: str,
        filter: dict[str, Any],
        change: Any,
        upsert: bool,
        sort: Any,
        kwargs: dict[str, Any],
        ids: list[Any] | None = None,
    ) -> tuple[Any, Any]:
        """One update or replacement; returns the result and the _id it wrote (None if none).
        `ids`: what `_ids(filter, first=True, sort=sort)` gave, if the caller has just asked."""
        write = self._sync.update_one if operation == "update" else self._sync.replace_one
        if operation == "update":
            _check_update(change, kwargs)
        update, change = change, _for_mongomock(change) if operation == "update" else change
        if ids is None:
            ids = self._ids(filter, first=True, sort=sort)
        if not ids:
            result = self._modify(operation, [], None, lambda: write(filter, change, upsert=upsert, **kwargs))
            return result, result.upserted_id
        # the chosen _id plus the original conditions, which positional `$` paths need
        narrowed = {**filter, "_id": ids[0]}
        touched = _touched(update) if operation == "update" else None
        if operation == "update" and _top_level(update) and all(v is None for v in kwargs.values()):
            _id = ids[0]
            return self._modify(
                operation,
                ids,
                touched,
                lambda: self._update_top_level(_id, update) or write(narrowed, change, **kwargs),
                update,
            ), _id
        return self._modify(operation, ids, touched, lambda: write(narrowed, change, **kwargs), update), ids[0]

    def _update_top_level(self, _id: Any, update: dict[str, Any]) -> UpdateResult | None:
        """mongomock's `update_one` of the one document `_id` (found by `_ids`, which tested the
        filter on it, and handed over by `_modify`) for an update `_top_level` accepts: `$set`,
        `$unset` and `$inc` of top-level fields. The same steps in the same order — the update's
        stored form, the document's snapshot, each field set (lists deep-copied, each value
        BSON-checked), unset or incremented, the unique indexes checked and the write undone if
        one refuses it, the same result — without mongomock's per-field path walk, positional
        checks and version parsing. None, having changed nothing, when a value cannot be encoded
        or an `$inc` is not between plain numbers: mongomock's own update then runs (and fails,
        or partly applies, as it does)."""
        store = self._sync._store
        key = _store_key(store._documents, _id)
        document = store._documents.get(key)
        if document is None:
            return None
        stored = _stored_form(update)
        sets = stored.get("$set")
        if sets is not None:
            try:
                BSON.encode(sets)  # mongomock encodes each value it sets: one refused, and it runs instead
            except (InvalidDocument, TypeError, OverflowError, ValueError):
                return None
        incs = stored.get("$inc")
        if incs is not None:
            for name, by in incs.items():
                if type(by) not in _NUMBERS or type(document.get(name, 0)) not in _NUMBERS:
                    return None
        # a `_Writable`'s first deepcopy is the stored document before it (what copy.deepcopy returns)
        snapshot = document.__deepcopy__({}) if type(document) is _Writable else copy.deepcopy(document)
        for operator, fields in stored.items():
            for name, value in fields.items():
                if operator == "$set":
                    document[name] = copy.deepcopy(value) if isinstance(value, (tuple, list)) else value
                elif operator == "$inc":
                    document[name] = document.get(name, 0) + value
                else:
                    document.pop(name, None)
        modified = document != snapshot
        if modified:
            try:
                self._sync._ensure_uniques(document)
            except Exception:  # a duplicate, or any other failure of the check
                store[key] = snapshot  # mongomock's rollback, by the stored key (a dict _id is a hashdict there)
                raise
        raw = {
            "connectionId": self._sync.database.client._id,
            "err": None,
            "n": 1,
            "nModified": 1 if modified else 0,
            "ok": 1,
            "upserted": None,
            "updatedExisting": True,
        }
        return UpdateResult(raw, acknowledged=True)

    def _find_one_and(
        self,
        operation: str,
        filter: dict[str, Any],
        change: Any,
        projection: Any,
        sort: Any,
        upsert: bool,
        return_document: bool,
        kwargs: dict[str, Any],
    ) -> dict[str, Any] | None:
        """find_one_and_update/replace on top of update_one/replace_one.

        mongomock's own versions apply a positional `$` to the wrong array element.
        """
        ids = self._ids(filter, first=True, sort=sort)
        old = self._find_by_id(ids[0], projection) if ids and not return_document else None  # BEFORE only
        _, written = self._write_one(operation, filter, change, upsert, sort, kwargs, ids)
        if written is None or not return_document:
            return old
        return self._find_by_id(written, projection)

    def _find_by_id(self, _id: Any, projection: Any) -> dict[str, Any] | None:
        if projection is None:
            return self._read(_id)
        fields = _included(projection)
        if fields is None:
            found: dict[str, Any] | None = self._sync.find_one({"_id": _id}, projection)
            return found
        documents = self._sync._store._documents
        stored = documents.get(_store_key(documents, _id))
        if stored is None:
            return None
        # MongoDB's order: the document's (mongomock's puts `_id` last)
        return {k: v if type(v) in _LEAVES else _aware(v) for k, v in stored.items() if k in fields}

    def _modify(
        self, operation: str, ids: list[Any], touched: set[str] | None, write: Callable[[], Any], update: Any = None
    ) -> Any:
        """Run `write` (mongomock's update or replacement of the documents `ids`) and report it.

        mongomock changes a stored document in place. Each document is therefore replaced,
        before the write, by a copy (`_Writable`) for mongomock to change, and the stored
        object itself, which nothing else references, is kept as the state before the write.
        With `touched` (the top-level fields an operator update can change, see `_touched`)
        only those fields are copied and compared; the others are shared, unchanged. That is
        one copy of what the update names, where reading the document before and after the
        write took two copies of all of it, plus the deep copy mongomock takes for itself
        (which `_Writable` answers with the stored object), plus a diff of all of it.
        """
        documents = self._sync._store._documents
        paths = _paths(update) if touched is not None else None
        handed = []
        for _id in ids:
            key = _store_key(documents, _id)  # (a datetime `_id` read back may differ from the key)
            before = documents.get(key)
            if before is not None:
                documents[key] = _Writable.of(before, touched, paths)
            handed.append((_id, key, before))
        try:
            result = write()
        finally:  # update_many may have changed some documents before it failed
            documents = self._sync._store._documents
            for _id, key, before in handed:
                after = documents.get(key)
                if type(after) is _Writable:
                    after.before = None
                self._report_change(operation, _id, before, after, touched, update)
        upserted = getattr(result, "upserted_id", None)
        if upserted is not None:
            self._report_insert(upserted)
            if type(upserted) not in _IDS and isinstance(result, UpdateResult):
                # mongomock's is the stored document's own `_id` object; pymongo's is the caller's own
                raw = dict(result.raw_result or {})
                raw["upserted"] = _aware(upserted)
                result = UpdateResult(raw, result.acknowledged)
        return result

    def _report_insert(self, _id: Any) -> None:
        """The insert event: its `fullDocument` (the UTC-aware copy of the stored document) is made
        when a stream reads it (changestream.Deferred), from the stored object, which no write
        changes in place. With CHECK_SHARED_FORMS (tests) the copy is also made now, and the one
        made later must equal it.

        Only for an `_id` of the plain types (`_IDS`), whose key every later write finds the stored
        object by (`_modify` hands mongomock a copy). Any other is copied now: a datetime read
        back differs from the key its inserter gave (UTC-aware, milliseconds), and a later write
        that missed it would let mongomock change the stored object in place. Its documentKey is
        a UTC-aware copy of the stored `_id`, which nothing the caller holds is."""
        documents = self._sync._store._documents
        stored = documents.get(_store_key(documents, _id))  # in a write: TTL expiry is held
        full: Any = None
        if stored is not None and type(_id) in _IDS:
            full = Deferred(functools.partial(_aware, stored))
            if CHECK_SHARED_FORMS:
                full = Deferred(functools.partial(_checked_form, stored, _aware(stored)))
        elif stored is not None:
            full = _aware(stored)
            _id = full["_id"]
        self._changes.record("insert", self._sync.name, _id, fullDocument=full)

    def _report_change(
        self,
        operation: str,
        _id: Any,
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
        touched: set[str] | None = None,
        update: Any = None,
    ) -> None:
        """Record the event of a write from `before` to `after`, both as stored (naive datetimes).

        An update's `updateDescription` is what MongoDB logs for `update` (see
        updates.describe_update). With `touched`, the other top-level fields are the
        same objects in both and are left out of the comparison.
        """
        if before is None or after is None or after is before:  # `before` is back after a rollback
            return
        if touched is not None:
            before = {k: v for k, v in before.items() if k in touched}
            after = {k: v for k, v in after.items() if k in touched}
        if operation == "replace":
            if same(before, after):
                return  # a write that changed nothing: MongoDB logs nothing either
            self._changes.record("replace", self._sync.name, _id, fullDocument=_aware(after))
            return
        described = describe_update(update, before, after)
        if described is None:
            return
        kind, description = described
        if kind == "replace":  # a pipeline update whose delta is no smaller than the document
            self._changes.record("replace", self._sync.name, _id, fullDocument=self._read(_id))
            return
        assert description is not None  # ("update", its description): describe_update's answer
        description["updatedFields"] = {path: _aware(value) for path, value in description["updatedFields"].items()}
        description["truncatedArrays"] = [dict(entry) for entry in description["truncatedArrays"]]
        self._changes.record("update", self._sync.name, _id, updateDescription=description)

    def _report_deletes(self, ids: list[Any]) -> None:
        forms = _AwareForms.of(self._sync._store)
        for _id in ids:
            if not self._exists(_id):
                forms.forget(_key(_id))  # a deleted document's kept form goes with it
                self._changes.record("delete", self._sync.name, _id)

    def _ids(self, filter: dict[str, Any], first: bool = False, sort: Any = None) -> list[Any]:
        """The _ids a write with this filter touches, in the order mongomock visits them.

        A filter on one `_id` (a string, an int or an ObjectId) tests that one document, not
        every document of the collection, with the filter as mongomock's `find` prepares it."""
        if sort is None and type(filter) is dict and type(filter.get("_id")) in _IDS:
            spec = helpers.patch_datetime_awareness_in_document(filter)
            stored = self._sync._store._documents.get(_key(filter["_id"]))
            if stored is None:
                matches(spec, {})  # an invalid filter is refused all the same
                return []
            return [stored["_id"]] if matches(spec, stored) else []
        cursor = self._sync.find(filter, {"_id": 1}, sort=sort)
        return [doc["_id"] for doc in (cursor.limit(1) if first else cursor)]

    def _read(self, _id: Any, keep: bool = False) -> dict[str, Any] | None:
        return _snapshot(self._sync, _id, keep)

    def _exists(self, _id: Any) -> bool:
        store = self._sync._store
        return _store_key(store._documents, _id) in store


_IDS = frozenset({str, int, ObjectId})  # _id types whose equality is plain equality (find_one's fast path)
_LEAVES = frozenset({str, int, float, bool, type(None), ObjectId})  # immutable, no datetime inside


# operator updates that change only the fields they name (the first segment of each path)
_OPERATORS = frozenset(
    {
        "$set",
        "$unset",
        "$inc",
        "$mul",
        "$min",
        "$max",
        "$currentDate",
        "$bit",
        "$push",
        "$addToSet",
        "$pop",
        "$pull",
        "$pullAll",
        "$rename",
        "$setOnInsert",
    }
)


_NUMBERS = frozenset({int, float})  # what an `$inc` adds the same way in Python and mongomock's fast path


def _top_level(update: Any) -> bool:
    """An update `_update_top_level` runs as mongomock would: a dict of `$set`, `$unset` and `$inc`,
    each a non-empty dict of plain top-level field names (no dot, no `$`, no null character,
    not `_id`), no field named by two operators."""
    if type(update) is not dict or not update:
        return False
    seen: set[str] = set()
    for operator, fields in update.items():
        if operator not in _TOP_LEVEL or type(fields) is not dict or not fields:
            return False
        for name in fields:
            if type(name) is not str or not name or name == "_id" or name in seen or not _PLAIN_NAME.match(name):
                return False
            seen.add(name)
    return True


_TOP_LEVEL = frozenset({"$set", "$unset", "$inc"})
_PLAIN_NAME = re.compile(r"^[^.$\x00]+$")


def _included(projection: Any) -> set[str] | None:
    """The top-level fields an inclusion projection such as `{"seq": 1}` keeps (with `_id` unless
    it says `"_id": 0`); None for any other projection (mongomock's own projection runs)."""
    if type(projection) is not dict or not projection:
        return None
    fields = {"_id"}
    for name, keep in projection.items():
        if type(name) is not str or "." in name or name.startswith("$") or type(keep) not in (int, bool):
            return None
        if name == "_id":
            if not keep:
                fields.discard("_id")
        elif keep:
            fields.add(name)
        else:
            return None  # an exclusion
    return fields if fields - {"_id"} else None


def _check_update(update: Any, kwargs: dict[str, Any]) -> None:
    """Refuse, before anything is written, what mongomock would get wrong or fail on half way."""
    if kwargs.get("array_filters") is not None:
        raise EmbeddedUnsupported("array_filters are not available on the embedded store (mongomock lacks them)")
    if type(update) is dict:
        for spec in update.values():
            for path in spec if isinstance(spec, dict) else ():
                if "$[" in str(path):
                    raise EmbeddedUnsupported(
                        f"the all-positional operators $[] and $[<id>] are not available on the embedded store "
                        f"(mongomock lacks them): {path!r}"
                    )


def _for_mongomock(update: Any) -> Any:
    """An update pipeline in stages mongomock runs: `$unset` as the `$project` exclusion it is
    an alias of, `$replaceWith` as `$replaceRoot` (MongoDB documents both aliases)."""
    if type(update) is not list:
        return update
    stages = []
    for stage in update:
        if isinstance(stage, dict) and list(stage) == ["$unset"]:
            fields = stage["$unset"]
            fields = [fields] if isinstance(fields, str) else fields
            if not isinstance(fields, list) or not all(isinstance(f, str) for f in fields):
                return update  # not an $unset MongoDB accepts: let mongomock refuse it
            stages.append({"$project": {f: 0 for f in fields}})
        elif isinstance(stage, dict) and list(stage) == ["$replaceWith"]:
            stages.append({"$replaceRoot": {"newRoot": stage["$replaceWith"]}})
        else:
            stages.append(stage)
    return stages


def _touched(update: Any) -> set[str] | None:
    """The top-level fields an operator update can change; None if it may change any (a
    pipeline, a replacement, an operator not listed)."""
    if type(update) is not dict or not update:
        return None
    fields: set[str] = set()
    for operator, spec in update.items():
        if operator not in _OPERATORS or not isinstance(spec, dict):
            return None
        for path in spec:
            fields.add(str(path).split(".", 1)[0])
        if operator == "$rename":
            for path in spec.values():
                if not isinstance(path, str):
                    return None
                fields.add(path.split(".", 1)[0])
    return fields


def _paths(update: dict[str, Any]) -> dict[str, list[list[str]]]:
    """Each top-level field an operator update (one `_touched` accepts) names, with the parts of
    the paths below it (`{"activities": [["7", "votes"]]}`; `[]` for the field itself)."""
    paths: dict[str, list[list[str]]] = {}
    for operator, spec in update.items():
        named = [str(path) for path in spec] + (list(spec.values()) if operator == "$rename" else [])
        for path in named:
            top, *rest = path.split(".")
            paths.setdefault(top, []).append(rest)
    return paths


def _copy_paths(value: Any, rests: list[list[str]]) -> Any:
    """A copy of `value` for mongomock to change along the paths `rests` (parts below it): the
    dicts and lists on those paths, and the containers they end at, are new (shallow) copies;
    everything else is `value`'s own, which the write leaves alone. A path through a list by
    anything but an index (a positional `$`, a field of every element) copies that list's
    whole structure, as does any container but a plain dict or list."""
    kind = type(value)
    if kind is dict:
        out: Any = dict(value)
    elif kind is list and all(not rest or (rest[0].isascii() and rest[0].isdigit()) for rest in rests):
        out = list(value)
    else:
        return structure(value)
    below: dict[str, list[list[str]]] = {}
    for rest in rests:
        if rest:
            below.setdefault(rest[0], []).append(rest[1:])
    for part, subs in below.items():
        if kind is dict:
            if part in out and type(out[part]) not in IMMUTABLE:
                out[part] = _copy_paths(out[part], subs)
        elif int(part) < len(out) and type(out[int(part)]) not in IMMUTABLE:
            out[int(part)] = _copy_paths(out[int(part)], subs)
    return out


def _valid_keys(value: dict[str, Any], top: bool) -> bool:
    """True when mongomock's `_validate_data_fields` accepts `value` (no NUL in a key of it or of a
    mapping in it, no top-level key starting with `$`), for plain dicts; False when it would not, or
    may not (a key that is not a string, a mapping of another kind): its own insert then decides."""
    for key, v in value.items():
        if type(key) is not str or "\0" in key or (top and key[:1] == "$"):
            return False
        kind = type(v)
        if kind is dict:
            if not _valid_keys(v, False):
                return False
        elif kind not in _LEAVES and kind is not list and isinstance(v, Mapping):
            return False
    return True


def _key(_id: Any) -> Any:
    """The key of a stored document in mongomock's store."""
    return helpers.hashdict(_id) if isinstance(_id, dict) else _id


def _store_key(documents: dict[Any, Any], _id: Any) -> Any:
    """The key `documents` (a mongomock store's) holds the document `_id` under: `_key(_id)` for a
    str, int or ObjectId, or where it is held; else that of the document whose stored `_id` equals
    `_id`'s stored form, found by a scan (mongomock keys a document by the `_id` its inserter gave,
    and a datetime read back is UTC-aware at millisecond precision, a key the store may not hold);
    `_key(_id)` where none does. The scan is for the other types only, and where the key misses."""
    key = _key(_id)
    if type(_id) in _IDS or key in documents:
        return key
    wanted = _stored_form(_id)
    for held, document in documents.items():
        if document.get("_id") == wanted:
            return held
    return key


def _stored(store: Any, key: Any) -> dict[str, Any] | None:
    """mongomock's `CollectionStore[key]` (TTL expiry first, then the stored document), None where it
    raises KeyError, without its reader lock (like every write here, the store is used from the
    event loop's thread only)."""
    store._remove_expired_documents()
    found: dict[str, Any] | None = store._documents.get(key)
    return found


def _snapshot(collection: SyncCollection, _id: Any, keep: bool = False) -> dict[str, Any] | None:
    """A private copy of a stored document, datetimes made UTC-aware (None if absent).

    With `keep` (reads of a document that is read again and again: `find_one` by `_id`), the
    UTC-aware form is kept with the stored object it was made from (`_AwareForms`), and the
    copy is a copy of it: no datetime is converted again until the document is written, and
    then only the top-level fields the write replaced are."""
    store = collection._store
    if type(_id) in _IDS:
        key = _key(_id)
    else:
        store._remove_expired_documents()
        key = _store_key(store._documents, _id)
    stored = _stored(store, key)
    if stored is None:
        if keep:
            _AwareForms.of(store).forget(key)
        return None
    if not keep:
        aware: dict[str, Any] = _aware(stored)
        return aware
    return copy_dict(_AwareForms.of(store).form(key, stored))


class _AwareForms:
    """A collection's UTC-aware forms of its most read documents, each with the stored object it
    was made from; `form` gives the current one (never handed out: callers copy it).

    A form is valid while the store still holds the very object it was made from: a write never
    changes a stored document in place but replaces it (`EmbeddedCollection._modify` hands
    mongomock a `_Writable` copy), and the top-level values it does not touch are the previous
    object's own, unchanged (`_Writable.of`), so their forms are reused as they are. The form
    holds its stored object, so that identity cannot be reused by another object.
    """

    KEPT = 1_000  # documents per collection (the least recently made dropped first)

    def __init__(self) -> None:
        self._forms: dict[Any, tuple[dict[str, Any], dict[str, Any]]] = {}

    @classmethod
    def of(cls, store: Any) -> "_AwareForms":
        forms: _AwareForms | None = store.__dict__.get("_tandem_aware_forms")
        if forms is None:
            forms = store._tandem_aware_forms = cls()
        return forms

    def forget(self, key: Any) -> None:
        self._forms.pop(key, None)

    def clear(self) -> None:
        """The collection was dropped: nothing it kept is kept (nor its memory held)."""
        self._forms.clear()

    def form(self, key: Any, stored: dict[str, Any]) -> dict[str, Any]:
        known = self._forms.get(key)
        if known is not None and CHECK_SHARED_FORMS and known[1] != _aware(known[0]):
            raise AssertionError(f"a kept form of {key!r} was changed by a reader (find_one_shared)")
        if known is not None and known[0] is stored:
            return known[1]
        form: dict[str, Any]
        if known is not None and type(stored) in _DOCUMENTS and type(known[0]) in _DOCUMENTS:
            form = _reformed(known[0], known[1], stored)
        else:
            form = _aware(stored)
        self._forms.pop(key, None)
        self._forms[key] = (stored, form)
        if len(self._forms) > self.KEPT:
            del self._forms[next(iter(self._forms))]
        return form


_ABSENT = object()


def _reformed(previous: Any, previous_form: Any, value: Any) -> Any:
    """The UTC-aware form of `value`, reusing `previous_form` (the form of `previous`) wherever
    `value` holds the very object `previous` held at the same place: a stored container is never
    changed once stored (a write changes copies of what it names: `_Writable.of`)."""
    if value is previous:
        return previous_form
    kind = type(value)
    if kind in _DOCUMENTS and type(previous) in _DOCUMENTS and type(previous_form) is dict:
        return {
            k: v if type(v) in _LEAVES else _reformed(previous.get(k, _ABSENT), previous_form.get(k), v)
            for k, v in value.items()
        }
    if kind is list and type(previous) is list and type(previous_form) is list and len(previous_form) == len(previous):
        known = len(previous)
        return [
            v if type(v) in _LEAVES else _reformed(previous[i], previous_form[i], v) if i < known else _aware(v)
            for i, v in enumerate(value)
        ]
    return _aware(value)


CHECK_SHARED_FORMS = False
"""Tests (tests/conftest.py): every use of a kept form first checks that it still equals the
stored document it was made from, so a reader of `find_one_shared` that changed it fails."""


def _checked_form(stored: dict[str, Any], made: dict[str, Any]) -> dict[str, Any]:
    """Tests (CHECK_SHARED_FORMS): the UTC-aware copy of `stored` made now is the one made when it
    was stored (`made`): nothing changed the stored document in place meanwhile."""
    now: dict[str, Any] = _aware(stored)
    if now != made:
        raise AssertionError(f"a stored document changed in place after its insert: {made!r} -> {now!r}")
    return now


def _aware(value: Any) -> Any:
    """A copy of a stored value with UTC-aware datetimes: new dicts and lists, shared leaves.

    The same result as mongomock's `make_datetime_timezone_aware_in_document`, in about
    two thirds of the time (plain dicts, lists and leaves are recognised by type first).
    """
    kind = type(value)
    if kind is dict:
        return {k: v if type(v) in _LEAVES else _aware(v) for k, v in value.items()}
    if kind is list:
        return [v if type(v) in _LEAVES else _aware(v) for v in value]
    if kind is datetime:
        return value.replace(tzinfo=utc)
    if isinstance(value, dict):
        return {k: _aware(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return [_aware(v) for v in value]
    if isinstance(value, datetime):
        return value.replace(tzinfo=utc)
    return value


class _Writable(dict[str, Any]):
    """A stored document handed to mongomock for one update, with the document it replaced.

    mongomock's update deep-copies the document before changing it (to tell whether it
    changed and to roll back a refused write). That copy would equal `before`, which is
    kept unchanged and referenced by nothing else, so the first deepcopy returns `before`
    itself. `EmbeddedCollection._modify` clears `before` once the write is over; any later
    deepcopy is a real one.
    """

    __slots__ = ("before",)
    before: dict[str, Any] | None

    @classmethod
    def of(
        cls, before: dict[str, Any], touched: set[str] | None, paths: dict[str, list[list[str]]] | None = None
    ) -> "_Writable":
        """A copy of `before` for mongomock to change: the fields in `touched` (all if None)
        have their own dicts and lists (with `paths`, see `_paths`, only those on the paths the
        update names: `_copy_paths`); the others are `before`'s, which the write leaves alone."""
        if touched is None:
            handed = cls((k, v if type(v) in _LEAVES else structure(v)) for k, v in before.items())
        else:  # `before`'s own values, in its order; then the touched containers replaced by copies
            handed = cls(before)
            for k in touched:
                v = before.get(k)  # a missing field: None, a leaf
                if type(v) not in _LEAVES:
                    handed[k] = structure(v) if paths is None else _copy_paths(v, paths.get(k, [[]]))
        handed.before = before
        return handed

    def __deepcopy__(self, memo: dict[int, Any]) -> dict[str, Any]:
        before: dict[str, Any] | None = getattr(self, "before", None)
        self.before = None
        if before is not None:
            return before
        return copy.deepcopy(dict(self), memo)

    def __copy__(self) -> dict[str, Any]:
        return dict(self)


# what a stored document is (a `_Writable` once it was updated)
_DOCUMENTS: frozenset[type] = frozenset((dict, _Writable))


def _install_id_lookup(collection: SyncCollection) -> None:
    """mongomock's `_iter_documents` (under its find, update, delete and count) tests the filter
    on every document of the collection. For a filter on one `_id` (a str, an int or an ObjectId)
    only the document stored under it can match: that one is tested, with the same filter and
    the same TTL expiry first (idempotent)."""
    patched: Any = collection  # mongomock's internals are untyped
    if getattr(patched, "_tandem_id_lookup", False):
        return
    scan = patched._iter_documents  # mongomock's, as mongomock-motor wrapped it

    def iter_documents(filter: Any) -> Iterator[dict[str, Any]]:
        if type(filter) is not dict:
            documents: Iterator[dict[str, Any]] = scan(filter)
            return documents
        store = patched._store  # looked up by the collection's name each time: a rename moves it
        if type(filter.get("_id")) in _IDS:
            store._remove_expired_documents()
            found = store._documents.get(_key(filter["_id"]))
            candidates: tuple[Any, ...] = () if found is None else (found,)
        else:  # a filter a unique index answers (uniques.holder_of), looked up after TTL expiry
            indexed = uniques.holder_of(store, filter)
            if indexed is not None:
                store._remove_expired_documents()  # (removes documents only: the same index answers)
                indexed = uniques.holder_of(store, filter)
            if indexed is None:
                documents = scan(filter)
                return documents
            candidates = indexed
        if not candidates:
            matches(filter, {})  # an invalid filter is refused all the same
        answer = [doc for doc in candidates if matches(filter, doc)]
        if CHECK_SHARED_FORMS and "_id" not in filter:  # tests: the index answers as the scan does
            scanned = list(scan(filter))
            if [id(doc) for doc in scanned] != [id(doc) for doc in answer]:
                raise AssertionError(f"a unique-index lookup of {filter!r} found {answer!r}, the scan {scanned!r}")
        return iter(answer)

    patched._iter_documents = iter_documents
    patched._tandem_id_lookup = True


_patch_datetimes: Callable[[Any], Any] = helpers.patch_datetime_awareness_in_document  # mongomock's own


def _stored_form(value: Any) -> Any:
    """mongomock's `patch_datetime_awareness_in_document` (what each insert and update stores and
    each query compares: datetimes naive UTC at millisecond precision, tuples as lists), with
    plain dicts, lists and leaves recognised by type first: the same result, without a generator
    and two isinstance calls per value. Installed in its place for every mongomock collection."""
    kind = type(value)
    if kind is dict:
        return {k: v if type(v) in _LEAVES else _stored_form(v) for k, v in value.items()}
    if kind is list:
        return [v if type(v) in _LEAVES else _stored_form(v) for v in value]
    if kind is datetime:  # mongomock's own steps for a datetime (naive UTC, milliseconds)
        mongo_us = value.microsecond // 1000 * 1000
        if value.tzinfo:
            return (value - value.utcoffset()).replace(tzinfo=None, microsecond=mongo_us)
        return value.replace(microsecond=mongo_us)
    return _patch_datetimes(value)  # datetime subclasses, OrderedDicts, tuples, Timestamps, the rest


helpers.patch_datetime_awareness_in_document = _stored_form


def _report_ttl_deletes(collection: SyncCollection, on_delete: Callable[[Any], None]) -> None:
    """Report documents that a TTL index removes as delete events, as MongoDB's TTL monitor does.

    mongomock expires documents lazily, when the collection is next read.
    """
    store = collection._store
    if getattr(store, "_tandem_reports_ttl", False):
        return
    expire = store._expire_documents

    def expire_and_report(index: dict[str, Any]) -> None:
        if store._tandem_ttl_held:
            return
        before = list(store._documents)
        expire(index)
        if len(store._documents) < len(before):
            for key in before:
                if key not in store._documents:
                    on_delete(key)

    store._expire_documents = expire_and_report
    store._tandem_reports_ttl = True
    store._tandem_ttl_held = False
