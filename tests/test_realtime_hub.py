"""The hub and the events, without a server: outboxes, subscriptions, history, membership,
and what the reader makes of MongoDB's changes."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timezone
from typing import Any

import pytest

from backend.domain.diff import build_update, set_whole
from backend.realtime import events as ev
from backend.realtime.changes import ChangeReader
from backend.realtime.history import cost
from backend.realtime.hub import HOLD_BYTES, GoLive, History, Hub, Outbox
from backend.realtime.lane import Lane
from backend.realtime.outbox import QueueBudget
from tests.support import ACCOUNTS, EDITOR, OWNER, VIEWER, sign_in, team, user


class Socket:
    """A send() that completes at once while `open`, and waits while it is not."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.objects: list[dict] = []  # the frames themselves, to check they are the same object
        self.writable = asyncio.Event()
        self.writable.set()
        self.broken = False

    async def send(self, frame: dict) -> None:
        await self.writable.wait()
        if self.broken:
            raise OSError("gone")
        self.sent.append(frame["text"])
        self.objects.append(frame)


def frames(n: int, start: int = 0) -> list[dict]:
    return [ev.encode_frame({"n": i}) for i in range(start, start + n)]


def texts(socket: Socket) -> list[int]:
    return [json.loads(t)["n"] for t in socket.sent]


# -- Outbox --------------------------------------------------------------------------------------


async def test_an_outbox_writes_at_once_while_the_socket_takes_it():
    socket = Socket()
    out = Outbox(socket.send, 4, lambda: None)
    for frame in frames(3):
        out.put(frame)
    assert texts(socket) == [0, 1, 2]  # no task, no await: written during put()
    assert out.backlog == 0 and out._writer is None


async def test_an_outbox_queues_behind_a_writer_then_writes_directly_again():
    socket = Socket()
    out = Outbox(socket.send, 4, lambda: None)
    socket.writable.clear()
    for frame in frames(4):
        out.put(frame)
    assert socket.sent == [] and out.backlog == 3
    socket.writable.set()
    assert await out.flush(1)
    assert texts(socket) == [0, 1, 2, 3] and out._writer is None
    out.put(frames(1, 4)[0])
    assert texts(socket) == [0, 1, 2, 3, 4]


async def test_an_outbox_overflows_once_and_writes_nothing_more():
    socket, overflows = Socket(), []
    out = Outbox(socket.send, 2, lambda: overflows.append(1))
    socket.writable.clear()
    for frame in frames(5):
        out.put(frame)
    assert overflows == [1] and out.closed and out.overflowed and out.backlog == 0
    socket.writable.set()
    await asyncio.sleep(0.01)
    assert socket.sent == []  # the writer was cancelled before it wrote


async def test_an_outbox_whose_socket_is_gone_closes():
    socket = Socket()
    socket.broken = True
    out = Outbox(socket.send, 2, lambda: None)
    out.put(frames(1)[0])
    assert out.closed


def sized(n: int) -> dict:
    """A frame of exactly `n` bytes."""
    frame = ev.encode_frame({"p": ""})
    return ev.encode_frame({"p": "x" * (n - frame.size)})


async def test_an_outbox_overflows_past_its_byte_budget_as_well_as_its_frame_count():
    socket, overflows = Socket(), []
    out = Outbox(socket.send, 100, lambda: overflows.append(1), limit_bytes=100)
    socket.writable.clear()
    out.put(sized(60))  # the writer waits with it: counted
    out.put(sized(40))
    assert out.bytes == 100 and overflows == []
    out.put(sized(10))
    assert overflows == [1] and out.closed and out.overflowed and out.bytes == 0


async def test_an_outboxs_bytes_go_back_down_as_its_frames_are_written():
    socket = Socket()
    out = Outbox(socket.send, 100, lambda: None, limit_bytes=1000)
    socket.writable.clear()
    for size in (100, 200, 300):
        out.put(sized(size))
    assert out.bytes == 600 and out.room == 400
    socket.writable.set()
    assert await out.flush(1)
    assert out.bytes == 0 and len(socket.sent) == 3
    out.put(sized(5000))  # nothing queued and the socket takes it: written at once, never counted
    assert out.bytes == 0 and len(socket.sent) == 4


async def test_a_snapshot_larger_than_the_byte_budget_is_queued_beside_it_one_at_a_time():
    socket, overflows = Socket(), []
    out = Outbox(socket.send, 100, lambda: overflows.append(1), limit_bytes=100)
    socket.writable.clear()
    out.put(sized(50))
    out.put_snapshot(sized(1000))
    out.put(sized(50))  # the budget is the snapshot's aside
    assert overflows == [] and out.bytes == 100
    assert not await out.snapshot_written(0.05)  # the socket takes nothing: not written in time
    socket.writable.set()
    assert await out.snapshot_written(1)
    assert [len(t) for t in socket.sent][:2] == [50, 1000]
    assert await out.flush(1) and out.bytes == 0
    socket.writable.clear()
    out.put(sized(10))
    out.put_snapshot(sized(1000))
    out.put_snapshot(sized(1000))  # a second one before the first is written: the client is too slow
    assert overflows == [1] and out.closed
    assert not await out.snapshot_written(1)


