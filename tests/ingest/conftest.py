"""Helpers for ingestion tests: a small provisioned fleet with known spikes."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

import iotlab
from iotlab.simulate import FaultConfig, Fleet

START = pd.Timestamp("2026-01-05", tz="UTC")


@pytest.fixture
def clean_fleet() -> Fleet:
    return Fleet(2, seed=3, faults=FaultConfig.none())


def spiked(
    readings: pd.DataFrame, fleet: Fleet, at: pd.Timestamp, n: int = 3
) -> tuple[pd.DataFrame, tuple[str, str], list[pd.Timestamp]]:
    """Add ``n`` consecutive spikes (40% of the sensor's range) to the first sensor."""
    sensor = fleet.sensors.iloc[0]
    key = (sensor["device_id"], sensor["sensor_id"])
    rows = readings.copy()
    mine = (rows["device_id"] == key[0]) & (rows["sensor_id"] == key[1])
    times = sorted(rows.loc[mine & (rows["ts"] >= at), "ts"])[:n]
    hit = mine & rows["ts"].isin(times)
    rows.loc[hit, "value"] += 0.4 * (sensor["max_value"] - sensor["min_value"])
    assert hit.sum() == n
    return rows, key, list(times)


def per_key_counts(frame: pd.DataFrame, key: list[str]) -> np.ndarray:
    return frame.groupby(key).size().to_numpy()


def two_worker_fleet(store: str, devices: int) -> tuple[Any, list[str], pd.DataFrame]:
    """A clean fleet of ``devices`` provisioned in ``store``: (platform, device ids, two
    hours of its 1-minute readings in publishing order), for the two-worker tests."""
    fleet = Fleet(devices, seed=5, faults=FaultConfig.none())
    lab = iotlab.connect(store)
    lab.provision(fleet)
    readings = fleet.simulate(START, days=2 / 24, freq="1min").readings
    ordered = readings.sort_values(["ts", "device_id", "sensor_id"], ignore_index=True)
    return lab, list(fleet.devices["device_id"]), ordered
