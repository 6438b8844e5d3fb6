"""The WebSocket endpoint at `/ws` (design section 5): auth, subscriptions, presence, limits.

(Over 300 lines: one connection's life, auth, subscribe and its three ways to go live,
presence and limits, read in order; the hub, the outbox and the history are their own modules.)

Each connection is one `Connection`: the ASGI task runs `run()`, which
authenticates, takes one of the user's sockets (at most
`WS_MAX_SOCKETS_PER_USER` per process), starts the receive task and waits for
a reason to close; every frame out goes through the connection's `Outbox`
(backend.realtime.hub), the same path the hub's events take, so replies and
events keep their order, and what is queued is bounded in frames and bytes.

A subscribe follows the no-gap rule: register in the hub (events buffer from
now on), read the collaboration with the stream seq it is current to (one
read: backend/store/stream.py), then go live, dropping buffered events at or
below that seq. With `sinceSeq` the client gets the events after it replayed
from MongoDB (the audit log and the messages, the bytes the live stream sent),
on any API process: when at most `RESUME_MAX_EVENTS` were missed, they fit the
connection's byte budget and do not include the caller's removal; else, or
when `sinceSeq` is ahead of the stream, a snapshot (the latest messages at or
below its seq). The older `sinceVersion` gets only what it missed when the
hub's history still holds it (and the store every message after
`sinceMessageId`), else a snapshot.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any

from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket

from backend.clock import utcnow
from backend.errors import (
    InvalidRequest,
    NotFound,
    PayloadTooLarge,
    ServiceUnavailable,
    TandemError,
    Unauthenticated,
)
from backend.ids import new_id
from backend.realtime import events as ev
from backend.realtime import protocol as p
from backend.realtime.hub import GoLive, Outbox, Subscription
from backend.realtime.transport import PREFRAMED
from backend.store.failures import StoreError
from backend.wire import encode, public

if TYPE_CHECKING:
    from backend.auth.tokens import Principal
    from backend.realtime import Realtime  # (it imports this module)

log = logging.getLogger("tandem.realtime")

UNAUTHENTICATED, AUTH_TIMEOUT, TOO_SLOW, RATE_LIMITED, GOING_AWAY, INTERNAL = 4401, 4408, 4009, 4429, 1001, 1011
TRY_AGAIN_LATER = 1013
SNAPSHOT_MESSAGES = 50  # messages sent with a snapshot
CATCH_UP_MESSAGES = 200  # more missed messages than this: a snapshot instead
MAX_SUBSCRIPTIONS = 100  # per connection
PRESENCE_STATE_BYTES = 2048
FLUSH_TIMEOUT = 2.0  # seconds to write what is queued before a close frame
CLOSE_TIMEOUT = 5.0  # seconds for the close frame to get out
SNAPSHOT_WAIT = 5.0  # seconds a subscribe waits for the connection's previous snapshot to be written (else 4009)


def frame(body: dict[str, Any]) -> ev.Frame:
    return ev.encode_frame(body)


class UserSockets:
    """How many sockets each user holds on this process: at most `limit` (WS_MAX_SOCKETS_PER_USER)."""

    def __init__(self, limit: int):
        self.limit = limit
        self._held: dict[str, int] = {}

    def take(self, user_id: str) -> bool:
        held = self._held.get(user_id, 0)
        if held >= self.limit:
            return False
        self._held[user_id] = held + 1
        return True

    def give_back(self, user_id: str) -> None:
        held = self._held[user_id] - 1
        if held:
            self._held[user_id] = held
        else:
            del self._held[user_id]

    def held(self, user_id: str) -> int:
        return self._held.get(user_id, 0)


class RealtimeEndpoint:
    """The ASGI app mounted at /ws (a class, so Starlette hands it the raw `send`)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        realtime = scope["app"].state.runtime.realtime
        await Connection(realtime, WebSocket(scope, receive, send), send).run()


