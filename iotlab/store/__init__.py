"""Storage backends, chosen by URL scheme and imported lazily.

Examples
--------
>>> from iotlab.store import open_store
>>> store = open_store("sqlite://")
>>> store.scheme
'sqlite'
>>> store.close()
"""

from __future__ import annotations

import importlib

from iotlab.store.base import Store
from iotlab.store.url import StoreURL, parse_store_url

__all__ = ["BACKENDS", "Store", "StoreURL", "open_store", "parse_store_url"]

#: scheme -> "module:Class"; imported only when a URL of that scheme is opened.
BACKENDS = {
    "sqlite": "iotlab.store.sqlite:SQLiteStore",
    "cassandra": "iotlab.store.cassandra:CassandraStore",
}


def open_store(url: str | StoreURL, *, create: bool = True) -> Store:
    """Open the backend for ``url`` and (by default) create its schema.

    Raises ``InvalidURLError``/``UnknownBackendError`` before any I/O for a bad URL,
    ``MissingDependencyError`` if the backend's driver is not installed, and
    ``StoreConnectionError`` if the server cannot be reached.
    """
    parsed = url if isinstance(url, StoreURL) else parse_store_url(url)
    module_name, class_name = BACKENDS[parsed.scheme].split(":")
    backend: type[Store] = getattr(importlib.import_module(module_name), class_name)
    store = backend(parsed)
    if create:
        try:
            store.create_schema()
        except BaseException:
            store.close()
            raise
    return store
