"""Losing nodes of the real 3-node cluster (RF=3, LOCAL_QUORUM): ``kill -9`` of one node
during ``Platform.ingest`` and during ``iotlab serve``, and two nodes down.

Each case counts the readings it wrote, the ones lost (expected but not stored) and the
ones doubled (roll-ups counting a reading more than once): the counts are printed at the
end of the run. Slow (node restarts), so each case runs once.
"""

from __future__ import annotations

import signal
import threading
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import iotlab
from iotlab.errors import StoreUnavailableError
from iotlab.ingest.publisher import Publisher
from iotlab.simulate import FaultConfig, Fleet
from tests.ingest.test_faults import _serve
from tests.ingest.test_mqtt import _ordered

from .conftest import wait_until

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

START = pd.Timestamp("2026-01-05", tz="UTC")


def _all_stored(lab: iotlab.Platform, devices) -> pd.DataFrame:
    """Every stored reading of ``devices`` (at the URL's consistency)."""
    return pd.concat([lab.readings(d) for d in devices], ignore_index=True)


def _counts(lab, readings: pd.DataFrame) -> tuple[int, int, int]:
    """(stored, lost, doubled) of ``readings``: lost are expected keys not stored (or with
    another value); doubled are readings the hour roll-ups count more than once."""
    devices = sorted(readings["device_id"].unique())
    stored = _all_stored(lab, devices)
    key = ["device_id", "sensor_id", "ts"]
    assert not stored.duplicated(key).any()
    both = readings.merge(stored, on=key, how="left", suffixes=("", "_stored"))
    same = np.isclose(both["value"], both["value_stored"])
    lost = int((both["value_stored"].isna() | ~same).sum())
    end = START + pd.Timedelta("7D")
    hours = pd.concat([lab.rollups(d, start=START, end=end) for d in devices])
    doubled = int(hours["count"].sum()) - len(stored)
    return len(stored), lost, doubled


def _at_all(url: str) -> str:
    return f"{url}&consistency=ALL"


def _hint_files(cluster, node: int, host_id) -> int:
    """Hint files the other nodes hold on disk for ``node`` (named by its host id).

    The disk, not ``system_views.pending_hints``: that table lists a file only once its
    writer is closed, and a node closes the writer of a target it believes down only
    when the target is back, so it showed nothing for hints written after the failure
    detector had marked the node down."""
    pattern = f"{host_id}-*.hints"
    return sum(
        len(list((Path(cluster.base) / f"node{i}" / "data" / "hints").glob(pattern)))
        for i in range(1, len(cluster.hosts) + 1)
        if i != node
    )


def _host_id(lab: iotlab.Platform, cluster, node: int):
    hosts = lab.store.connection.cluster.metadata.all_hosts()
    return next(h.host_id for h in hosts if h.address == cluster.address(node))


def _wait_for_hints(cluster, node: int, host_id, condition, what: str) -> None:
    """Wait until ``condition(hint files for node)`` holds; say what was seen if not."""
    seen: list[int] = []

    def check() -> bool:
        seen.append(_hint_files(cluster, node, host_id))
        return condition(seen[-1])

    try:
        wait_until(check, 180, what, every=2)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; hint files seen: {seen[-10:]}") from None


def test_ingest_survives_a_node_killed_mid_write(cluster, fault_counts) -> None:
    fleet = Fleet(6, seed=11, faults=FaultConfig.none())
    readings = fleet.simulate(START, days=2, freq="1min").readings
    url = cluster.url()
    slices = np.array_split(np.arange(len(readings)), 12)
    with iotlab.connect(url) as lab:
        lab.provision(fleet)
        done, results, errors = threading.Event(), [], []
        third = threading.Event()

        def ingest() -> None:
            try:
                for i, rows in enumerate(slices):
                    results.append(lab.ingest(readings.iloc[rows], progress=False))
                    if i == 2:
                        third.set()
            except Exception as exc:  # reported below
                errors.append(exc)
            finally:
                third.set()
                done.set()

        worker = threading.Thread(target=ingest)
        worker.start()
        third.wait(300)
        assert not done.is_set(), "the ingest ended before the node was killed"
        cluster.kill(3)
        try:
            worker.join(600)
            assert errors == [], errors
            assert sum(r.written for r in results) == len(readings)
            assert all(r.rejected.empty for r in results)
            # The event store's conditional writes (Paxos v2) work with the node down.
            more = Fleet(2, seed=12, faults=FaultConfig.none())
            assert len(lab.provision(more)) == 2
            # the others keep what node 3 missed (hint files are flushed every 10 s)
            node3 = _host_id(lab, cluster, 3)
            _wait_for_hints(cluster, 3, node3, lambda n: n > 0, "hints for node 3")
        finally:
            cluster.start()
    _wait_for_hints(cluster, 3, node3, lambda n: n == 0, "hints replayed to node 3")
    with iotlab.connect(_at_all(url)) as lab:  # every replica answers, node 3 included
        stored, lost, doubled = _counts(lab, readings)
        assert len(lab.store.read_rows("devices")) == 8
    fault_counts.append(("kill -9 during Platform.ingest", stored, lost, doubled))
    assert (stored, lost, doubled) == (len(readings), 0, 0)


