"""The store contract of :mod:`iotlab.testing`, run on every built-in backend.

``store_url`` comes from ``tests/conftest.py``: a fresh store on SQLite, then on the
Cassandra node (these runs carry the ``cassandra`` mark).
"""

from __future__ import annotations

from iotlab.testing import StoreContract


class TestStoreContract(StoreContract):
    """SQLite and Cassandra, through the ``backend``-parametrised ``store_url`` fixture."""