async def test_outboxes_share_a_process_wide_budget_and_the_largest_queue_is_closed_past_it():
    budget, closed = QueueBudget(1000), []
    sockets = [Socket() for _ in range(6)]
    outs = [
        Outbox(s.send, 1000, lambda i=i: closed.append(i), limit_bytes=600, budget=budget)
        for i, s in enumerate(sockets)
    ]
    for socket in sockets[:5]:  # five peers stop reading; the sixth reads
        socket.writable.clear()
    for _ in range(4):
        outs[0].put(sized(100))
    for out in outs[1:5]:
        out.put(sized(100))
    for _ in range(50):
        outs[5].put(sized(100))  # written at once: nothing queued, nothing counted
    assert budget.bytes == 800 and closed == [] and len(sockets[5].sent) == 50
    outs[1].put(sized(150))
    outs[1].put(sized(100))  # 1050 queued in the process: the largest queue (400, outbox 0) goes
    assert closed == [0] and outs[0].closed and outs[0].overflowed and budget.bytes == 650
    outs[2].put_snapshot(sized(500))  # a snapshot counts too: 1150, outbox 2 now queues the most
    assert closed == [0, 2] and budget.bytes == 550
    for _round in range(20):  # the rest keep queueing: never more than the budget, the reader unaffected
        for out in outs[1:5]:
            out.put(sized(90))
            assert budget.bytes <= 1000
            assert budget.bytes == sum(o.bytes + (o._snapshot.size if o._snapshot else 0) for o in outs)
        outs[5].put(sized(100))
    assert sorted(closed) == [0, 1, 2, 3, 4] and not outs[5].closed and len(sockets[5].sent) == 70
    assert budget.bytes == 0


async def test_what_an_outbox_has_written_or_dropped_leaves_the_process_wide_budget():
    budget = QueueBudget(10_000)
    socket = Socket()
    out = Outbox(socket.send, 100, lambda: None, limit_bytes=1000, budget=budget)
    socket.writable.clear()
    for size in (100, 200):
        out.put(sized(size))
    out.put_snapshot(sized(3000))
    assert budget.bytes == 3300
    socket.writable.set()
    assert await out.flush(1) and budget.bytes == 0 and len(socket.sent) == 3
    socket.writable.clear()
    out.put(sized(100))
    out.put(sized(100))
    assert budget.bytes == 200
    out.close()  # the connection ends: what it queued is dropped
    assert budget.bytes == 0


# -- Hub -----------------------------------------------------------------------------------------


class Peer:
    def __init__(self, hub: Hub, cid: str, user_id: str, limit: int = 100, lane: bool = False):
        self.socket = Socket()
        self.wired: list[bytes] = []  # what went through the lane: the socket's send, as bytes
        self.spilled: list[bytes] = []  # what the socket did not take, handed to the transport
        self.takes: int | None = None  # bytes the socket takes per send (None: all)
        self.lane = Lane(self._send, lambda data: self.spilled.append(bytes(data))) if lane else None
        self.outbox = Outbox(self.socket.send, limit, lambda: None, lane=self.lane)
        self.ended: list[str] = []
        self.sub = hub.register(cid, user_id, self.outbox, lambda sub, why: self.ended.append(why))

    def _send(self, data: bytes) -> int:
        n = len(data) if self.takes is None else min(self.takes, len(data))
        self.wired.append(data[:n])
        return n

    def received(self) -> list[dict]:
        return [json.loads(t) for t in self.socket.sent]


def update(cid: str, version: int, updated: dict | None = None, removed: list | None = None) -> ev.Event:
    fields = {"version": version, **(updated or {})}
    return ev.collaboration_updated(cid, fields, removed or [], {"name": "x", "actor": {"type": "user"}, "at": None})


def live(hub: Hub, peer: Peer, version: int, index: int = 0, role: str = "editor", **kw) -> None:
    kw.setdefault("head", [])
    hub.activate(peer.sub, GoLive(version=version, position=(index, role), **kw))


def open_peers(hub: Hub, n: int, sockets: dict[int, Any] | None = None) -> list[Peer]:
    """`n` live subscriptions of "c" whose lanes are open, as the protocol opens one once it has
    written to the connection itself; `sockets`: a peer's own socket send (e.g. one that fails)."""
    peers = [Peer(hub, "c", f"u{i}", lane=True) for i in range(n)]
    for i, peer in enumerate(peers):
        if sockets and i in sockets:
            peer.lane._to = sockets[i]  # before `open`, which sets `write` to it
        live(hub, peer, 1)
        peer.lane.open()
    return peers