def test_serve_survives_a_node_killed_mid_stream(cluster, mqtt_contact, tmp_path, fault_counts):
    fleet = Fleet(3, seed=13, faults=FaultConfig.none())
    readings = _ordered(fleet.simulate(START, days=6 / 24, freq="1min").readings)
    url = cluster.url()
    mqtt = f"mqtt://{mqtt_contact[0]}:{mqtt_contact[1]}"
    tag = uuid.uuid4().hex[:8]
    root, log = f"cluster-{tag}", tmp_path / "serve.log"
    devices = list(fleet.devices["device_id"])
    first, second, third = (readings.iloc[p] for p in np.array_split(np.arange(len(readings)), 3))
    with iotlab.connect(url) as lab:
        lab.provision(fleet)
        node2 = _host_id(lab, cluster, 2)
        serve = _serve(mqtt, url, f"cluster-{tag}", root, log)

        def stored() -> int:
            assert serve.poll() is None, log.read_text()[-5000:]
            return len(_all_stored(lab, devices))

        try:
            wait_until(lambda: "serving" in log.read_text(), 120, "serve to start")
            with Publisher(mqtt, topic_root=root) as publisher:
                publisher.publish_readings(first)
                wait_until(lambda: stored() >= len(first) // 2, 120, "the stream to flow")
                cluster.kill(2)  # mid-stream: readings of `first` are still arriving
                publisher.publish_readings(second)
            half = len(first) + len(second)
            wait_until(lambda: stored() == half, 180, "stored with a node down")
            cluster.start()
            with Publisher(mqtt, topic_root=root) as publisher:
                publisher.publish_readings(third)
            wait_until(lambda: stored() == len(readings), 180, "every reading stored")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- serve log ---\n{log.read_text()[-6000:]}") from exc
        finally:
            serve.send_signal(signal.SIGTERM)
            serve.wait(60)
        assert serve.returncode == 0, log.read_text()[-5000:]
    _wait_for_hints(cluster, 2, node2, lambda n: n == 0, "hints replayed to node 2")
    with iotlab.connect(_at_all(url)) as lab:
        stored_n, lost, doubled = _counts(lab, readings)
    fault_counts.append(("kill -9 during iotlab serve", stored_n, lost, doubled))
    assert (stored_n, lost, doubled) == (len(readings), 0, 0)


def test_two_nodes_down_is_a_clear_error_and_the_service_waits(cluster, fault_counts) -> None:
    fleet = Fleet(2, seed=17, faults=FaultConfig.none())
    readings = fleet.simulate(START, days=2 / 24, freq="1min").readings
    before, during = readings.iloc[: len(readings) // 2], readings.iloc[len(readings) // 2 :]
    url = cluster.url(request_timeout="10")
    with iotlab.connect(url) as lab:
        lab.provision(fleet)
        lab.ingest(before, progress=False)
        cluster.kill(2)
        cluster.kill(3)
        try:
            _while_two_are_down(cluster, lab, during)
        finally:
            cluster.start()
        stored, lost, doubled = _counts(lab, readings)
    fault_counts.append(("two of three nodes down (service waited)", stored, lost, doubled))
    assert (stored, lost, doubled) == (len(readings), 0, 0)


def _while_two_are_down(cluster, lab, during: pd.DataFrame) -> None:
    """Ingest fails with a clear error; the service holds the batch until the nodes are back."""
    # A quorum of three needs two replicas: the error says so.
    expected = "did not answer while .*: too few replicas alive: LOCAL_QUORUM needs 2, 1 alive"
    with pytest.raises(StoreUnavailableError, match=expected):
        lab.ingest(during, progress=False)
    acked = []
    service = lab.ingestion_service(
        scoring=None, connectivity_every=None, max_delay=0.05, retry_max=2.0
    ).start()
    try:
        service.submit(during, ack=lambda: acked.append("batch"))
        wait_until(lambda: service.status.state == "store unavailable", 120, "the outage")
        assert service.running and acked == []  # waiting, nothing dropped or acked
        cluster.start()
        service.flush(timeout=300)
        assert service.status.state == "running" and acked == ["batch"]
    finally:
        service.stop(timeout=60)
    assert service.error is None