class Connection:
    def __init__(self, realtime: Realtime, websocket: WebSocket, send: Send):
        settings = realtime.settings
        self.realtime = realtime
        self.settings = settings
        self.ws = websocket
        self._raw_send = send
        self.id = new_id("con")
        self.user_id = ""
        preframed = websocket.scope.get("extensions", {}).get(PREFRAMED)  # backend.realtime.transport
        if preframed is not None:  # each frame's bytes built once, written to every subscriber as they are
            self.outbox = Outbox(
                preframed["send"],
                settings.ws_queue_size,
                self._too_slow,
                settings.ws_queue_bytes,
                write_now=preframed["write_now"],
                budget=realtime.queue_budget,
                lane=preframed.get("lane"),
            )
        else:  # permessage-deflate: compressed per connection, through uvicorn's websocket.send
            self.outbox = Outbox(
                send, settings.ws_queue_size, self._too_slow, settings.ws_queue_bytes, budget=realtime.queue_budget
            )
        self.subs: dict[str, Subscription] = {}
        self.present: set[str] = set()
        self.bucket = p.Bucket(settings.ws_rate_limit, 2 * settings.ws_rate_limit)
        self._closing: asyncio.Future[tuple[int | None, str]] = asyncio.get_running_loop().create_future()
        self._expiry: asyncio.TimerHandle | None = None
        self._receiver: asyncio.Task[None] | None = None
        self._chores: set[asyncio.Task[Any]] = set()
        self.done = asyncio.Event()

    # -- lifecycle

    async def run(self) -> None:
        try:
            await self.ws.accept()
            principal = await self._authenticate()
        except _Close as close:
            await self._close_frame(close.code, close.reason)
            self.done.set()
            return
        if principal is None:  # gone before authenticating
            self.done.set()
            return
        if not self.realtime.sockets.take(principal.id):
            await self._close_frame(RATE_LIMITED, "too many sockets for this user")
            self.done.set()
            return
        self.user_id = principal.id  # from here to `try` nothing is awaited: the socket is always given back
        self.realtime.connections.add(self)
        self.realtime.metrics.ws_connections.inc()
        try:
            self.put({"type": "ready", "userId": self.user_id, "connectionId": self.id})
            self._arm_expiry(principal.expires_at)
            self._receiver = asyncio.get_running_loop().create_task(self._receive_loop())
            code, reason = await self._closing
            await self._finish(code, reason)
        finally:
            self._release()  # also when this task is cancelled half way
            if self.present:  # not left yet: leave in the background
                self.realtime.presence.leave_soon(self.id)
            self.realtime.connections.discard(self)
            self.realtime.metrics.ws_connections.dec()
            self.realtime.sockets.give_back(self.user_id)
            self.done.set()

    def close_soon(self, code: int | None, reason: str = "") -> None:
        """Ask the connection to close (`code` None: the client has gone already)."""
        if not self._closing.done():
            self._closing.set_result((code, reason))

    async def _finish(self, code: int | None, reason: str) -> None:
        self._release()
        if self._receiver is not None:
            await asyncio.gather(self._receiver, return_exceptions=True)
        if code is not None and code != TOO_SLOW:
            await self.outbox.flush(FLUSH_TIMEOUT)
        self.outbox.close()
        if code is not None:
            await self._close_frame(code, reason)
        if self._chores:
            await asyncio.gather(*self._chores, return_exceptions=True)
        if self.present:
            self.present.clear()
            await self.realtime.presence.leave_all(self.id)

    def _release(self) -> None:
        """Stop the timer and the receive task, end every subscription (synchronous, idempotent)."""
        if self._expiry is not None:
            self._expiry.cancel()
        if self._receiver is not None and not self._receiver.done():
            self._receiver.cancel()
        for sub in list(self.subs.values()):
            self.realtime.hub.unregister(sub)
        self.subs.clear()

    async def _close_frame(self, code: int, reason: str) -> None:
        message = {"type": "websocket.close", "code": code, "reason": reason[:120]}
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT):
                await self._raw_send(message)
        except (TimeoutError, OSError, RuntimeError):
            pass  # the peer is gone or not reading; the server drops the transport when we return

    def _too_slow(self) -> None:
        self.realtime.metrics.slow_closes.inc()
        self.close_soon(TOO_SLOW, "too slow: subscribe again with sinceSeq")

    def _arm_expiry(self, expires_at: datetime) -> None:
        if self._expiry is not None:
            self._expiry.cancel()
        delay = max(0.0, (expires_at - utcnow()).total_seconds())
        self._expiry = asyncio.get_running_loop().call_later(delay, self.close_soon, UNAUTHENTICATED, "token expired")

    # -- frames in

    async def _authenticate(self) -> Principal | None:
        try:
            async with asyncio.timeout(self.settings.ws_auth_timeout):  # not wait_for: see changestream
                message = await self.ws.receive()
        except TimeoutError:
            raise _Close(AUTH_TIMEOUT, "authenticate first") from None
        if message["type"] == "websocket.disconnect":
            return None
        try:
            first = p.parse(message.get("text") or "")
        except TandemError:
            first = None
        if not isinstance(first, p.Auth):
            raise _Close(UNAUTHENTICATED, 'send {"type": "auth", "token": ...} first')
        try:
            return await self.realtime.verifier.verify(first.token)
        except Unauthenticated as exc:
            raise _Close(UNAUTHENTICATED, exc.message) from None
        except TandemError as exc:  # the keys could not be fetched (JWKS unreachable): not the token's fault
            log.warning("websocket auth could not verify a token: %s", exc.message, extra={"connectionId": self.id})
            raise _Close(TRY_AGAIN_LATER, exc.message) from None

    async def _receive_loop(self) -> None:
        try:
            while True:
                message = await self.ws.receive()
                if message["type"] == "websocket.disconnect":
                    break
                if not self.bucket.take():
                    self.close_soon(RATE_LIMITED, "too many frames")
                    return
                await self._on_frame(message.get("text"))
                if self._closing.done():
                    return
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("websocket connection failed", extra={"connectionId": self.id})
            self.close_soon(INTERNAL, "internal error")
        finally:
            self.close_soon(None)

    async def _on_frame(self, text: str | None) -> None:
        context: str | None = None
        try:
            if text is None:
                raise InvalidRequest("Frames are JSON text; binary frames are not accepted.")
            size = len(text) if text.isascii() else len(text.encode())
            if size > self.settings.ws_max_frame_bytes:
                raise PayloadTooLarge(
                    f"A frame may hold at most {self.settings.ws_max_frame_bytes} bytes.",
                    {"size": size, "limit": self.settings.ws_max_frame_bytes},
                )
            parsed = p.parse(text)
            context = getattr(parsed, "collaborationId", None)
            await self._dispatch(parsed)
        except TandemError as exc:
            self._error(exc, context)
        except StoreError as exc:  # the database is unreachable for now: say so, keep the connection
            log.warning("websocket frame failed on the database: %r", exc, extra={"connectionId": self.id})
            self._error(ServiceUnavailable("The database did not answer; try again."), context)

    async def _dispatch(self, frame_: p.Frame) -> None:
        if isinstance(frame_, p.Ping):
            self.put({"type": "pong"})
        elif isinstance(frame_, p.Subscribe):
            await self._subscribe(frame_)
        elif isinstance(frame_, p.Unsubscribe):
            await self._unsubscribe(frame_.collaborationId)
        elif isinstance(frame_, p.Presence):
            await self._presence(frame_)
        elif isinstance(frame_, p.RefreshToken):
            await self._refresh(frame_.token)
        else:
            raise InvalidRequest("Already authenticated; use refresh_token for a new token.")

    # -- frames out

    def put(self, body: dict[str, Any]) -> None:
        self.outbox.put(frame(body))

    def _error(self, exc: TandemError, collaboration_id: str | None = None) -> None:
        body: dict[str, Any] = {"type": "error", "code": exc.code, "message": exc.message}
        if collaboration_id is not None:
            body["collaborationId"] = collaboration_id
        if exc.details:
            body["details"] = exc.details
        self.put(body)

    # -- subscriptions

    async def _subscribe(self, request: p.Subscribe) -> None:
        cid = request.collaborationId
        if not await self.outbox.snapshot_written(SNAPSHOT_WAIT):  # one snapshot queued at a time
            if not self.outbox.closed:
                self._too_slow()
            return
        self._drop(cid)
        if len(self.subs) >= MAX_SUBSCRIPTIONS:
            raise InvalidRequest(f"At most {MAX_SUBSCRIPTIONS} subscriptions per connection.")
        sub = self.realtime.hub.register(cid, self.user_id, self.outbox, self._ended)
        self.subs[cid] = sub
        try:
            await self._go_live(sub, request)
        except BaseException:
            self._drop(cid, sub)
            raise

    async def _go_live(self, sub: Subscription, request: p.Subscribe) -> None:
        """By the stream seq (a replay, else a snapshot), or, for older clients that send
        `sinceVersion`, a catch-up from the hub's history (else a snapshot)."""
        if request.sinceSeq is not None or request.sinceVersion is None:
            await self._by_seq(sub, request.sinceSeq)
        elif not await self._catch_up(sub, request.sinceVersion, request.sinceMessageId):
            await self._by_seq(sub, None)

    async def _head(self, sub: Subscription) -> tuple[dict[str, Any], int, tuple[int, str | None], ev.Frame]:
        """The document, its seq, the caller's position in it and who is here; not_found (the
        subscription dropped) when the caller is not a member."""
        store, cid = self.realtime.store, sub.collaboration_id
        present = ev.presence_event(cid, await store.presence.for_collaboration(cid)).frame
        doc, seq = await store.stream.head(cid)  # the version and the seq, from one read
        position = ev.member_position(doc, self.user_id) if doc is not None else None
        if doc is None or position is None:
            self._drop(cid, sub)
            raise NotFound("No such collaboration.", {"collaborationId": cid})
        return doc, seq, position, present

    async def _catch_up(self, sub: Subscription, since_version: int, since_message: str | None) -> bool:
        """sinceVersion (older clients): go live with the events and messages after it from the
        hub's in-memory history. False when it cannot (not held, too many, across a removal of
        the caller, more than the connection may queue): the caller sends a snapshot."""
        store, hub, cid = self.realtime.store, self.realtime.hub, sub.collaboration_id
        # The messages before the collaboration: a removal committed between the two reads is then
        # in the document (not_found), never a message sent after it in what goes out.
        messages: list[dict[str, Any]] = []
        if since_message is None:  # the client holds no messages: all of them, if not too many
            messages = await store.messages.page(cid, after="", limit=CATCH_UP_MESSAGES + 1)
            if len(messages) > CATCH_UP_MESSAGES:
                return False
        doc, seq, position, present = await self._head(sub)
        version = doc["version"]
        if sub.ended:
            return True  # a resync ended it meanwhile; the client was told
        # From here to activate nothing is awaited: what the hub holds cannot change in between.
        missed = hub.missed(cid, since_version, version)
        if missed is None or any(e.members is not None and e.members.removes(self.user_id) for e in missed):
            return False  # the hub no longer holds them all, or they span a removal
        if since_message is None:
            tail, sent = [ev.message_created(m).frame for m in messages], [m["_id"] for m in messages]
        else:
            held = hub.missed_messages(cid, since_message)  # in commit order, exactly those after it
            if held is None or len(held) > CATCH_UP_MESSAGES or hub.removed_later(cid, version, self.user_id):
                return False  # not held (or too many): a snapshot; removed since the read: not_found
            tail, sent = [e.frame for e in held], None
        if sum(e.size for e in missed) + sum(f.size for f in tail) > self.outbox.room:
            return False  # more than the connection may queue: a snapshot, which may be larger
        subscribed = frame({"type": "subscribed", "collaborationId": cid, "version": version, "seq": seq})
        hub.activate(
            sub,
            GoLive(
                version=version,
                position=position,
                head=[subscribed],
                missed=missed,
                since=since_version,
                tail=tail,
                presence=present,
                sent_messages=sent,
            ),
        )
        return True

    async def _by_seq(self, sub: Subscription, since: int | None) -> None:
        """Go live by the stream seq: replay the events after `since` from MongoDB, or a snapshot."""
        hub, cid = self.realtime.hub, sub.collaboration_id
        doc, seq, position, present = await self._head(sub)
        version = doc["version"]
        missed, how = None, "snapshot"
        if since is not None and since <= seq and seq - since <= self.settings.resume_max_events:
            missed, how = await self._replay(cid, since, seq)
        if missed is None:
            await self._snapshot(sub, doc, seq, position, present)
            return
        if sub.ended:
            return  # a resync ended it meanwhile; the client was told
        self.realtime.metrics.ws_resumes.labels(how).inc()
        subscribed = frame({"type": "subscribed", "collaborationId": cid, "version": version, "seq": seq})
        hub.activate(
            sub,
            GoLive(
                version=version,
                position=position,
                head=[subscribed],
                missed=missed,
                since=0,
                presence=present,
                seq=since,
            ),
        )

    async def _snapshot(
        self, sub: Subscription, doc: dict[str, Any], seq: int, position: tuple[int, str | None], present: ev.Frame
    ) -> None:
        """Go live with a snapshot of `doc` (at `seq`) and its latest messages."""
        hub, cid, version = self.realtime.hub, sub.collaboration_id, doc["version"]
        # read after the document: those at or below its seq, none after a removal
        messages = await self.realtime.store.stream.latest_messages(cid, seq, SNAPSHOT_MESSAGES)
        if sub.ended:
            return  # a resync ended it meanwhile; the client was told
        self.realtime.metrics.ws_resumes.labels("snapshot").inc()
        subscribed = frame({"type": "subscribed", "collaborationId": cid, "version": version, "seq": seq})
        snapshot = frame(
            {
                "type": "snapshot",
                "collaborationId": cid,
                "version": version,
                "seq": seq,
                "collaboration": public(doc),
                "messages": [public(m) for m in hub.in_stream_order(cid, messages)],
            }
        )
        hub.activate(
            sub,
            GoLive(
                version=version,
                position=position,
                head=[subscribed],
                snapshot=snapshot,
                presence=present,
                sent_messages=[m["_id"] for m in messages if "seq" not in m],
                seq=seq,
            ),
        )

    async def _replay(self, cid: str, since: int, upto: int) -> tuple[list[ev.Event] | None, str]:
        """The events with seq in (`since`, `upto`]: from the hub's history when it holds every one
        of them (the same bytes), else from their stored form (backend/realtime/replay.py, one
        read shared by the resumes of the same range); None (a snapshot instead) when one is not
        stored, one removes the caller, or together they are more than the connection may queue.
        With where they came from."""
        held = self.realtime.hub.history.by_seq(cid, since, upto)  # this process's history, when it holds them all
        how = "history" if held is not None else "database"
        events = held if held is not None else await self.realtime.replays.read(cid, since, upto)
        if (
            events is None
            or sum(e.size for e in events) > self.outbox.room
            or any(e.members is not None and e.members.removes(self.user_id) for e in events)
        ):
            return None, how
        return events, how

    async def _unsubscribe(self, cid: str) -> None:
        self._drop(cid)
        if cid in self.present:
            self.present.discard(cid)
            await self.realtime.presence.leave(cid, self.id)
        self.put({"type": "unsubscribed", "collaborationId": cid})

    def _drop(self, cid: str, sub: Subscription | None = None) -> None:
        current = self.subs.get(cid)
        if current is not None and (sub is None or current is sub):
            del self.subs[cid]
            self.realtime.hub.unregister(current)

    def _ended(self, sub: Subscription, reason: str) -> None:
        """The hub ended a subscription (membership removed, resync)."""
        if self.subs.get(sub.collaboration_id) is sub:
            del self.subs[sub.collaboration_id]
        if sub.collaboration_id in self.present:
            self.present.discard(sub.collaboration_id)
            chore = asyncio.get_running_loop().create_task(self.realtime.presence.leave(sub.collaboration_id, self.id))
            self._chores.add(chore)
            chore.add_done_callback(self._chores.discard)

    # -- presence and tokens

    async def _presence(self, request: p.Presence) -> None:
        cid = request.collaborationId
        sub = self.subs.get(cid)
        if sub is None or sub.pending:
            raise NotFound("Subscribe to the collaboration first.", {"collaborationId": cid})
        size = len(encode(request.state))
        if size > PRESENCE_STATE_BYTES:
            raise PayloadTooLarge(
                f"A presence state may hold at most {PRESENCE_STATE_BYTES} bytes.",
                {"size": size, "limit": PRESENCE_STATE_BYTES},
            )
        was_present = cid in self.present
        self.present.add(cid)  # before the write: a removal handled meanwhile (_ended) must leave too
        try:
            await self.realtime.presence.join(cid, self.id, self.user_id, request.state)  # validation_failed
        except BaseException:
            if not was_present:
                self.present.discard(cid)
            raise
        if self.subs.get(cid) is not sub or sub.ended:  # the subscription ended during the write: undo it
            self.present.discard(cid)
            await self.realtime.presence.leave(cid, self.id)

    async def _refresh(self, token: str) -> None:
        principal = await self.realtime.verifier.verify(token)  # Unauthenticated: an error frame, no close
        if principal.id != self.user_id:
            self.close_soon(UNAUTHENTICATED, "token for another user")
            return
        self._arm_expiry(principal.expires_at)
        self.put({"type": "token_refreshed", "expiresAt": principal.expires_at})


class _Close(Exception):
    def __init__(self, code: int, reason: str):
        super().__init__(reason)
        self.code, self.reason = code, reason