async def test_each_event_is_encoded_once_and_the_same_frame_goes_to_everyone():
    hub = Hub(history=10)
    peers = [Peer(hub, "c", f"u{i}") for i in range(3)]
    for peer in peers:
        live(hub, peer, 1)
    event = update("c", 2, {"title": "t"})
    hub.publish(event)
    assert all(p.socket.objects == [event.frame] for p in peers)
    assert len({id(p.socket.objects[0]) for p in peers}) == 1


def numbers_in(data: bytes) -> list[int]:
    """The versions in some frames' bytes (unmasked text frames, as the lane writes them)."""
    out = []
    while data:
        length = data[1] & 0x7F
        start = 2
        if length == 126:
            length, start = int.from_bytes(data[2:4], "big"), 4
        elif length == 127:
            length, start = int.from_bytes(data[2:10], "big"), 10
        out.append(json.loads(data[start : start + length])["version"])
        data = data[start + length :]
    return out


def numbers(peer: Peer) -> list[int]:
    """The versions a peer got, through its lane (pre-framed bytes) and its outbox, in that order."""
    through_lane = [n for b in peer.wired for n in numbers_in(b)]
    return through_lane + [f.get("version") for f in peer.received()]


async def test_the_hub_writes_each_delivery_through_an_open_lane_as_the_same_pre_framed_bytes():
    hub = Hub(history=10)
    peers = open_peers(hub, 3)
    event = update("c", 2, {"title": "t"})
    hub.publish(event)
    assert all(p.wired == [] and p.lane.held == ev.wire(event.frame) for p in peers)  # held until...
    await asyncio.sleep(0)  # ...the loop's next turn: the events at hand are published by then
    assert all(p.wired == [ev.wire(event.frame)] and p.socket.sent == [] and p.lane.held is None for p in peers)
    assert len({id(p.wired[0]) for p in peers}) == 1  # one bytes object for everyone
    hub.publish(update("c", 2))  # a repeat is dropped on this path too
    peers[1].lane.shut()  # e.g. its transport paused writing
    hub.publish(update("c", 3))
    await asyncio.sleep(0)
    assert [numbers(p) for p in peers] == [[2, 3], [2, 3], [2, 3]]
    assert peers[1].socket.sent and not peers[0].socket.sent  # the shut one got it through its outbox


async def test_events_that_reach_a_connection_in_one_turn_of_the_loop_go_out_in_one_send():
    hub = Hub(history=10)
    peers = open_peers(hub, 2)
    events = [update("c", v, {"title": f"t{v}"}) for v in (2, 3, 4)]
    for event in events:
        hub.publish(event)
    assert all(p.wired == [] for p in peers)
    await asyncio.sleep(0)
    together = b"".join(ev.wire(e.frame) for e in events)
    assert all(p.wired == [together] for p in peers)  # one send() each, the frames in order
    assert [numbers_in(p.wired[0]) for p in peers] == [[2, 3, 4], [2, 3, 4]]
    hub.publish(update("c", 5))
    await asyncio.sleep(0)
    assert all(len(p.wired) == 2 and numbers_in(p.wired[1]) == [5] for p in peers)  # the next turn: its own send


