"""What the store uses of a MongoDB driver: the calls, with their options and their answers.

The repositories (backend/store/*.py) run the same code on motor (real MongoDB) and on the
embedded store (embedded.py, mongomock-motor). These Protocols name the part of motor's API
they call, and nothing more: a repository holds a `Db`, a `Collection`, a `Client`; mypy
checks that the embedded store's classes are these (client.py), and every call a repository
makes against them. A call the store needs that is not here is added here first, with the
options it passes and the type of its answer (see docs/store.md, "The driver Protocol").

Motor's own stubs do not quite describe its runtime (a change stream's `alive`, a property, is
declared a method), so client.py accepts motor's database at that one line, with a cast.
"""

from __future__ import annotations

from typing import Any, AsyncIterator, Awaitable, Mapping, Protocol, Sequence

from motor.core import AgnosticClientSession

Document = dict[str, Any]
"""A stored document as the driver hands it back: a fresh dict (the caller may change it)."""

Filter = Mapping[str, Any]
Update = Mapping[str, Any] | Sequence[Mapping[str, Any]]  # operators, or an update pipeline
Keys = str | list[tuple[str, int]]  # sort("field", direction) or sort([("field", 1), ...])

Session = AgnosticClientSession
"""A MongoDB session (a transaction's, backend/store/writes.py). Only real MongoDB has one: on
the embedded store every `session=` is None. Motor's class, not a Protocol: nothing stands in."""


class Inserted(Protocol):
    @property
    def inserted_id(self) -> Any: ...


class Updated(Protocol):
    @property
    def matched_count(self) -> int: ...

    @property
    def modified_count(self) -> int: ...


class Deleted(Protocol):
    @property
    def deleted_count(self) -> int: ...


class Batched(Protocol):
    """A cursor read one document at a time (what `Cursor.batch_size` hands back)."""

    def next(self) -> Awaitable[Document]:
        """The next document; StopAsyncIteration past the last."""
        ...

    def close(self) -> Awaitable[None]: ...


class Cursor(Protocol):
    """What `Collection.find` hands back: narrowed, then read whole or iterated."""

    def sort(self, key_or_list: Keys, direction: int | None = ..., /) -> Cursor: ...

    def limit(self, limit: int, /) -> Cursor: ...

    def batch_size(self, batch_size: int, /) -> Batched: ...

    def to_list(self, length: int | None) -> Awaitable[list[Document]]: ...

    def __aiter__(self) -> AsyncIterator[Document]: ...


class Collection(Protocol):
    def find(self, filter: Filter, projection: Mapping[str, Any] | None = ..., /) -> Cursor: ...

    def find_one(
        self, filter: Filter, projection: Mapping[str, Any] | None = ..., /, *, session: Session | None = ...
    ) -> Awaitable[Document | None]: ...

    def count_documents(self, filter: Filter, /) -> Awaitable[int]: ...

    def insert_one(self, document: Document, /, *, session: Session | None = ...) -> Awaitable[Inserted]: ...

    def update_one(
        self, filter: Filter, update: Update, /, *, upsert: bool = ..., session: Session | None = ...
    ) -> Awaitable[Updated]: ...

    def update_many(self, filter: Filter, update: Update, /) -> Awaitable[Updated]: ...

    def find_one_and_update(
        self,
        filter: Filter,
        update: Update,
        projection: Mapping[str, Any] | None = ...,
        /,
        *,
        sort: list[tuple[str, int]] | None = ...,
        upsert: bool = ...,
        return_document: bool = ...,
        session: Session | None = ...,
    ) -> Awaitable[Document | None]:
        """The document before the update (ReturnDocument.BEFORE, the default) or after it; None if none matched."""
        ...

    def delete_one(self, filter: Filter, /) -> Awaitable[Deleted]: ...

    def delete_many(self, filter: Filter, /) -> Awaitable[Deleted]: ...

    def create_index(
        self,
        keys: list[tuple[str, int]],
        /,
        *,
        unique: bool = ...,
        sparse: bool = ...,
        partialFilterExpression: Mapping[str, Any] = ...,
        expireAfterSeconds: int = ...,
    ) -> Awaitable[str]: ...


class ChangeStream(Protocol):
    """A change stream, opened with `async with` (what `Db.watch` hands back)."""

    @property
    def alive(self) -> bool: ...

    @property
    def resume_token(self) -> dict[str, Any] | None: ...

    def try_next(self) -> Awaitable[Document | None]:
        """The next change, or None once max_await_time_ms passed without one."""
        ...

    async def __aenter__(self) -> ChangeStream: ...

    async def __aexit__(self, *exc_info: object) -> None: ...


class Db(Protocol):
    def __getitem__(self, name: str, /) -> Collection: ...

    def command(self, command: str, /) -> Awaitable[Mapping[str, Any]]: ...

    def watch(
        self, pipeline: list[dict[str, Any]], /, *, resume_after: Mapping[str, Any] | None, max_await_time_ms: int
    ) -> ChangeStream: ...


class Client(Protocol):
    def start_session(self) -> Awaitable[Session]:
        """A session for a transaction (real MongoDB only: the embedded client refuses)."""
        ...

    def close(self) -> None: ...
