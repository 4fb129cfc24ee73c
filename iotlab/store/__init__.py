"""Storage backends, chosen by URL scheme and imported lazily.

Which class serves which scheme is kept by :mod:`iotlab.store.registry`; a new backend
registers there (or through the ``iotlab.backends`` entry-point group) and passes the
contract suite of :mod:`iotlab.testing`.

Examples
--------
>>> from iotlab.store import open_store
>>> store = open_store("sqlite://")
>>> store.scheme
'sqlite'
>>> store.close()
"""

from __future__ import annotations

import warnings
from typing import Any

from iotlab.store.base import Capabilities, Store
from iotlab.store.registry import backend_class, known_backends, register_backend
from iotlab.store.url import StoreURL, parse_store_url

__all__ = [
    "Capabilities",
    "Store",
    "StoreURL",
    "known_backends",
    "open_store",
    "parse_store_url",
    "register_backend",
]


def open_store(url: str | StoreURL, *, create: bool = True) -> Store:
    """Open the backend for ``url`` and (by default) create its schema.

    Raises ``InvalidURLError``/``UnknownBackendError`` before any I/O for a bad URL,
    ``MissingDependencyError`` if the backend's driver is not installed, and
    ``StoreConnectionError`` if the server cannot be reached.
    """
    parsed = url if isinstance(url, StoreURL) else parse_store_url(url)
    store = backend_class(parsed.scheme)(parsed)
    if create:
        try:
            store.create_schema()
        except BaseException:
            store.close()
            raise
    return store


def __getattr__(name: str) -> Any:
    # The scheme -> "module:Class" table before the registry; kept one release.
    if name == "BACKENDS":
        warnings.warn(
            "iotlab.store.BACKENDS is deprecated: use iotlab.store.known_backends() to "
            "list backends and iotlab.store.register_backend() to add one",
            DeprecationWarning,
            stacklevel=2,
        )
        return known_backends()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
