"""Cassandra-only behaviour: TTL expiry, migration, errors before I/O, no ALLOW FILTERING.

The shared behaviour of both backends is in ``test_contract.py``; these tests need a
real node (``IOTLAB_TEST_CASSANDRA=host:port``).
"""

from __future__ import annotations

import time
import uuid

import numpy as np
import pandas as pd
import pytest

from iotlab.errors import (
    InvalidIdentifierError,
    SchemaMismatchError,
    StoreConnectionError,
    ValidationError,
)
from iotlab.store import open_store
from iotlab.store.cassandra import CassandraStore
from iotlab.store.schema import TABLES
from iotlab.store.url import StoreURL, parse_store_url

pytestmark = pytest.mark.cassandra


@pytest.fixture
def new_url(cassandra_contact, cassandra_keyspaces):
    """Returns a function giving a fresh keyspace URL (dropped at session end)."""

    def make() -> str:
        host, port = cassandra_contact
        keyspace = f"tc_{uuid.uuid4().hex[:16]}"
        cassandra_keyspaces.append(keyspace)
        return f"cassandra://{host}:{port}/{keyspace}?replication_factor=1"

    return make


def _readings(n: int, start: str = "2026-01-01", freq: str = "1s") -> pd.DataFrame:
    ts = pd.date_range(start, periods=n, freq=freq, tz="UTC").astype("datetime64[ms, UTC]")
    return pd.DataFrame(
        {
            "device_id": "dev-1",
            "sensor_id": "temp",
            "ts": ts,
            "value": np.arange(n, dtype="float64"),
            "quality": np.ones(n, dtype="int64"),
            "status": "ok",
        }
    )


def test_server_version_is_cassandra_5(new_url):
    with open_store(new_url()) as store:
        facts = store.describe()
    print(f"Cassandra release_version: {facts['server_version']}")
    assert facts["backend"] == "cassandra"
    assert str(facts["server_version"]).startswith("5.")


def test_short_ttl_really_expires_rows(new_url):
    tables = dict(TABLES)
    tables["readings"] = TABLES["readings"].with_settings(ttl_seconds=2)
    store = CassandraStore(parse_store_url(new_url()), tables)
    with store:
        store.create_schema()
        assert store.write_rows("readings", _readings(5)) == 5
        key = {"device_id": "dev-1", "sensor_id": "temp"}
        assert len(store.read_rows("readings", key)) == 5
        time.sleep(3.5)
        assert len(store.read_rows("readings", key)) == 0


def test_migration_adds_missing_column_and_keeps_rows(new_url):
    url = parse_store_url(new_url())
    ks = url.keyspace
    with CassandraStore(url) as store:
        session = store.session
        session.execute(
            f"CREATE KEYSPACE {ks} WITH replication = "
            "{'class': 'SimpleStrategy', 'replication_factor': 1}"
        )
        session.execute(
            f"CREATE TABLE {ks}.snapshots (device_id text, version bigint, state text, "
            "PRIMARY KEY ((device_id), version)) WITH CLUSTERING ORDER BY (version DESC)"
        )
        session.execute(
            f"INSERT INTO {ks}.snapshots (device_id, version, state) VALUES ('d', 1, 's')"
        )
        store.create_schema()
        columns = {
            row[0]
            for row in session.execute(
                "SELECT column_name FROM system_schema.columns "
                "WHERE keyspace_name = %s AND table_name = 'snapshots'",
                (ks,),
            )
        }
        kept = store.read_rows("snapshots", {"device_id": "d"})
    assert "taken_at" in columns
    assert kept["state"].tolist() == ["s"]
    assert kept["taken_at"].isna().all()


def test_migration_refuses_incompatible_column_and_changes_nothing(new_url):
    url = parse_store_url(new_url())
    ks = url.keyspace
    with CassandraStore(url) as store:
        session = store.session
        session.execute(
            f"CREATE KEYSPACE {ks} WITH replication = "
            "{'class': 'SimpleStrategy', 'replication_factor': 1}"
        )
        session.execute(
            f"CREATE TABLE {ks}.snapshots (device_id text, version bigint, state blob, "
            "PRIMARY KEY ((device_id), version)) WITH CLUSTERING ORDER BY (version DESC)"
        )
        with pytest.raises(SchemaMismatchError, match=r"snapshots: column state is blob"):
            store.create_schema()
        tables = {
            row[0]
            for row in session.execute(
                "SELECT table_name FROM system_schema.tables WHERE keyspace_name = %s", (ks,)
            )
        }
    assert tables == {"snapshots"}


