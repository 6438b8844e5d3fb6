"""A collaboration's stream sequence (`seq`) and the stored form of its events, for replay.

Every `collaboration_updated` and `message_created` event of a collaboration
carries `seq`: from 1, plus exactly 1 per event, in commit order. The counter
is the collaboration document's `seq` field, bumped inside the atomic write
that makes the event:

- a versioned change (`Collaborations.apply`) adds `$inc: {seq: 1}` to its own
  update, so the document's version and seq move together in one write; its
  audit entry stores the seq and the event's `changes` (`stored_changes`);
- a new collaboration is inserted with `seq: 1`, its audit entry storing the
  whole document as the changes (`created_changes`);
- a message (`Messages.insert`) bumps the collaboration's seq with the same
  `find_one_and_update` that checks the collaboration is active and the poster
  a member; the message document stores the seq.

On MongoDB those writes are one transaction: two of them both write the
collaboration document, so they conflict and one retries: seq order is commit
order, the same on every API process. A message's bump, which is also its check
that the collaboration is active and the poster a member, serialises it with a
removal or archiving (which write the collaboration): what a separate `fences`
document written by both did before, one write fewer (writes.py). On the
embedded store each write runs without yielding.

`seq` is kept out of everything else: `Collaborations.get()` and the lists drop
it (so the engine's diff never sees it), the change reader takes it off the
change (a message's bump alone makes no event) and puts it on the event.

Stored form (for `sinceSeq` replay, `Stream.read`): the audit entry of a
versioned change holds `seq` and `changes: {"updatedFields": [[path, value],
...], "removedFields": [path, ...]}` (pairs: MongoDB field names should not
hold dots), exactly what its collaboration_updated event sends (a test checks
this against the change stream for every action); a message holds `seq`.
Changes larger than CHANGES_MAX_BYTES encoded (a removal sets a shrunk list
whole: 49 rules of 4 KB, 8,000 members) are not stored (`changes: null`): a
replay across that seq becomes a snapshot, as at a seq with nothing stored.

A replay reads what it needs and no more (`Stream.read`): the audit entries
projected to the fields `events.replayed` uses (REPLAY_FIELDS: not the
payload, rulesFired, followups...), both cursors read a few documents at a
time (READ_BATCH) and merged by seq, one stored event at a time, so the reader
(backend/realtime/replay.py) stops as soon as its byte budget is passed,
holding at most a batch per cursor beyond what it kept.
"""

from __future__ import annotations

from typing import Any, AsyncGenerator, TypeVar

from backend.store.driver import Batched, Db
from backend.store.size import bson_size

SEQ = "seq"
REPLAY_BATCH = 256  # seqs read per window: at most that many audit entries and messages per query
READ_BATCH = 16  # documents per round trip of a replay's cursors (an audit entry's changes: CHANGES_MAX_BYTES at most)
CHANGES_MAX_BYTES = 65_536  # stored changes larger than this (BSON) are not stored: a replay across them is a snapshot
REPLAY_FIELDS = {
    "_id": 0,
    SEQ: 1,
    "collaborationId": 1,
    "version": 1,
    "action": 1,
    "actor": 1,
    "at": 1,
    "changes": 1,
}  # what events.replayed reads of an audit entry


_MaybeDoc = TypeVar("_MaybeDoc", bound=dict[str, Any] | None)


def hide(doc: _MaybeDoc) -> _MaybeDoc:
    """`doc` without its stream counter (in place; store reads are private copies)."""
    if doc is not None:
        doc.pop(SEQ, None)
    return doc


def numbered(update: dict[str, Any]) -> dict[str, Any]:
    """`update` with `$inc: {seq: 1}`, and no other operator touching `seq` (a diff from a document
    that held it must not unset it)."""
    out: dict[str, Any] = {}
    for operator, spec in update.items():
        if isinstance(spec, dict) and SEQ in spec:
            spec = {path: value for path, value in spec.items() if path != SEQ}
            if not spec:
                continue
        out[operator] = spec
    out["$inc"] = {**out.get("$inc", {}), SEQ: 1}
    return out


def stored_changes(update: dict[str, Any]) -> dict[str, Any] | None:
    """The `changes` a collaboration_updated event sends for this operator update, as stored on its
    audit entry: `$set` paths are updatedFields, `$unset` paths removedFields (what MongoDB's change
    stream reports for the finest-grain diff of backend/domain/diff.py). None for any other operator,
    or past CHANGES_MAX_BYTES (nothing stored: a replay spanning it becomes a snapshot)."""
    if not isinstance(update, dict) or set(update) - {"$set", "$unset"}:
        return None
    return _bounded(
        {
            "updatedFields": [[path, value] for path, value in update.get("$set", {}).items() if path != SEQ],
            "removedFields": [path for path in update.get("$unset", {}) if path != SEQ],
        }
    )


