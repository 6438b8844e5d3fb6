"""Shared pieces of the realtime and HTTP tests (not collected): live servers, WebSocket clients, copies.

`live_server()` runs the real app under a real uvicorn on 127.0.0.1 over a
runtime on the embedded store, or on real MongoDB (`store="mongodb"`, skipped
without MONGODB_URI). `Client` is a real `websockets` client that reads every
frame into a queue; `Copy` is what a client keeps, built only from frames.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
from typing import Any, AsyncIterator, Callable

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from backend.composition import build_api
from backend.domain.diff import apply_update
from backend.realtime import Realtime
from backend.runtime import Runtime
from backend.settings import Settings, test_settings
from backend.store.client import open_database
from backend.store.indexes import ensure_indexes
from tests.conftest import REAL_MONGODB_SKIPPED
from tests.support import ACCOUNTS, LiveServer, sign_in, token

TIMEOUT = 5.0
STORES = ["embedded", pytest.param("mongodb", marks=pytest.mark.mongodb)]


async def open_runtime(store: str = "embedded", *, handle: Any = None, **overrides: Any) -> Runtime:
    """A runtime on a fresh embedded store, on a fresh database on MONGODB_URI, or over `handle`."""
    overrides.setdefault("action_rate_limit", 100_000)
    if store == "mongodb":
        uri = os.environ.get("MONGODB_URI")  # tests only; the app reads settings through load_settings()
        if not uri:
            pytest.skip(REAL_MONGODB_SKIPPED)
        overrides.update(mongodb_uri=uri, mongodb_db=f"tandem_test_{secrets.token_hex(6)}")
    settings = test_settings(**overrides)
    if handle is None:
        handle = await open_database(settings)
        await ensure_indexes(handle.db)
    runtime = Runtime(settings, handle)
    await sign_in(runtime, *ACCOUNTS)
    return runtime


async def close_runtime(runtime: Runtime) -> None:
    if not runtime.handle.embedded:
        await runtime.handle.client.drop_database(runtime.settings.mongodb_db)
    await runtime.close()


class Live:
    """A running server: its URL, runtime and settings, and an HTTP client to act through."""

    def __init__(self, server: LiveServer, runtime: Runtime, http: httpx.AsyncClient):
        self.server = server
        self.runtime = runtime
        self.settings: Settings = runtime.settings
        self.http = http
        self.ws_url = server.url.replace("http://", "ws://") + "/ws"

    @property
    def realtime(self) -> Realtime:
        return self.runtime.realtime

    def token(self, email: str) -> str:
        return token(self.settings, email)

    def auth(self, email: str) -> dict[str, str]:
        return {"authorization": f"Bearer {self.token(email)}"}

    async def act(self, email: str, name: str, cid: str | None, payload: dict[str, Any] | None = None) -> dict:
        r = await self.http.post(
            f"/api/actions/{name}", json={"collaborationId": cid, "payload": payload or {}}, headers=self.auth(email)
        )
        assert r.status_code in (200, 202), r.text
        return r.json()

    async def create(self, email: str, title: str = "Team") -> str:
        r = await self.http.post("/api/collaborations", json={"title": title}, headers=self.auth(email))
        assert r.status_code == 201, r.text
        return r.json()["id"]

    async def snapshot(self, email: str, cid: str) -> dict:
        r = await self.http.get(f"/api/collaborations/{cid}", headers=self.auth(email))
        assert r.status_code == 200, r.text
        return r.json()

    async def messages(self, email: str, cid: str) -> list[dict]:
        r = await self.http.get(f"/api/collaborations/{cid}/messages?limit=200", headers=self.auth(email))
        return r.json()["messages"]

    async def client(self, email: str | None = None, **kwargs: Any) -> "Client":
        client = await Client.open(self.ws_url, **kwargs)
        if email is not None:
            await client.auth(self.token(email))
        return client


@contextlib.asynccontextmanager
async def live_server(
    runtime: Runtime | None = None, *, store: str = "embedded", **overrides: Any
) -> AsyncIterator[Live]:
    """The real app on a real uvicorn, configured as `tandem api` configures it."""
    own = runtime is None
    runtime = runtime or await open_runtime(store, **overrides)
    try:
        async with LiveServer(build_api(runtime.settings, runtime=runtime), runtime.settings) as server:
            async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
                yield Live(server, runtime, http)
    finally:
        if own:
            await close_runtime(runtime)


class Client:
    """A real WebSocket client; a background task reads every frame into `frames`."""

    def __init__(self, ws: Any):
        self.ws = ws
        self.frames: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.close_code: int | None = None
        self.close_reason = ""
        self.closed = asyncio.Event()
        self._reader = asyncio.get_running_loop().create_task(self._read())

    @classmethod
    async def open(cls, url: str, **kwargs: Any) -> "Client":
        kwargs.setdefault("ping_interval", None)
        return cls(await connect(url, **kwargs))

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                self.frames.put_nowait(json.loads(raw))
        except ConnectionClosed:
            pass
        finally:
            if self.ws.close_code is not None:
                self.close_code, self.close_reason = self.ws.close_code, self.ws.close_reason
            self.closed.set()

    async def send(self, **frame: Any) -> None:
        await self.ws.send(json.dumps(frame))

    async def send_raw(self, data: str | bytes) -> None:
        await self.ws.send(data)

    async def auth(self, tok: str) -> dict[str, Any]:
        await self.send(type="auth", token=tok)
        return await self.expect("ready")

    async def next(self, timeout: float = TIMEOUT) -> dict[str, Any]:
        return await asyncio.wait_for(self.frames.get(), timeout)

    async def expect(self, kind: str, timeout: float = TIMEOUT) -> dict[str, Any]:
        frame = await self.next(timeout)
        assert frame["type"] == kind, frame
        return frame

    async def until(self, match: str | Callable[[dict[str, Any]], bool], timeout: float = TIMEOUT) -> dict[str, Any]:
        """The first frame matching (a type, or a predicate); frames before it are dropped."""
        test = (lambda f: f["type"] == match) if isinstance(match, str) else match
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            frame = await self.next(max(0.01, deadline - loop.time()))
            if test(frame):
                return frame

    async def quiet(self, seconds: float = 0.3) -> list[dict[str, Any]]:
        """Every frame that arrives within `seconds` (expect none, usually)."""
        await asyncio.sleep(seconds)
        out = []
        while not self.frames.empty():
            out.append(self.frames.get_nowait())
        return out

    async def subscribe(self, cid: str, **since: Any) -> dict[str, Any]:
        await self.send(type="subscribe", collaborationId=cid, **since)
        return await self.expect("subscribed")

    async def wait_closed(self, timeout: float = TIMEOUT) -> int | None:
        await asyncio.wait_for(self.closed.wait(), timeout)
        return self.close_code

    async def close(self) -> None:
        await self.ws.close()
        await asyncio.wait_for(self.closed.wait(), TIMEOUT)

    def abort(self) -> None:
        """Drop the TCP connection without a closing handshake."""
        self.ws.transport.abort()


def apply_changes(doc: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """What a client does with collaboration_updated: set updatedFields, drop removedFields."""
    return apply_update(
        doc,
        {"$set": changes.get("updatedFields", {}), "$unset": {path: "" for path in changes.get("removedFields", [])}},
    )


class Copy:
    """A client's copy of one collaboration and its messages, kept from frames alone.

    It refuses a message it holds already (sent twice) as it refuses a repeated
    or skipped version; it resumes after the last message it received."""

    def __init__(self) -> None:
        self.doc: dict[str, Any] | None = None
        self.version = 0
        self.messages: dict[str, dict[str, Any]] = {}
        self.last_message_id: str | None = None  # the last one received: the snapshot's last, or the latest event
        self.snapshots = 0
        self.catch_ups = 0
        self.applied: list[int] = []

    def since(self) -> dict[str, Any]:
        if self.doc is None:
            return {}
        since: dict[str, Any] = {"sinceVersion": self.version}
        if self.messages:
            since["sinceMessageId"] = self.last_message_id
        return since

    def apply(self, frame: dict[str, Any]) -> None:
        kind = frame["type"]
        if kind == "subscribed" and self.doc is not None and frame["version"] >= self.version:
            self.catch_ups += 1
        elif kind == "snapshot":
            self.doc, self.version = frame["collaboration"], frame["version"]
            self.messages = {m["id"]: m for m in frame["messages"]}
            assert len(self.messages) == len(frame["messages"]), "a message twice in one snapshot"
            self.last_message_id = frame["messages"][-1]["id"] if frame["messages"] else None
            self.snapshots += 1
        elif kind == "collaboration_updated":
            assert self.doc is not None
            assert frame["version"] == self.version + 1, (frame["version"], self.version)
            self.doc = apply_changes(self.doc, frame["changes"])
            self.version = frame["version"]
            self.applied.append(frame["version"])
            assert self.doc["version"] == self.version
        elif kind == "message_created":
            message = frame["message"]
            assert message["id"] not in self.messages, ("message sent twice", message)
            self.messages[message["id"]] = message
            self.last_message_id = message["id"]