def test_different_primary_key_is_refused(new_url):
    url = parse_store_url(new_url())
    ks = url.keyspace
    with CassandraStore(url) as store:
        store.session.execute(
            f"CREATE KEYSPACE {ks} WITH replication = "
            "{'class': 'SimpleStrategy', 'replication_factor': 1}"
        )
        store.session.execute(
            f"CREATE TABLE {ks}.devices (device_id text, status text, "
            "PRIMARY KEY ((status), device_id))"
        )
        with pytest.raises(SchemaMismatchError, match=r"devices: partition key is \(status\)"):
            store.create_schema()


def test_invalid_keyspace_is_refused_before_any_io():
    # Host 192.0.2.1 (TEST-NET-1) would hang if a connection were attempted.
    bad = StoreURL("cassandra", ("192.0.2.1",), 9042, keyspace="x; DROP KEYSPACE y")
    started = time.monotonic()
    with pytest.raises(InvalidIdentifierError, match="invalid keyspace"):
        CassandraStore(bad)
    with pytest.raises(InvalidIdentifierError, match="invalid keyspace"):
        open_store("cassandra://192.0.2.1:9042/x;DROP")
    assert time.monotonic() - started < 1.0  # not a timing claim: proves no connect ran


def test_unreachable_host_raises_store_connection_error():
    with pytest.raises(StoreConnectionError, match=r"127\.0\.0\.1:1\b"):
        open_store("cassandra://127.0.0.1:1/iot_unreachable?connect_timeout=2")


def test_open_range_reads_find_buckets_through_partition_index(new_url):
    rows = pd.concat(
        [_readings(3, "2026-01-01"), _readings(2, "2026-03-15"), _readings(4, "2026-11-30")]
    )
    key = {"device_id": "dev-1", "sensor_id": "temp"}
    with open_store(new_url()) as store:
        store.write_rows("readings", rows)
        every = store.read_rows("readings", key)
        late = store.read_rows("readings", key, start="2026-03-15 00:00:01")
        early = store.read_rows("readings", key, end="2026-03-15 00:00:01")
        wide = store.read_rows("readings", key, start="2025-01-01", end="2027-01-01")
    assert len(every) == 9 and every["ts"].is_monotonic_increasing
    assert len(late) == 5 and len(early) == 4 and len(wide) == 9
    assert str(every["ts"].dtype) == "datetime64[ms, UTC]"


def test_partial_partition_key_is_a_clear_error(new_url):
    with open_store(new_url()) as store, pytest.raises(ValidationError, match="missing sensor_id"):
        store.read_rows("readings", {"device_id": "dev-1"})


def test_no_generated_cql_contains_allow_filtering(new_url):
    seen: list[str] = []

    def record(future) -> None:
        query = future.query
        if hasattr(query, "prepared_statement"):
            seen.append(query.prepared_statement.query_string)
        elif hasattr(query, "query_string"):
            seen.append(query.query_string)
        else:
            seen.append(str(query))

    store = CassandraStore(parse_store_url(new_url()))
    with store:
        conn = store.connection
        for session in (conn.session, conn.bulk):
            if session is not None:
                session.add_request_init_listener(record)
        store.create_schema()
        store.write_rows("readings", _readings(120, freq="1h"))
        key = {"device_id": "dev-1", "sensor_id": "temp"}
        store.read_rows("readings", key)
        store.read_rows("readings", key, start="2026-01-02", end="2026-01-03")
        store.stats()
        store.delete_rows("readings", key)
    assert any("FROM" in q and "readings" in q for q in seen)
    assert len(seen) > 20
    assert not [q for q in seen if "ALLOW FILTERING" in q.upper()]


