"""Replication, consistency levels and routing on a real 3-node cluster (no node lost)."""

from __future__ import annotations

import pandas as pd
import pytest

import iotlab
from iotlab.errors import InvalidURLError
from iotlab.simulate import FaultConfig, Fleet
from iotlab.store._cql_io import _batches, _prepared_chunk
from iotlab.store.cassandra import CassandraStore
from iotlab.store.url import parse_store_url

from .conftest import DC

pytestmark = pytest.mark.cluster


def test_keyspace_is_replicated_three_times_in_the_named_datacenter(cluster) -> None:
    from cassandra import ConsistencyLevel

    with iotlab.connect(cluster.url(rf=3, dc=DC)) as lab:
        store = lab.store
        row = store.session.execute(
            "SELECT replication FROM system_schema.keyspaces WHERE keyspace_name = %s",
            (store.keyspace,),
        ).one()
        replication = dict(row[0])
        assert replication["class"].endswith("NetworkTopologyStrategy")
        assert replication[DC] == "3"
        # A multi-node URL reads and writes at LOCAL_QUORUM, its LWTs at LOCAL_SERIAL.
        conn = store.connection
        assert conn.consistency == ConsistencyLevel.LOCAL_QUORUM
        assert conn.serial_consistency == ConsistencyLevel.LOCAL_SERIAL
        hosts = conn.cluster.metadata.all_hosts()
        assert sorted(h.address for h in hosts) == sorted(cluster.hosts)
        assert {h.is_up for h in hosts} == {True}
        # Every partition lives on all three nodes.
        replicas = conn.cluster.metadata.get_replicas(store.keyspace, b"any-device")
        assert len(replicas) == 3


def test_without_dc_lwts_use_serial(cluster) -> None:
    from cassandra import ConsistencyLevel

    store = CassandraStore(parse_store_url(cluster.url(rf=3, dc=None)))  # no schema needed
    try:
        assert store.connection.serial_consistency == ConsistencyLevel.SERIAL
        assert store.connection.consistency == ConsistencyLevel.LOCAL_QUORUM
    finally:
        store.close()


def test_a_datacenter_the_cluster_lacks_is_named_in_the_error(cluster) -> None:
    with pytest.raises(InvalidURLError, match=rf"no datacenter 'dc9'.*{DC}"):
        iotlab.connect(cluster.url(dc="dc9"))


def test_requests_go_to_a_replica_of_their_partition(cluster) -> None:
    """Token-aware and DC-aware routing, checked on RF=1 where a request that reaches the
    wrong node is visible: the coordinator of every batch the bulk writer sends (and of
    every read) must be the one node that owns its partitions."""
    from cassandra.policies import HostDistance

    fleet = Fleet(12, seed=5, faults=FaultConfig.none())
    readings = fleet.simulate(pd.Timestamp("2026-01-05", tz="UTC"), days=1, freq="10min").readings
    with iotlab.connect(cluster.url(rf=1, dc=DC)) as lab:
        store = lab.store
        conn = store.connection
        policy = conn.cluster.profile_manager.default.load_balancing_policy
        assert {policy.distance(h) for h in conn.cluster.metadata.all_hosts()} == {
            HostDistance.LOCAL
        }
        plan = store._write_plan(store.tables["readings"])
        chunk = _prepared_chunk(plan, store._check_rows(plan.spec, readings))
        owners, batches = set(), 0
        for batch, _ in _batches(plan, chunk.encoded, chunk.codes):
            # the driver composed the batch's key parts into the partition key's bytes
            replicas = set(conn.cluster.metadata.get_replicas(store.keyspace, batch.routing_key))
            result = store.session.execute(batch)
            assert result.response_future.coordinator_host in replicas
            owners |= replicas
            batches += 1
        assert batches > 1 and len(owners) == 3  # the partitions are spread over every node
        # Reads too: each device's partition is read from its owner.
        device = fleet.devices["device_id"].iloc[0]
        sensor = fleet.sensors[fleet.sensors["device_id"] == device]["sensor_id"].iloc[0]
        day = pd.Timestamp("2026-01-05", tz="UTC")
        key = {"device_id": device, "sensor_id": sensor}
        stored = store.read_rows("readings", key, start=day, end=day + pd.Timedelta("1D"))
        assert len(stored) == 144
        select = store._prepare(
            f"SELECT ts FROM {store.keyspace}.readings "
            "WHERE device_id = ? AND sensor_id = ? AND bucket = ?"
        )
        bucket = pd.Timestamp("2026-01-05", tz="UTC").to_pydatetime()
        bound = select.bind((device, sensor, bucket))
        owner = conn.cluster.metadata.get_replicas(store.keyspace, bound.routing_key)
        # and the store's own key hashing (used to pack small partitions) agrees
        parts = [device.encode(), sensor.encode(), bound.values[2]]
        assert store._replica_set(parts) == frozenset(owner)
        result = store.session.execute(bound)
        assert result.response_future.coordinator_host in owner
        assert len(list(result)) == 144