async def test_a_lane_holds_at_most_hold_bytes_or_one_frame():
    hub = Hub(history=100)
    peer = Peer(hub, "c", "u", lane=True)
    live(hub, peer, 1)
    peer.lane.open()
    pad = "x" * (HOLD_BYTES // 3)
    for v in (2, 3, 4):  # the third would take what is held past HOLD_BYTES: the first two go out first
        hub.publish(update("c", v, {"title": pad}))
    assert [numbers_in(b) for b in peer.wired] == [[2, 3]] and numbers_in(peer.lane.held) == [4]
    hub.publish(update("c", 5, {"title": "x" * (2 * HOLD_BYTES)}))  # larger than the bound: held alone
    assert [numbers_in(b) for b in peer.wired] == [[2, 3], [4]] and numbers_in(peer.lane.held) == [5]
    await asyncio.sleep(0)
    assert [numbers_in(b) for b in peer.wired] == [[2, 3], [4], [5]] and peer.lane.held is None


async def test_held_frames_go_out_before_anything_else_the_connection_sends():
    hub = Hub(history=10)
    peer = Peer(hub, "c", "u", lane=True)
    order: list[str] = []
    send = peer._send

    def lane_send(data: bytes) -> int:
        order.extend(f"v{n}" for n in numbers_in(data))
        return send(data)

    peer.lane._to = lane_send  # the socket the lane writes to, logged
    socket_send = peer.socket.send

    async def outbox_send(frame: dict) -> None:
        order.append("outbox")
        await socket_send(frame)

    peer.outbox._send = outbox_send  # and what the outbox writes
    live(hub, peer, 1)
    peer.lane.open()
    hub.publish(update("c", 2))
    hub.publish(update("c", 3))
    # the outbox writes next (a reply, a membership change, a close frame): what the lane holds goes first
    peer.outbox.put(ev.encode_frame({"type": "pong"}))
    assert order == ["v2", "v3", "outbox"] and peer.received() == [{"type": "pong"}]
    hub.publish(update("c", 4))
    peer.lane.shut()  # the protocol shuts the lane (paused writing, a close frame): what it holds goes first
    assert order[-1] == "v4" and peer.lane.write is None and peer.lane.held is None
    hub.publish(update("c", 5))  # through the outbox now
    await asyncio.sleep(0)
    assert numbers(peer) == [2, 3, 4, None, 5]


async def test_a_lost_connection_drops_what_its_lane_holds_and_the_others_still_get_theirs():
    hub = Hub(history=10)
    peers = open_peers(hub, 2)
    hub.publish(update("c", 2))
    peers[0].lane.drop()  # connection_lost: nothing more goes to that socket
    await asyncio.sleep(0)
    assert peers[0].wired == [] and peers[0].lane.write is None
    assert numbers(peers[1]) == [2]


@pytest.mark.parametrize("end", ["shut", "busy", "drop"])
def test_a_lane_writes_what_it_holds_before_it_shuts_or_goes_busy_and_drops_it_when_the_connection_is_lost(end):
    sent: list[bytes] = []
    lane = Lane(lambda data: sent.append(bytes(data)) or len(data), lambda data: None)
    lane.open()
    assert lane.hold(b"one") and not lane.hold(b"two")  # the first hold says the lane needs a release
    assert sent == [] and lane.held == [b"one", b"two"]
    if end == "shut":
        lane.shut()  # e.g. the protocol: writing paused, a close frame on its way
    elif end == "busy":
        lane.busy(True)  # the outbox is about to queue a frame behind what the lane holds
    else:
        lane.drop()  # the connection is lost: nowhere to write
    assert sent == ([] if end == "drop" else [b"onetwo"]), end  # what it held, first and in one send
    assert lane.held is None and lane.write is None


async def test_a_lane_that_fails_otherwise_on_release_is_closed_and_the_others_are_still_written():
    hub = Hub(history=10)

    def broken(data: bytes) -> int:
        raise RuntimeError("not an OSError")

    peers = open_peers(hub, 3, {1: broken})
    hub.publish(update("c", 2))
    await asyncio.sleep(0)
    assert numbers(peers[0]) == [2] and numbers(peers[2]) == [2]  # the others, written
    assert peers[1].outbox.overflowed and peers[1].lane.write is None  # closed as an overflow: it resumes
    hub.publish(update("c", 3))
    await asyncio.sleep(0)
    assert numbers(peers[0]) == [2, 3] and numbers(peers[2]) == [2, 3] and peers[1].lane.held is None


async def test_a_lane_whose_socket_fails_on_release_spills_and_the_hub_goes_on():
    hub = Hub(history=10)

    def broken(data: bytes) -> int:
        raise OSError("reset")

    peers = open_peers(hub, 2, {0: broken})  # its socket, reset
    hub.publish(update("c", 2))
    hub.publish(update("c", 3))
    await asyncio.sleep(0)
    assert [numbers_in(b) for b in peers[0].spilled] == [[2, 3]]  # handed to the transport, which reports the loss
    assert peers[0].lane.write is None
    assert numbers(peers[1]) == [2, 3]


async def test_what_the_socket_does_not_take_goes_to_the_transport_and_the_lane_shuts():
    hub = Hub(history=10)
    peer = Peer(hub, "c", "u", lane=True)
    live(hub, peer, 1)
    peer.lane.open()
    peer.takes = 5
    event = update("c", 2)
    hub.publish(event)
    await asyncio.sleep(0)
    data = ev.wire(event.frame)
    assert peer.wired == [data[:5]] and peer.spilled == [data[5:]]  # the rest, to the transport's buffer
    assert peer.lane.write is None  # until the protocol sees that buffer empty again
    hub.publish(update("c", 3))
    assert [f["version"] for f in peer.received()] == [3]  # the outbox's way: behind the rest


async def test_while_an_outbox_queues_the_hub_queues_behind_it_and_uses_the_lane_again_after():
    hub = Hub(history=10)
    peer = Peer(hub, "c", "u", lane=True)
    live(hub, peer, 1)
    peer.lane.open()
    peer.socket.writable.clear()
    peer.outbox.put(ev.encode_frame({"type": "pong"}))  # waits for the socket: a writer task holds it
    assert peer.lane.write is None
    hub.publish(update("c", 2))
    hub.publish(update("c", 3))
    assert peer.wired == [] and peer.outbox.backlog == 2  # behind the pong, not ahead of it
    peer.socket.writable.set()
    assert await peer.outbox.flush(1)
    assert [f.get("version") for f in peer.received()] == [None, 2, 3]
    assert peer.lane.write is not None
    hub.publish(update("c", 4))
    await asyncio.sleep(0)
    assert numbers(peer)[0] == 4 and len(peer.socket.sent) == 3
    peer.outbox.close()  # the connection ends: the lane shuts for good
    hub.publish(update("c", 5))
    assert peer.lane.write is None and len(peer.wired) == 1


async def test_a_pending_subscription_buffers_and_drops_what_its_snapshot_holds():
    hub = Hub(history=10)
    peer = Peer(hub, "c", "u")
    for v in (4, 5, 6):
        hub.publish(update("c", v))
    hub.publish(ev.message_created({"_id": "msg_1", "collaborationId": "c", "text": "seen"}))
    hub.publish(ev.message_created({"_id": "msg_2", "collaborationId": "c", "text": "new"}))
    live(hub, peer, 5, head=[ev.encode_frame({"type": "subscribed"})], sent_messages=["msg_1"])
    got = peer.received()
    assert [f["type"] for f in got] == ["subscribed", "collaboration_updated", "message_created"]
    assert got[1]["version"] == 6 and got[2]["message"]["id"] == "msg_2"
    hub.publish(update("c", 6))  # a repeat is dropped
    hub.publish(update("c", 7))
    assert [f.get("version") for f in peer.received()[3:]] == [7]


def message(cid: str, mid: str) -> ev.Event:
    return ev.message_created({"_id": mid, "collaborationId": cid, "text": mid})


async def test_a_message_the_snapshot_read_is_not_sent_again_when_its_event_comes_late():
    hub = Hub(history=10)
    hub.publish(message("c", "msg_1"))
    peer = Peer(hub, "c", "u")
    live(hub, peer, 1, sent_messages=["msg_1", "msg_2", "msg_3"])  # 2 and 3 committed, not yet through the stream
    hub.publish(message("c", "msg_2"))
    hub.publish(message("c", "msg_4"))
    assert [f["message"]["id"] for f in peer.received()] == ["msg_4"]
    assert peer.sub.sent == {"msg_3"}  # msg_1 was published before: it cannot come again
    hub.idle()
    hub.idle()  # an empty batch that began after activate: whatever the read saw has been published
    assert peer.sub.sent is None and not hub._unsure


async def test_a_snapshot_lists_a_message_not_yet_through_the_stream_last_so_resuming_repeats_nothing():
    hub = Hub(history=10)
    for mid in ("msg_2", "msg_4", "msg_3"):  # published, in commit order
        hub.publish(message("c", mid))
    read = [{"_id": mid} for mid in ("msg_1", "msg_2", "msg_3", "msg_4", "msg_5")]  # the store's, by id
    # msg_1 left the history long ago (older); msg_5 is committed but the reader has not got to it
    assert [m["_id"] for m in hub.in_stream_order("c", read)] == ["msg_1", "msg_2", "msg_4", "msg_3", "msg_5"]
    peer = Peer(hub, "c", "u")
    live(hub, peer, 1, sent_messages=[m["_id"] for m in read])
    hub.publish(message("c", "msg_5"))  # now it comes: already in the snapshot, not sent again
    assert peer.received() == []
    assert [e.message_id for e in hub.missed_messages("c", "msg_5")] == []  # resuming after the last listed
    assert [m["_id"] for m in Hub(history=10).in_stream_order("c", read[:2])] == ["msg_1", "msg_2"]


async def test_catch_up_after_a_message_id_follows_commit_order_not_id_order():
    hub = Hub(history=10)
    for mid in ("msg_5", "msg_3", "msg_7", "msg_4"):  # ids made before the insert: commit order differs
        hub.publish(message("c", mid))
    assert [e.message_id for e in hub.missed_messages("c", "msg_7")] == ["msg_4"]
    assert [e.message_id for e in hub.missed_messages("c", "msg_5")] == ["msg_3", "msg_7", "msg_4"]
    assert hub.missed_messages("c", "msg_1") is None and hub.missed_messages("d", "msg_5") is None
    peer = Peer(hub, "c", "u")
    hub.publish(message("c", "msg_6"))  # buffered while reading: it is in the history's tail as well
    tail = hub.missed_messages("c", "msg_7")
    live(hub, peer, 1, tail=[e.frame for e in tail], sent_messages=None)
    hub.publish(message("c", "msg_8"))
    assert [f["message"]["id"] for f in peer.received()] == ["msg_4", "msg_6", "msg_8"]


async def test_catch_up_sends_the_missed_events_then_live_ones():
    hub = Hub(history=10)
    for v in range(2, 8):
        hub.publish(update("c", v))
    peer = Peer(hub, "c", "u")
    hub.publish(update("c", 8))  # buffered while "reading the snapshot"
    missed = hub.missed("c", 4, 9)
    assert [e.version for e in missed] == [5, 6, 7, 8]
    live(hub, peer, 9, missed=missed, since=4)
    hub.publish(update("c", 9))  # was on its way when the snapshot (at 9) was read
    assert [f["version"] for f in peer.received()] == [5, 6, 7, 8, 9]


async def test_owner_only_events_follow_role_changes():
    hub = Hub(history=10)
    owner, editor = Peer(hub, "c", "o"), Peer(hub, "c", "e")
    live(hub, owner, 1, index=0, role="owner")
    live(hub, editor, 1, index=1, role="editor")
    approval = {"_id": "apr_1", "collaborationId": "c", "status": "pending"}
    hub.publish(ev.approval_event(ev.APPROVAL_CREATED, approval))
    hub.publish(update("c", 2, {"members.1.role": "owner"}))
    hub.publish(ev.approval_event(ev.APPROVAL_UPDATED, approval))
    assert [f["type"] for f in owner.received()] == ["approval_created", "collaboration_updated", "approval_updated"]
    assert [f["type"] for f in editor.received()] == ["collaboration_updated", "approval_updated"]
    assert editor.sub.role == "owner"


async def test_a_removed_member_gets_membership_removed_and_nothing_more():
    hub = Hub(history=10)
    stays, goes = Peer(hub, "c", "a"), Peer(hub, "c", "b")
    live(hub, stays, 1, index=0)
    live(hub, goes, 1, index=1)
    removal = update("c", 2, {"memberIds": ["a"], "members": [{"userId": "a", "role": "owner"}]})
    hub.publish(removal)
    hub.publish(update("c", 3, {"title": "secret"}))
    assert goes.received() == [{"type": "membership_removed", "collaborationId": "c"}]
    assert goes.ended == ["membership_removed"] and goes.sub.ended and hub.subscribers("c") == 1
    assert [f["version"] for f in stays.received()] == [2, 3]


async def test_a_member_who_moves_up_the_array_is_still_tracked():
    hub = Hub(history=10)
    peer = Peer(hub, "c", "c-user")
    live(hub, peer, 1, index=2, role="viewer")
    members = [{"userId": "a", "role": "owner"}, {"userId": "c-user", "role": "viewer"}]
    hub.publish(update("c", 2, {"memberIds": ["a", "c-user"], "members": members}))
    assert (peer.sub.index, peer.sub.role) == (1, "viewer")
    hub.publish(update("c", 3, {"members.1.role": "owner"}))
    assert peer.sub.role == "owner" and not peer.ended


async def test_resync_all_ends_every_subscription_and_forgets_history():
    hub = Hub(history=10)
    peers = [Peer(hub, cid, "u") for cid in ("c1", "c2")]
    for peer in peers:
        live(hub, peer, 1)
    hub.publish(update("c1", 2))
    assert hub.resync_all("history_lost") == 2
    assert [p.received()[-1] for p in peers] == [
        {"type": "resync_required", "collaborationId": cid, "reason": "history_lost"} for cid in ("c1", "c2")
    ]
    assert hub.topics == 0 and hub.missed("c1", 1, 2) is None


# -- History -------------------------------------------------------------------------------------


def test_history_is_contiguous_and_bounded_per_collaboration():
    history = History(per_collaboration=3)
    for v in range(1, 6):
        history.add(update("c", v))
    assert [e.version for e in history.since("c", 2, 5)] == [3, 4, 5]
    assert history.since("c", 1, 5) is None  # 2 was dropped
    assert history.since("c", 5, 5) == [] and history.since("c", 7, 5) is None
    assert history.since("c", 5, 8) == []  # 6..8 are on their way
    history.add(update("c", 9))  # a gap: start again
    assert history.since("c", 8, 9)[0].version == 9 and history.since("c", 4, 9) is None


def test_history_keeps_within_its_byte_budget_dropping_the_least_recent_first():
    one = cost(update("a", 1))  # its payload and its objects
    history = History(per_collaboration=100, budget_bytes=one * 5)
    for v in range(1, 4):
        history.add(update("a", v))
    for v in range(1, 4):
        history.add(update("b", v))
    assert history.bytes <= one * 5 + 10
    assert history.since("a", 0, 3) is None  # a's oldest went first: a was least recently added to
    assert [e.version for e in history.since("a", 1, 3)] == [2, 3]
    assert [e.version for e in history.since("b", 0, 3)] == [1, 2, 3]


def test_an_events_size_is_its_frame_in_bytes_not_characters():
    event = ev.message_created({"_id": "msg_1", "collaborationId": "c", "text": "日本語 ✓ " * 10})
    assert event.size == len(event.frame["text"].encode()) > len(event.frame["text"])


def test_history_keeps_messages_bounded_and_within_the_byte_budget():
    history = History(per_collaboration=3)
    for i in range(5):
        history.add(message("c", f"msg_{i}"))
    assert history.messages_after("c", "msg_1") is None  # dropped: only the last 3 are held
    assert [e.message_id for e in history.messages_after("c", "msg_2")] == ["msg_3", "msg_4"]
    one = cost(message("a", "msg_0"))
    history = History(per_collaboration=100, budget_bytes=one * 4)
    for i in range(3):
        history.add(message("a", f"msg_{i}"))
    for i in range(3):
        history.add(message("b", f"msg_{i}"))
    assert history.bytes <= one * 4 + 10 and len(history) == 4
    assert history.messages_after("a", "msg_2") == [] and history.messages_after("a", "msg_1") is None  # a lost first
    history.forget("a")
    history.forget("b")
    assert history.bytes == 0 and len(history) == 0


# -- changes → events ----------------------------------------------------------------------------


def test_truncated_arrays_are_sent_whole_from_the_document_at_that_version():
    change = {
        "updateDescription": {
            "updatedFields": {"version": 4, "tags.0": "b"},
            "removedFields": [],
            "truncatedArrays": [{"field": "tags", "newSize": 1}],
        }
    }
    assert ev.changed_fields(change, {"version": 4, "tags": ["b"]}) == ({"version": 4, "tags": ["b"]}, [])
    assert ev.changed_fields(change, {"version": 5, "tags": ["b", "c"]}) is None  # moved on: cannot tell


def test_last_action_is_set_whole_so_the_reader_needs_no_earlier_change():
    doc = {
        "_id": "c",
        "version": 3,
        "title": "t",
        "lastAction": {"name": "updateDetails", "actor": {"type": "ai", "runId": "r"}, "at": "t1"},
    }
    last = {"name": "updateDetails", "actor": {"type": "user", "id": "u"}, "at": "t2"}
    new, update = build_update(doc, {"version": 4, "lastAction": last})
    assert update == {
        "$set": {"version": 4, "lastAction.actor.type": "user", "lastAction.actor.id": "u", "lastAction.at": "t2"},
        "$unset": {"lastAction.actor.runId": ""},
    }  # leaf by leaf
    assert set_whole(update, "lastAction", last) == {"$set": {"version": 4, "lastAction": last}}
    assert set_whole({"$set": {"lastAction.at": "t"}, "$unset": {"x": ""}}, "lastAction", last) == {
        "$set": {"lastAction": last},
        "$unset": {"x": ""},
    }
    change = {"updateDescription": {"updatedFields": {"version": 4, "lastAction": last}, "removedFields": []}}
    event = ev.collaboration_updated("c", *ev.changed_fields(change, None), last)
    assert (event.body["action"], event.body["actor"], event.body["at"]) == ("updateDetails", last["actor"], "t2")


def test_presence_lists_each_user_once_with_their_latest_state():
    t = [datetime(2026, 1, 1, 0, 0, s, tzinfo=timezone.utc) for s in range(4)]
    docs = [
        {"userId": "a", "state": {"tab": 1}, "since": t[1], "updatedAt": t[3]},
        {"userId": "a", "state": {"tab": 2}, "since": t[0], "updatedAt": t[2]},
        {"userId": "b", "state": {}, "since": t[2], "updatedAt": t[2]},
    ]
    body = ev.presence_event("c", docs).body
    assert body["members"] == [
        {"userId": "a", "state": {"tab": 1}, "since": t[0]},
        {"userId": "b", "state": {}, "since": t[2]},
    ]


def test_a_heartbeat_is_not_a_presence_change():
    beat = {"operationType": "update", "updateDescription": {"updatedFields": {"expiresAt": 1}, "removedFields": []}}
    state = {
        "operationType": "update",
        "updateDescription": {"updatedFields": {"state": {}, "expiresAt": 1}, "removedFields": []},
    }
    assert ev.presence_only_heartbeat(beat) and not ev.presence_only_heartbeat(state)


# -- the reader on the embedded store -------------------------------------------------------------


@pytest.fixture
async def runtime(runtime):
    await sign_in(runtime, *ACCOUNTS)  # as tests/support.py open_runtime does
    return runtime


async def read_into(runtime, events):
    reader = ChangeReader(runtime.store, events.append, lambda reason: events.append(reason), max_await_ms=50)
    await reader.start()
    return reader


async def settle(events, count, timeout=3.0):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while len(events) < count and loop.time() < deadline:
        await asyncio.sleep(0.01)


async def test_the_reader_names_every_action_even_when_the_document_moved_on(runtime):
    events: list = []
    reader = await read_into(runtime, events)
    try:
        cid = await team(runtime)  # versions 1..3, read as they come
        await settle(events, 3)
        engine = runtime.engine
        await engine.run("updateDetails", user(EDITOR), cid, {"title": "a"})  # no await yields between these:
        await engine.run("proposeActivity", user(OWNER), cid, {"title": "b"})  # the lookup sees version 5
        await engine.run("sendMessage", user(VIEWER), cid, {"text": "c"})
        await settle(events, 6)
    finally:
        await reader.stop()
    updates = [e for e in events if e.type == ev.COLLABORATION_UPDATED]
    assert [(e.version, e.body["action"]) for e in updates] == [
        (1, "createCollaboration"),
        (2, "addMember"),
        (3, "addMember"),
        (4, "updateDetails"),
        (5, "proposeActivity"),
    ]
    assert updates[3].body["actor"] == {"type": "user", "id": user(EDITOR).id}
    last = updates[3].body["changes"]["updatedFields"]["lastAction"]  # one value, not leaves: nothing to rebuild
    assert last["name"] == "updateDetails" and not any(
        p.startswith("lastAction.") for p in updates[3].body["changes"]["updatedFields"]
    )
    assert (
        updates[0].body["changes"]["updatedFields"]["id"] == cid
        and "_id" not in updates[0].body["changes"]["updatedFields"]
    )
    assert events[-1].type == ev.MESSAGE_CREATED and events[-1].body["message"]["text"] == "c"


async def test_a_repeated_last_action_the_stream_leaves_out_is_read_from_the_audit(runtime):
    events: list = []
    reader = await read_into(runtime, events)
    try:
        cid = await team(runtime)
        await settle(events, 3)
        at = datetime(2026, 1, 1, tzinfo=timezone.utc)
        runtime.engine.clock = lambda: at  # the same action by the same actor in the same millisecond:
        await runtime.engine.run("updateDetails", user(OWNER), cid, {"title": "a"})
        await runtime.engine.run("updateDetails", user(OWNER), cid, {"title": "b"})  # lastAction set, unchanged
        await settle(events, 5)
    finally:
        await reader.stop()
    first, second = [e for e in events if e.type == ev.COLLABORATION_UPDATED][3:]
    assert (second.version, second.body["action"], second.body["at"]) == (5, "updateDetails", at)
    # as the write set it, and as a replay of the stored changes sends it
    assert (
        second.body["changes"]["updatedFields"]["lastAction"]
        == first.body["changes"]["updatedFields"]["lastAction"]
        == {"name": "updateDetails", "actor": {"type": "user", "id": user(OWNER).id}, "at": at}
    )


async def test_the_reader_sends_resync_for_a_replaced_or_deleted_collaboration(runtime):
    events: list = []
    reader = await read_into(runtime, events)
    try:
        cid = await team(runtime)
        coll = runtime.handle.db["collaborations"]
        doc = await coll.find_one({"_id": cid})
        await coll.replace_one({"_id": cid}, {**doc, "title": "replaced"})
        await coll.delete_one({"_id": cid})
        await settle(events, 5)
    finally:
        await reader.stop()
    assert [(e.type, e.body.get("reason")) for e in events[3:]] == [
        (ev.RESYNC_REQUIRED, "replaced"),
        (ev.RESYNC_REQUIRED, "deleted"),
    ]


async def test_the_reader_reads_presence_only_for_collaborations_someone_here_listens_to(runtime):
    events: list = []
    listened = {"col_a"}
    reads: list[str] = []
    real_read = runtime.store.presence.for_collaboration

    async def counted(collaboration_id, now=None):
        reads.append(collaboration_id)
        return await real_read(collaboration_id, now)

    runtime.store.presence.for_collaboration = counted
    reader = ChangeReader(
        runtime.store, events.append, lambda reason: None, max_await_ms=50, wanted=lambda cid: cid in listened
    )
    await reader.start()
    try:
        for cid in ("col_b", "col_a"):
            await runtime.store.presence.upsert(cid, "con_1", "u1", "proc", {"status": "here"}, 30)
        await settle(events, 1)
        await asyncio.sleep(0.2)  # time for an unwanted col_b event to show up, if it were sent
    finally:
        await reader.stop()
    assert [(e.type, e.collaboration_id) for e in events] == [(ev.PRESENCE, "col_a")]
    assert reads == ["col_a"]