def test_stats_counts_rows_partitions_and_span(new_url):
    with open_store(new_url()) as store:
        store.write_rows("readings", _readings(3 * 24, freq="1h"))  # 3 daily buckets
        stats = store.stats().set_index("table")
    assert stats.loc["readings", "rows"] == 72
    assert stats.loc["readings", "partitions"] == 3
    assert stats.loc["readings", "first"] == pd.Timestamp("2026-01-01", tz="UTC")
    assert stats.loc["readings", "last"] == pd.Timestamp("2026-01-03 23:00", tz="UTC")


def test_small_partitions_share_batches_within_one_replica_set():
    # The packing rule alone (no node): rows of small partitions go into shared
    # UNLOGGED batches, at most BATCH_PARTITIONS partitions each, never mixing replica
    # sets; a big partition fills single-partition batches of its own, of equal size up
    # to PARTITION_BATCH_ROWS; every row is sent exactly once.
    from iotlab.store._cql_io import (
        BATCH_PARTITIONS,
        PARTITION_BATCH_ROWS,
        WritePlan,
        _batches,
        _partition_order,
    )
    from iotlab.store.schema import TableSpec

    spec = TableSpec(
        "t",
        {"device_id": "text", "sensor_id": "text", "row": "int"},
        partition_key=("device_id", "sensor_id"),
        clustering=("row",),
    )
    sizes = {f"dev-{i:02d}": 2 for i in range(25)} | {"dev-big": 120, "dev-huge": 450}
    frame = pd.DataFrame(
        {
            "device_id": [d for d, n in sizes.items() for _ in range(n)],
            "sensor_id": "temp",
            "row": np.arange(sum(sizes.values())),
        }
    )
    frame, codes = _partition_order(frame, ["device_id", "sensor_id"])

    class Insert:
        query_id = b"q"

    def replica_set(parts: list[bytes]) -> str:
        return "odd" if parts[0][-1] % 2 else "even"  # two "nodes" by the device's last digit

    columns = ("device_id", "sensor_id", "row")
    plan = WritePlan("ks", spec, Insert(), columns, None, 50, replica_set=replica_set)
    encoded = [[str(v).encode() for v in frame[c]] for c in columns]
    batches = [b for b, _ in _batches(plan, encoded, codes)]
    rows_of = [[r for _flag, _query, r in b._statements_and_parameters] for b in batches]
    assert sorted(int(r[2]) for rows in rows_of for r in rows) == list(range(len(frame)))
    for rows in rows_of:
        devices = {r[0] for r in rows}
        assert len(devices) <= BATCH_PARTITIONS
        assert len(rows) <= (50 if len(devices) > 1 else PARTITION_BATCH_ROWS)
        assert len({replica_set([d]) for d in devices}) == 1  # one replica set per batch
    for device, expected in ((b"dev-big", [120]), (b"dev-huge", [150, 150, 150])):
        alone = [len(rows) for rows in rows_of if {r[0] for r in rows} == {device}]
        assert alone == expected  # the whole partition, in batches of its own
    assert len(batches) < len(sizes)  # fewer requests than partitions


def test_idempotent_requests_are_retried_on_timeouts_then_the_error_is_raised():
    # The driver asks the policy by keyword (only for idempotent statements): a write
    # timeout on a busy node is retried at the same consistency, RETRIES times.
    from cassandra import ConsistencyLevel
    from cassandra.policies import RetryPolicy, WriteType

    from iotlab.store._cql_connect import RETRIES, retry_policy

    policy = retry_policy()
    quorum = ConsistencyLevel.LOCAL_QUORUM
    answers = [
        policy.on_write_timeout(
            query=None,
            consistency=quorum,
            write_type=WriteType.UNLOGGED_BATCH,
            required_responses=2,
            received_responses=1,
            retry_num=n,
        )
        for n in range(RETRIES + 1)
    ]
    assert answers == [(RetryPolicy.RETRY, quorum)] * RETRIES + [(RetryPolicy.RETHROW, None)]
    read = policy.on_read_timeout(
        query=None,
        consistency=quorum,
        required_responses=2,
        received_responses=1,
        data_retrieved=False,
        retry_num=0,
    )
    assert read == (RetryPolicy.RETRY, quorum)
    down = policy.on_unavailable(
        query=None, consistency=quorum, required_replicas=2, alive_replicas=1, retry_num=0
    )
    assert down == (RetryPolicy.RETRY_NEXT_HOST, None)
