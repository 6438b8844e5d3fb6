"""Every index Tandem uses, declared in one place and created at start-up.

The same list works on real MongoDB and on the embedded store (mongomock
honours `unique`, `sparse`, `partialFilterExpression` for uniqueness and
`expireAfterSeconds`). Indexes are created one by one with `create_index`,
because mongomock's `create_indexes` drops `partialFilterExpression`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from backend.store.driver import Db
from backend.store.reminders import KEEP as REMINDERS_KEPT

ASC = 1


@dataclass(frozen=True)
class Index:
    collection: str
    keys: tuple[tuple[str, int], ...]
    options: dict[str, Any] = field(default_factory=dict)


_NUMBERED = {"seq": {"$exists": True}}  # entries of a collaboration's stream (store/stream.py)

INDEXES: tuple[Index, ...] = (
    Index("collaborations", (("memberIds", ASC),)),
    Index("collaborations", (("status", ASC), ("lastActivityAt", ASC))),
    Index("messages", (("collaborationId", ASC), ("_id", ASC))),
    # one audit entry per version, for document-changing actions only (they carry versioned: true)
    Index(
        "audit",
        (("collaborationId", ASC), ("version", ASC)),
        {"unique": True, "partialFilterExpression": {"versioned": True}},
    ),
    # a collaboration's stream, by seq (backend/store/stream.py): one event per seq
    Index("audit", (("collaborationId", ASC), ("seq", ASC)), {"unique": True, "partialFilterExpression": _NUMBERED}),
    Index("messages", (("collaborationId", ASC), ("seq", ASC)), {"unique": True, "partialFilterExpression": _NUMBERED}),
    Index("approvals", (("collaborationId", ASC), ("status", ASC))),
    Index("approvals", (("status", ASC), ("expiresAt", ASC))),
    Index("approvals", (("followupKey", ASC),), {"unique": True, "sparse": True}),  # a follow-up held back, once
    Index("audit", (("approvalId", ASC),), {"sparse": True}),  # recovering an interrupted approval
    Index("audit", (("followupKey", ASC),), {"unique": True, "sparse": True}),  # a rule's follow-up, applied once
    Index("audit", (("followupsOpen", ASC), ("at", ASC)), {"sparse": True}),  # follow-ups still to run
    Index("jobs", (("status", ASC), ("runAt", ASC))),
    Index("jobs", (("uniqueKey", ASC),), {"unique": True, "sparse": True}),
    Index("jobs", (("leaseUntil", ASC),)),
    Index("checkin_runs", (("day", ASC),)),
    Index("checkin_reminders", (("day", ASC), ("collaborationId", ASC))),
    Index("checkin_reminders", (("at", ASC),), {"expireAfterSeconds": REMINDERS_KEPT}),
    Index("presence", (("expiresAt", ASC),), {"expireAfterSeconds": 0}),
    Index("presence", (("collaborationId", ASC),)),
    # Idempotency-Key records (idempotency.py): one per user and key, gone after IDEMPOTENCY_TTL
    Index("idempotency", (("userId", ASC), ("key", ASC)), {"unique": True}),
    Index("idempotency", (("expiresAt", ASC),), {"expireAfterSeconds": 0}),
    Index("users", (("email", ASC), ("seenAt", ASC))),  # addMember finds a signed-in user (store/users.py)
)


async def ensure_indexes(db: Db) -> list[str]:
    """Create every index that does not exist yet (idempotent); returns their names."""
    return [await db[index.collection].create_index(list(index.keys), **index.options) for index in INDEXES]
