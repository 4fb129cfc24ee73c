"""A tiny simulated fleet, loaded once per backend for the report tests (as in tests/analytics).

Six devices with heartbeats every 1 or 5 minutes, two days at 5 minutes, one offline
period per device per day on average; anomalies found by the fast rolling z-score
baseline (these tests are about arithmetic, not about Prophet).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass

import pandas as pd
import pytest

import iotlab
from iotlab.simulate import FaultConfig, Fleet, Simulation

START = pd.Timestamp("2026-01-05", tz="UTC")
END = START + pd.Timedelta("2D")


@dataclass
class Loaded:
    lab: iotlab.Platform
    fleet: Fleet
    sim: Simulation
    anomalies: pd.DataFrame


@pytest.fixture(scope="session")
def tiny_fleet() -> tuple[Fleet, Simulation]:
    fleet = Fleet(
        6,
        seed=3,
        device_types=["machine_monitor", "environmental"],
        faults=FaultConfig(rates={"offline": 1.0}),
    )
    return fleet, fleet.simulate(START, days=2, freq="5min")


def load(lab: iotlab.Platform, fleet: Fleet, sim: Simulation) -> pd.DataFrame:
    """Provision, ingest readings and heartbeats, detect; return the anomalies."""
    from iotlab.detect import RollingZScoreDetector

    lab.provision(fleet)
    assert lab.ingest(sim.readings, progress=False).rejected.empty
    assert lab.ingest_metrics(sim.device_metrics, progress=False).rejected.empty
    found = lab.detect_anomalies(START, END, detector=RollingZScoreDetector(), progress=False)
    stored = lab.anomalies(START, END)
    assert len(stored) == len(found) > 0
    return stored


def fresh_url(backend: str, request: pytest.FixtureRequest, tmp_path_factory) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('lab') / 'iotlab.db'}"
    host, port = request.getfixturevalue("cassandra_contact")
    keyspace = f"t_{uuid.uuid4().hex[:16]}"
    request.getfixturevalue("cassandra_keyspaces").append(keyspace)
    return f"cassandra://{host}:{port}/{keyspace}?replication_factor=1"


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("cassandra", marks=pytest.mark.cassandra)]
)
def loaded(request, tmp_path_factory, tiny_fleet) -> Iterator[Loaded]:
    """The tiny fleet in a fresh store of each backend, shared by a module's tests."""
    fleet, sim = tiny_fleet
    with iotlab.connect(fresh_url(request.param, request, tmp_path_factory)) as lab:
        yield Loaded(lab, fleet, sim, load(lab, fleet, sim))


@pytest.fixture
def load_fresh(request, tmp_path_factory, tiny_fleet) -> Iterator[Callable[[str], Loaded]]:
    """``load_fresh(backend)``: the tiny fleet in a new store of ``backend``, closed after."""
    fleet, sim = tiny_fleet
    with ExitStack() as stack:

        def make(backend: str) -> Loaded:
            url = fresh_url(backend, request, tmp_path_factory)
            lab = stack.enter_context(iotlab.connect(url))
            return Loaded(lab, fleet, sim, load(lab, fleet, sim))

        yield make
