"""How big a document is once stored: the repositories check it against MAX_DOCUMENT_BYTES."""

from __future__ import annotations

from typing import Any, Mapping

import bson


def bson_size(doc: Mapping[str, Any]) -> int:
    """The size in bytes of `doc` encoded as BSON, as MongoDB counts it against its 16 MB limit."""
    return len(bson.encode(doc))