def created_changes(public_doc: dict[str, Any]) -> dict[str, Any] | None:
    """The stored changes of a new collaboration: every field (applied to nothing, the document);
    None past CHANGES_MAX_BYTES."""
    return _bounded(
        {"updatedFields": [[key, value] for key, value in public_doc.items() if key != SEQ], "removedFields": []}
    )


def _bounded(changes: dict[str, Any]) -> dict[str, Any] | None:
    """`changes`, or None when they are too large to keep for a replay (a snapshot is cheaper)."""
    return changes if bson_size(changes) <= CHANGES_MAX_BYTES else None


class Stream:
    """Reads of the stream: the head of a collaboration, its stored events by seq."""

    def __init__(self, db: Db):
        self._collaborations = db["collaborations"]
        self._audit = db["audit"]
        self._messages = db["messages"]
        self.reads = 0  # queries made (the benchmark's "MongoDB reads per resume")
        self.documents = 0  # stored events `read` handed out (what a replay read before it stopped)

    async def head(self, collaboration_id: str) -> tuple[dict[str, Any] | None, int]:
        """The collaboration (seq hidden) and the seq it is current to, from one read: the version
        and the seq belong together. 0 for a collaboration no event numbered yet."""
        self.reads += 1
        doc = await self._collaborations.find_one({"_id": collaboration_id})
        if doc is None:
            return None, 0
        seq = doc.pop(SEQ, 0)
        return doc, seq if isinstance(seq, int) else 0

    async def read(
        self, collaboration_id: str, after: int, upto: int, batch: int = REPLAY_BATCH
    ) -> AsyncGenerator[tuple[int, str, dict[str, Any]], None]:
        """The stored events with seq in (`after`, `upto`], in seq order, one at a time: (seq,
        "update" | "message", audit entry (REPLAY_FIELDS only) | message). Read in windows of at most
        `batch` seqs, two queries per window (on the (collaborationId, seq) indexes), each cursor
        READ_BATCH documents per round trip and merged by seq as it goes: a caller that stops early
        (close the generator: `contextlib.aclosing`) has read little past what it used. A seq with
        nothing stored (written before seqs were stored) is simply absent: the caller checks for
        gaps. `documents` counts what was handed out."""
        low = after
        while low < upto:
            high = min(low + batch, upto)
            query = {"collaborationId": collaboration_id, SEQ: {"$gt": low, "$lte": high}}
            self.reads += 2
            entries = self._audit.find(query, REPLAY_FIELDS).sort(SEQ, 1).batch_size(READ_BATCH)
            messages = self._messages.find(query).sort(SEQ, 1).batch_size(READ_BATCH)
            try:
                entry, message = await _next(entries), await _next(messages)
                while entry is not None or message is not None:
                    self.documents += 1
                    if entry is not None and (message is None or entry[SEQ] < message[SEQ]):
                        yield entry[SEQ], "update", entry
                        entry = await _next(entries)
                    elif message is not None:  # always, when reached: one of the two is not None
                        yield message[SEQ], "message", message
                        message = await _next(messages)
            finally:
                await entries.close()  # a reader that stopped early: the server lets go of both cursors
                await messages.close()
            low = high

    async def latest_messages(self, collaboration_id: str, upto: int, limit: int) -> list[dict[str, Any]]:
        """The latest `limit` messages with seq at or below `upto`, oldest first (seq order: commit
        order); older messages stored without a seq fill up the page before them, in id order."""
        self.reads += 1
        query = {"collaborationId": collaboration_id, SEQ: {"$lte": upto}}
        docs = await self._messages.find(query).sort(SEQ, -1).limit(limit).to_list(length=limit)
        if len(docs) < limit:
            self.reads += 1
            older = {"collaborationId": collaboration_id, SEQ: {"$exists": False}}
            rest = limit - len(docs)
            docs += await self._messages.find(older).sort("_id", -1).limit(rest).to_list(length=rest)
        docs.reverse()
        return docs


async def _next(cursor: Batched) -> dict[str, Any] | None:
    """The cursor's next document, None past its last."""
    try:
        return await cursor.next()
    except StopAsyncIteration:
        return None
