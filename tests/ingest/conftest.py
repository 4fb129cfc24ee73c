"""Helpers for ingestion tests: a small provisioned fleet with known spikes, a broker of
a test's own."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from pathlib import Path
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


class OwnBroker:
    """A Mosquitto broker of one test's own (scripts/mosquitto), to stop, crash and start
    again while the shared one stays up."""

    script = Path(__file__).resolve().parents[2] / "scripts" / "mosquitto"

    def __init__(self, base: Path) -> None:
        self.base = base
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"mqtt://127.0.0.1:{self.port}"
        self.env = {**os.environ, "MQTT_PORT": str(self.port), "MOSQUITTO_BASE": str(base)}

    def _script(self, command: str) -> None:
        result = subprocess.run(
            [str(self.script), command], env=self.env, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, result.stderr[-3000:]

    def start(self) -> None:
        self._script("start")

    def stop(self) -> None:
        """A shutdown: the broker saves its sessions first."""
        self._script("stop")

    def crash(self) -> None:
        """kill -9: sessions since the last save are gone."""
        pid_file = self.base / "mosquitto.pid"
        os.kill(int(pid_file.read_text()), signal.SIGKILL)
        pid_file.unlink()  # as an operator clears it after a crash
