"""All MongoDB access: real MongoDB or the embedded store (see docs/store.md)."""

from backend.store.client import Database, open_database

__all__ = ["Database", "open_database"]
