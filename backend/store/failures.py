"""The database's failures, as the code above the store sees them.

Callers catch `StoreError` (any MongoDB failure, real or embedded: the
database is unreachable, a stream broke) and ask `history_lost(exc)` whether a
change stream can no longer resume; they never import pymongo themselves.
"""

from __future__ import annotations

from typing import Any

from pymongo.errors import OperationFailure, PyMongoError

StoreError = PyMongoError

# ChangeStreamHistoryLost, ChangeStreamFatalError, InvalidResumeToken (also: resumeAfter an
# invalidate event's token), CappedPositionLost (an open stream fell off the oplog)
HISTORY_LOST_CODES = frozenset({286, 280, 260, 136})


def history_lost(exc: BaseException) -> bool:
    """True when a change stream cannot resume from its token: open a fresh one and resync."""
    return isinstance(exc, OperationFailure) and exc.code in HISTORY_LOST_CODES


class StreamClosed(PyMongoError):
    """A change stream ended without an error (its client closed): open it again after the last token."""


class EmbeddedUnsupported(NotImplementedError):
    """Code above the store asked the embedded store for a MongoDB feature its emulation does not
    have (bulk_write, sessions, array_filters, a client-wide watch, a change-stream stage
    other than $match, ...); docs/store.md lists every one.

    A programming error, never a user's input: Tandem's own code uses none of these, and this
    keeps the two stores honest by refusing loudly instead of doing something subtly different
    from MongoDB. Use the single-operation methods and the options documented in docs/store.md.
    """


class AlreadyApplied(Exception):
    """An action that must run at most once already has its audit entry: the action an approval
    carries out (`approvalId`), or a rule's follow-up (`followupKey`). Raised from inside the
    atomic write, which then writes nothing; `entry` is the audit entry already there (or, with
    `approval`, the approval a follow-up already became)."""

    def __init__(self, entry: dict[str, Any], *, approval: bool = False):
        super().__init__(f"already applied: {entry.get('_id')}")
        self.entry = entry
        self.approval = approval
