"""A third backend for the tests: SQLite's engine on a named in-memory database.

``memory:///name`` opens the in-memory database ``name``, shared by every store of this
process that opens the same URL, and gone when the last one closes. It shows what adding
a backend takes: a ``Store`` subclass that parses its own URLs, a registration, and the
contract suite (``tests/store/test_third_backend.py``).
"""

from __future__ import annotations

import sqlite3

from iotlab.errors import InvalidURLError
from iotlab.store.sqlite import SQLiteStore
from iotlab.store.url import StoreURL, URLParts, check_options, validate_identifier

__all__ = ["MemoryStore"]


class MemoryStore(SQLiteStore):
    """A store in a named, process-wide in-memory SQLite database."""

    scheme = "memory"
    url_options: dict[str, str] = {}

    @classmethod
    def parse_url(cls, parts: URLParts) -> StoreURL:
        check_options(parts, cls.url_options)
        if parts.netloc or parts.username:
            raise InvalidURLError(f"{parts.scheme} URLs name no host: '{parts.scheme}:///name'")
        name = validate_identifier(parts.path, what="memory store name")
        return StoreURL(parts.scheme, keyspace=name, options=parts.options)

    def _connect(self, timeout: float) -> sqlite3.Connection:
        return sqlite3.connect(
            f"file:iotlab_{self.url.keyspace}?mode=memory&cache=shared",
            uri=True,
            timeout=timeout,
            isolation_level=None,
            check_same_thread=False,
        )
