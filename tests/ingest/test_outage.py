"""Store outages in the service, made real with a SQLite database another writer holds
locked: the batch waits (unacknowledged), sources are held, and the service resumes by
itself; stopping during an outage or outlasting ``outage_limit`` behave as documented.
(The Cassandra node crash is in test_faults.py.)"""

from __future__ import annotations

import sqlite3
import time

import pandas as pd
import pytest

import iotlab
from iotlab.errors import StoreUnavailableError
from iotlab.ingest import IngestionService

from .conftest import START


def _until(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@pytest.fixture
def locked_lab(tmp_path, clean_fleet):
    path = tmp_path / "lab.db"
    lab = iotlab.connect(f"sqlite:///{path}?timeout=0.1")
    lab.provision(clean_fleet)
    other = sqlite3.connect(path, isolation_level=None)  # "another process"
    yield lab, other
    if other.in_transaction:
        other.execute("ROLLBACK")
    other.close()
    lab.close()


def _service(lab, **options) -> IngestionService:
    return lab.ingestion_service(
        scoring=None,
        connectivity_every=None,
        max_delay=0.05,
        retry_initial=0.05,
        retry_max=0.2,
        **options,
    )


def _stored(lab, fleet) -> pd.DataFrame:
    return pd.concat([lab.readings(d) for d in fleet.devices["device_id"]], ignore_index=True)


def test_the_service_waits_out_an_outage_and_resumes_by_itself(locked_lab, clean_fleet) -> None:
    lab, other = locked_lab
    readings = clean_fleet.simulate(START, days=1 / 24, freq="1min").readings
    acked = []
    with _service(lab) as service:
        assert service.status.state == "running"
        other.execute("BEGIN IMMEDIATE")
        service.submit(readings, ack=lambda: acked.append("batch"))
        _until(lambda: service.status.state == "store unavailable")
        status = service.status
        assert not status.healthy and "locked" in status.detail
        assert not service.accepting.is_set()  # sources hold back
        assert acked == []  # nothing stored, nothing acknowledged
        other.execute("ROLLBACK")
        service.flush(timeout=60)
        assert service.status.state == "running" and service.accepting.is_set()
    assert service.error is None
    assert acked == ["batch"]
    assert len(_stored(lab, clean_fleet)) == len(readings)
    hours = pd.concat([lab.rollups(d) for d in clean_fleet.devices["device_id"]])
    assert hours["count"].sum() == len(readings)
    assert service.stats.outages == 1 and service.stats.retries >= 1
    assert service.status.state == "stopped"


def test_stopping_during_an_outage_leaves_the_batch_unacknowledged(
    locked_lab, clean_fleet
) -> None:
    lab, other = locked_lab
    readings = clean_fleet.simulate(START, days=1 / 24, freq="1min").readings
    acked = []
    service = _service(lab).start()
    other.execute("BEGIN IMMEDIATE")
    service.submit(readings, ack=lambda: acked.append("batch"))
    _until(lambda: service.status.state == "store unavailable")
    service.stop(timeout=30)
    assert not service.running
    assert service.error is None and service.status.state == "stopped"
    assert acked == []  # its source (the broker) delivers it again
    other.execute("ROLLBACK")
    assert _stored(lab, clean_fleet).empty


def test_an_outage_longer_than_the_limit_is_fatal(locked_lab, clean_fleet) -> None:
    lab, other = locked_lab
    readings = clean_fleet.simulate(START, days=1 / 24, freq="1min").readings
    service = _service(lab, outage_limit=0.5).start()
    other.execute("BEGIN IMMEDIATE")
    service.submit(readings)
    _until(lambda: not service.running)
    assert isinstance(service.error, StoreUnavailableError)
    assert service.status.state == "failed" and not service.status.healthy
    service.stop()
