"""Fleet-wide detection on a real store: parallel core, failures, idempotent writes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from iotlab.detect import RollingZScoreDetector
from iotlab.detect.fleet import detect_anomalies, episodes_many
from iotlab.store import open_store
from iotlab.store.lifecycle import read_anomalies

from .conftest import NOISE, seasonal_series


def _series_set() -> dict[tuple[str, str], pd.DataFrame]:
    good = seasonal_series(days=2)
    good.loc[300, "value"] += 20 * NOISE
    other = seasonal_series(days=2, seed=1)
    other.loc[[100, 400], "value"] -= 20 * NOISE
    empty = good.iloc[:0]
    return {("dev-a", "temp_01"): good, ("dev-b", "temp_01"): other, ("dev-c", "temp_01"): empty}


def test_episodes_many_reports_failures_and_keeps_going():
    series = _series_set()
    events, failures = episodes_many(series, RollingZScoreDetector(), n_jobs=1, progress=False)
    assert events.groupby("device_id")["ts"].apply(list).to_dict() == {
        "dev-a": [series["dev-a", "temp_01"]["ts"][300]],
        "dev-b": [series["dev-b", "temp_01"]["ts"][i] for i in (100, 400)],
    }
    assert failures[["device_id", "sensor_id"]].values.tolist() == [["dev-c", "temp_01"]]
    assert "no finite values" in failures["error"].iloc[0]


def test_process_pool_gives_the_same_events_as_serial():
    series = _series_set()
    serial = episodes_many(series, RollingZScoreDetector(), n_jobs=1, progress=False)
    parallel = episodes_many(series, RollingZScoreDetector(), n_jobs=2, progress=False)
    pd.testing.assert_frame_equal(serial.rows, parallel.rows)
    pd.testing.assert_frame_equal(serial.failures, parallel.failures)


@pytest.fixture
def store(tmp_path):
    with open_store(f"sqlite:///{tmp_path / 'fleet.db'}") as opened:
        yield opened


def _load(store, series) -> None:
    sensors, readings = [], []
    for (device_id, sensor_id), frame in series.items():
        sensors.append(
            {
                "device_id": device_id,
                "sensor_id": sensor_id,
                "sensor_type": "temperature",
                "unit": "C",
                "min_value": 0.0,
                "max_value": 40.0,
                "calibration_date": pd.Timestamp("2026-01-01", tz="UTC"),
                "added_at": pd.Timestamp("2026-01-01", tz="UTC"),
            }
        )
        readings.append(
            frame.assign(device_id=device_id, sensor_id=sensor_id, quality=100, status="ok")
        )
    store.write_rows("sensors", pd.DataFrame(sensors))
    rows = pd.concat(readings, ignore_index=True)
    rows["ts"] = rows["ts"].astype("datetime64[ms, UTC]")
    store.write_rows(
        "readings", rows[["device_id", "sensor_id", "ts", "value", "quality", "status"]]
    )


def test_detect_anomalies_writes_both_tables_idempotently(store):
    series = _series_set()
    _load(store, series)
    start, end = "2026-01-05", "2026-01-08"
    events = detect_anomalies(
        store, start=start, end=end, detector=RollingZScoreDetector(), progress=False
    )
    assert len(events) == 3
    assert set(events["status"]) == {"open"} and set(events["detector"]) == {"rolling_zscore"}
    assert events.attrs["failures"]["device_id"].tolist() == ["dev-c"]
    fleet = read_anomalies(store, start=start, end=end)
    one = read_anomalies(store, start=start, end=end, devices=["dev-b"])
    assert len(fleet) == 3 and len(one) == 2
    assert np.allclose(np.sort(fleet["value"]), np.sort(events["value"]))
    assert set(fleet["severity"]) <= {"low", "medium", "high", "critical"}
    detect_anomalies(store, start=start, end=end, detector=RollingZScoreDetector(), progress=False)
    assert len(read_anomalies(store, start=start, end=end)) == 3  # re-running writes the same rows


def test_platform_detects_with_prophet_on_every_backend(platform):
    """Provision, ingest and detect on SQLite and Cassandra: the anomalies tables hold
    exactly the returned events, a re-run writes the same rows, a series is found
    anomalous where a fault was injected."""
    from iotlab.detect import ProphetResidualDetector
    from iotlab.simulate import FaultConfig, Fleet

    fleet = Fleet(2, seed=5, device_types=["environmental"], faults=FaultConfig(kinds=["spike"]))
    sim = fleet.simulate("2026-01-05", days=3, freq="10min")
    platform.provision(fleet)
    assert platform.ingest(sim.readings, progress=False).rejected.empty
    start, end = "2026-01-05", "2026-01-08"
    events = platform.detect_anomalies(
        start=start, end=end, detector=ProphetResidualDetector(), progress=False
    )
    assert events.attrs["failures"].empty
    assert set(events["detector"]) == {"prophet"}
    stored = platform.anomalies(start=start, end=end)
    assert len(stored) == len(events) >= 1

    def keys(frame: pd.DataFrame) -> list[tuple[str, str, pd.Timestamp]]:
        return sorted(zip(frame["device_id"], frame["sensor_id"], pd.to_datetime(frame["ts"])))

    assert keys(stored) == keys(events)
    # Most injected spikes are found (each label window holds an event's extent).
    spikes = sim.labels[sim.labels["kind"] == "spike"]
    found = sum(
        (
            (events["device_id"] == s.device_id)
            & (events["sensor_id"] == s.sensor_id)
            & (events["start"] <= s.start)
            & (events["end"] >= s.start)
        ).any()
        for s in spikes.itertuples()
    )
    assert found >= 0.8 * len(spikes)
    platform.detect_anomalies(
        start=start, end=end, detector=ProphetResidualDetector(), progress=False
    )
    assert len(platform.anomalies(start=start, end=end)) == len(events)
