"""Errors a user meets are iotlab errors that say what happened: locked databases, URLs
with awkward passwords, missing TLS files, reserved keyspace names, unreachable nodes."""

from __future__ import annotations

import sqlite3

import pandas as pd
import pytest

import iotlab
from iotlab.errors import (
    InvalidIdentifierError,
    InvalidURLError,
    StoreUnavailableError,
)
from iotlab.store import open_store
from iotlab.store.url import parse_store_url

T0 = pd.Timestamp("2026-01-05", tz="UTC")


def _rows(n: int, value: float = 1.0) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "device_id": "d1",
            "sensor_id": "temp_01",
            "ts": pd.date_range(T0, periods=n, freq="1s").as_unit("ms"),
            "value": value,
            "quality": 100,
            "status": "ok",
        }
    )


def test_a_locked_sqlite_database_says_nothing_was_committed(tmp_path) -> None:
    path = tmp_path / "locked.db"
    store = open_store(f"sqlite:///{path}?timeout=0.2")
    store.create_schema()
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    with pytest.raises(StoreUnavailableError, match="nothing of it was committed") as caught:
        store.write_rows("readings", _rows(3))
    assert "locked" in str(caught.value)
    other.execute("ROLLBACK")
    assert store.read_rows(
        "readings", {"device_id": "d1", "sensor_id": "temp_01"}
    ).empty  # indeed nothing
    assert store.write_rows("readings", _rows(3)) == 3  # and the store still works
    assert len(store.read_rows("readings", {"device_id": "d1", "sensor_id": "temp_01"})) == 3
    store.close()
    other.close()


@pytest.mark.parametrize("password", ["Zq/Xv", "Zq?Xv", "Zk/Qj?Xw@Vy", "sEc/rEt?w0rD"])
def test_a_password_is_never_echoed_in_url_errors(password) -> None:
    with pytest.raises(InvalidURLError) as caught:
        parse_store_url(f"cassandra://user:{password}@db.example:9042/iot")
    message = str(caught.value)
    for piece in {password, *password.replace("?", "/").replace("@", "/").split("/")}:
        if len(piece) > 1:
            assert piece not in message, message
    assert "percent-encode" in message and "db.example:9042/iot" in message


def test_a_percent_encoded_password_is_read_back() -> None:
    url = parse_store_url("cassandra://user:pa%2Fss%3Fw%40rd@db:9042/iot")
    assert url.password == "pa/ss?w@rd"
    assert "pa" not in str(url).replace("db:9042", "")


def test_a_missing_ssl_ca_file_names_the_option(tmp_path) -> None:
    missing = tmp_path / "nowhere" / "ca.pem"
    with pytest.raises(InvalidURLError, match=r"^ssl_ca: cannot load .*ca\.pem"):
        open_store(f"cassandra://127.0.0.1:9042/iot?ssl_ca={missing}").describe()


@pytest.mark.parametrize("keyspace", ["select", "Table", "KEYSPACE", "with"])
def test_a_reserved_word_as_keyspace_is_refused_before_any_query(keyspace) -> None:
    with pytest.raises(InvalidIdentifierError, match="reserved CQL keyword"):
        iotlab.connect(f"cassandra://127.0.0.1:9042/{keyspace}")


def test_an_unreachable_node_is_a_store_unavailable_error_naming_it() -> None:
    with pytest.raises(StoreUnavailableError, match="127.0.0.1:1"):
        open_store("cassandra://127.0.0.1:1/iot?connect_timeout=2").describe()


class _SlowSchemaSession:
    """A session whose first ``timeouts`` schema changes time out as a busy node's do
    (a real cluster cannot be made to time out on cue)."""

    def __init__(self, timeouts: int) -> None:
        self.timeouts = timeouts
        self.sent: list[tuple[str, float]] = []

    def execute(self, cql: str, timeout: float) -> None:
        from cassandra import OperationTimedOut

        self.sent.append((cql, timeout))
        if len(self.sent) <= self.timeouts:
            raise OperationTimedOut("Connection defunct by heartbeat")


def _store_on(session: _SlowSchemaSession):
    from types import SimpleNamespace

    from iotlab.store.cassandra import CassandraStore

    store = CassandraStore(parse_store_url("cassandra://127.0.0.1:9042/ks"))
    agreed = SimpleNamespace(wait_for_schema_agreement=lambda: True)
    store._conn = SimpleNamespace(
        session=session, cluster=SimpleNamespace(control_connection=agreed)
    )
    return store


def test_an_idempotent_schema_change_that_times_out_is_sent_again(caplog) -> None:
    session = _SlowSchemaSession(timeouts=2)
    _store_on(session)._ddl("CREATE TABLE IF NOT EXISTS ks.t (k int PRIMARY KEY)")
    assert len(session.sent) == 3
    assert all(timeout >= 60 for _, timeout in session.sent)  # longer than a write's
    assert "sending it again" in caplog.text


def test_a_schema_change_that_is_not_idempotent_is_sent_once() -> None:
    from cassandra import OperationTimedOut

    session = _SlowSchemaSession(timeouts=1)
    with pytest.raises(OperationTimedOut):
        _store_on(session)._ddl("ALTER TABLE ks.t ADD v int")
    assert len(session.sent) == 1
    stubborn = _SlowSchemaSession(timeouts=5)
    with pytest.raises(OperationTimedOut):
        _store_on(stubborn)._ddl("CREATE TABLE IF NOT EXISTS ks.t (k int PRIMARY KEY)")
    assert len(stubborn.sent) == 3
