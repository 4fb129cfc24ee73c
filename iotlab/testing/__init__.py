"""Test suites a backend imports and runs against itself (needs pytest).

:class:`StoreContract` is the contract every storage backend passes: SQLite and
Cassandra run it in iotlab's own tests, and a new backend runs it the same way, as
eventsourcing ships its recorder test cases. In a ``test_*.py`` module::

    import pytest
    from iotlab.store import register_backend
    from iotlab.testing import StoreContract

    register_backend("duckdb", "iotlab_duckdb:DuckDBStore")

    class TestDuckDB(StoreContract):
        @pytest.fixture
        def store_url(self, tmp_path):  # a fresh, empty store for each test
            return f"duckdb:///{tmp_path / 'iot.db'}"

``provision`` and ``make_readings`` build the small fixtures the suite writes.
"""

from __future__ import annotations

from iotlab.testing.data import T0, make_readings, provision
from iotlab.testing.store_contract import StoreContract

__all__ = ["T0", "StoreContract", "make_readings", "provision"]
