"""Bad store URLs fail in ``iotlab.store.url`` with a clear message, before any I/O."""

from __future__ import annotations

import socket
import sqlite3

import pytest

from iotlab.errors import InvalidIdentifierError, InvalidURLError, UnknownBackendError
from iotlab.store import open_store, parse_store_url


@pytest.fixture
def no_io(monkeypatch):
    """Any attempt to open a socket or a database file fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError("I/O attempted before the URL was validated")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(sqlite3, "connect", refuse)


@pytest.mark.parametrize(
    ("url", "error", "message"),
    [
        ("localhost:9042/iot", InvalidURLError, "malformed store URL"),
        ("mysql://h/db", UnknownBackendError, "unknown store scheme 'mysql'"),
        ("cassandra://h:9042/x; DROP KEYSPACE y", InvalidIdentifierError, "invalid keyspace"),
        ("cassandra://h:90a2/iot", InvalidURLError, "invalid port '90a2'"),
        ("cassandra://h:0/iot", InvalidURLError, "invalid port '0'"),
        ("cassandra://h/iot?replication=3", InvalidURLError, "unknown cassandra URL option"),
        ("sqlite:///x.db?journal=off", InvalidURLError, "unknown sqlite URL option"),
        ("sqlite://x.db", InvalidURLError, "three slashes"),
    ],
)
def test_bad_url_is_refused_before_io(no_io, url, error, message):
    with pytest.raises(error, match=message):
        parse_store_url(url)
    with pytest.raises(error, match=message):
        open_store(url)


def test_memory_urls_and_password_hidden():
    assert parse_store_url("sqlite://").path is None
    assert parse_store_url("sqlite:///:memory:").path is None
    assert "s3cret" not in repr(parse_store_url("cassandra://u:s3cret@h:9042/iot"))


def test_names_replaced_by_the_registry_still_work_with_a_warning():
    with pytest.warns(DeprecationWarning, match="known_backends"):
        from iotlab.store import BACKENDS
    assert BACKENDS["sqlite"] == "iotlab.store.sqlite:SQLiteStore"
    assert BACKENDS["cassandra"] == "iotlab.store.cassandra:CassandraStore"
    with pytest.warns(DeprecationWarning, match="url_options"):
        from iotlab.store.url import CASSANDRA_OPTIONS
    from iotlab.store.cassandra import CassandraStore

    assert CassandraStore.url_options == CASSANDRA_OPTIONS and "dc" in CASSANDRA_OPTIONS
