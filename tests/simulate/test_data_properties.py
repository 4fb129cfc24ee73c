"""Properties of the simulated data: seasonality, ranges, faults visible where labelled."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from iotlab.simulate import FAULT_KINDS, SENSOR_PREFIXES, FaultConfig, Fleet, Simulation

STEP = pd.Timedelta("5min")
WINDOW = 12  # readings on each side a fault must stand out of


@pytest.fixture(scope="module")
def faulty() -> Simulation:
    """Every fault kind, often: 8 devices, 3 days at 5 minutes."""
    rates = dict.fromkeys(FAULT_KINDS, 0.8) | {"battery_drain": 1.0}
    fleet = Fleet(8, seed=11, faults=FaultConfig(rates=rates))
    return fleet.simulate("2026-01-05", days=3, freq=STEP)


@pytest.fixture(scope="module")
def clean() -> Simulation:
    """No faults: 8 devices, 14 days at 15 minutes."""
    return Fleet(8, seed=3, faults=FaultConfig.none()).simulate(
        "2026-01-05", days=14, freq="15min"
    )


def _series(sim: Simulation, device_id: str, sensor_id: str) -> pd.Series:
    rows = sim.readings[
        (sim.readings["device_id"] == device_id) & (sim.readings["sensor_id"] == sensor_id)
    ]
    return pd.Series(rows["value"].to_numpy(), index=pd.DatetimeIndex(rows["ts"]))


def _in_fault(sim: Simulation) -> np.ndarray:
    """Readings inside any labelled fault (device-level faults cover every sensor)."""
    r = sim.readings
    inside = np.zeros(len(r), dtype=bool)
    for label in sim.labels.itertuples():
        same = r["device_id"] == label.device_id
        if isinstance(label.sensor_id, str):
            same &= r["sensor_id"] == label.sensor_id
        inside |= (same & r["ts"].between(label.start, label.end, inclusive="left")).to_numpy()
    return inside


def _robust_z(value: float, reference: np.ndarray) -> float:
    median = np.median(reference)
    mad = 1.4826 * np.median(np.abs(reference - median))
    return (value - median) / mad


def test_every_fault_kind_is_labelled(faulty: Simulation) -> None:
    assert set(faulty.labels["kind"]) == set(FAULT_KINDS)
    device_level = faulty.labels["kind"].isin(["offline", "battery_drain"])
    assert faulty.labels.loc[device_level, "sensor_id"].isna().all()
    assert faulty.labels.loc[~device_level, "sensor_id"].notna().all()
    assert (faulty.labels["end"] > faulty.labels["start"]).all()


def test_readings_frame_contract(faulty: Simulation) -> None:
    r = faulty.readings
    assert list(r.columns) == ["device_id", "sensor_id", "ts", "value", "quality", "status"]
    assert str(r["ts"].dtype) == "datetime64[ms, UTC]"
    assert r["value"].dtype == np.float64 and r["quality"].dtype == np.int64
    assert r["value"].notna().all()
    assert r["quality"].between(0, 100).all()
    assert set(r["status"]) <= {"ok", "maintenance"}
    keys = r[["device_id", "sensor_id", "ts"]]
    assert keys.equals(keys.sort_values(["device_id", "sensor_id", "ts"], ignore_index=True))
    assert not keys.duplicated().any()


@pytest.mark.parametrize("kind", ["spike", "dip"])
def test_spikes_and_dips_stand_out(faulty: Simulation, kind: str) -> None:
    labels = faulty.labels[faulty.labels["kind"] == kind]
    assert len(labels) >= 5
    for label in labels.itertuples():
        series = _series(faulty, label.device_id, label.sensor_id)
        around = pd.concat(
            [
                series[label.start - WINDOW * STEP : label.start - STEP],
                series[label.end : label.end + (WINDOW - 1) * STEP],
            ]
        )
        z = _robust_z(series[label.start], around.to_numpy())
        assert (z > 5) if kind == "spike" else (z < -5), (label, z)


def test_level_shifts_and_drifts_stand_out(faulty: Simulation) -> None:
    labels = faulty.labels[faulty.labels["kind"].isin(["level_shift", "drift"])]
    assert labels["kind"].nunique() == 2
    for label in labels.itertuples():
        series = _series(faulty, label.device_id, label.sensor_id)
        inside = series[label.start : label.end - STEP]
        if label.kind == "level_shift":  # the jump at the start
            value = np.median(inside.to_numpy()[:3])
            reference = series[label.start - WINDOW * STEP : label.start - STEP]
        else:  # the accumulated drift at the end, against the recovered sensor
            value = np.median(inside.to_numpy()[-3:])
            reference = series[label.end : label.end + (WINDOW - 1) * STEP]
        assert len(reference) == WINDOW
        assert abs(_robust_z(value, reference.to_numpy())) > 5, label


def test_stuck_sensors_repeat_one_value_and_healthy_ones_never_do(faulty: Simulation) -> None:
    labels = faulty.labels[faulty.labels["kind"] == "stuck"]
    assert len(labels) > 0
    for label in labels.itertuples():
        inside = _series(faulty, label.device_id, label.sensor_id)[label.start : label.end - STEP]
        assert len(inside) >= 4 and inside.nunique() == 1, label
    # Outside faults, no two consecutive readings are equal (noise is continuous).
    r = faulty.readings
    same = (r["value"].diff() == 0) & (r["sensor_id"] == r["sensor_id"].shift())
    same &= r["device_id"] == r["device_id"].shift()
    assert same.sum() >= labels.shape[0] * 3
    assert not (same.to_numpy() & ~_in_fault(faulty)).any()


def test_noise_bursts_raise_the_spread(faulty: Simulation) -> None:
    labels = faulty.labels[faulty.labels["kind"] == "noise_burst"]
    assert len(labels) > 0
    for label in labels.itertuples():
        series = _series(faulty, label.device_id, label.sensor_id)
        inside = np.diff(series[label.start : label.end - STEP].to_numpy())
        before = np.diff(series[label.start - WINDOW * STEP : label.start - STEP].to_numpy())
        after = np.diff(series[label.end : label.end + (WINDOW - 1) * STEP].to_numpy())
        quiet = np.median(np.abs(np.concatenate([before, after])))
        assert np.median(np.abs(inside)) > 3 * quiet, label


def test_dropouts_are_missing_rows_of_one_sensor(faulty: Simulation) -> None:
    labels = faulty.labels[faulty.labels["kind"] == "dropout"]
    assert len(labels) > 0
    for label in labels.itertuples():
        series = _series(faulty, label.device_id, label.sensor_id)
        assert len(series[label.start : label.end - pd.Timedelta("1ms")]) == 0
        assert label.start - STEP in series.index and label.end in series.index
        others = faulty.readings[
            (faulty.readings["device_id"] == label.device_id)
            & (faulty.readings["sensor_id"] != label.sensor_id)
            & faulty.readings["ts"].between(label.start, label.end, inclusive="left")
        ]
        assert len(others) > 0  # the device itself was online


def test_offline_periods_have_no_readings_and_no_heartbeats(faulty: Simulation) -> None:
    labels = faulty.labels[faulty.labels["kind"] == "offline"]
    assert len(labels) >= 3
    for label in labels.itertuples():
        for frame in (faulty.readings, faulty.device_metrics):
            mine = frame[frame["device_id"] == label.device_id]
            assert not mine["ts"].between(label.start, label.end, inclusive="left").any()
            assert (mine["ts"] < label.start).any()  # it was online before


def test_battery_drain_ends_offline(faulty: Simulation) -> None:
    labels = faulty.labels[faulty.labels["kind"] == "battery_drain"]
    assert len(labels) > 0
    for label in labels.itertuples():
        beats = faulty.device_metrics[faulty.device_metrics["device_id"] == label.device_id]
        falling = beats[beats["ts"].between(label.start, label.end, inclusive="left")]
        assert len(falling) > 10
        assert (np.diff(falling["battery"].to_numpy()) < 0).all()
        assert falling["battery"].iloc[-1] < 5
        offline = faulty.labels[
            (faulty.labels["device_id"] == label.device_id)
            & (faulty.labels["kind"] == "offline")
            & (faulty.labels["start"] == label.end)
        ]
        assert len(offline) == 1


def test_values_stay_in_sensor_range_outside_faults(faulty: Simulation, clean: Simulation) -> None:
    for sim in (faulty, clean):
        r = sim.readings.merge(sim.sensors, on=["device_id", "sensor_id"], how="left")
        normal = r[~_in_fault(sim)]
        # Ranges hold because the signals are designed to, not because they were clipped.
        at_limit = (normal["value"] == normal["min_value"]) | (
            normal["value"] == normal["max_value"]
        )
        assert at_limit.mean() < 1e-3


def test_daily_seasonality(clean: Simulation) -> None:
    """A day-apart autocorrelation that is high, and higher than half a day apart."""
    per_day = 96  # 15-minute readings
    for (_, _), rows in clean.readings.groupby(["device_id", "sensor_id"]):
        x = rows["value"].to_numpy()
        day = np.corrcoef(x[:-per_day], x[per_day:])[0, 1]
        half = np.corrcoef(x[: -per_day // 2], x[per_day // 2 :])[0, 1]
        assert day > 0.5 and day > half + 0.2, (rows["sensor_id"].iloc[0], day, half)


def test_weekly_cycle_and_correlated_sensors(clean: Simulation) -> None:
    assert clean.devices["device_type"].nunique() == 4
    r = clean.readings.merge(clean.devices[["device_id", "device_type"]], on="device_id")
    r["weekend"] = r["ts"].dt.day_of_week >= 5
    r["office"] = r["ts"].dt.hour.between(10, 16)
    offices = r[r["device_type"].isin(["air_quality", "power_meter"]) & r["office"]]
    by = offices.groupby(["sensor_id", "weekend"])["value"].mean().unstack()
    assert by.loc["co2_01", False] > by.loc["co2_01", True] + 200
    assert by.loc["power_01", False] > 2 * by.loc["power_01", True]
    env = r[r["device_type"] == "environmental"].pivot_table(
        index=["device_id", "ts"], columns="sensor_id", values="value"
    )
    assert env["temp_01"].corr(env["humidity_01"]) < -0.5


def test_sensor_ids_follow_the_prefix_table(faulty: Simulation) -> None:
    for s in faulty.sensors.itertuples():
        prefix = s.sensor_id.rsplit("_", 1)[0]
        assert SENSOR_PREFIXES[prefix] == (s.sensor_type, s.unit, s.min_value, s.max_value)


def test_heartbeats_follow_each_device_interval(faulty: Simulation) -> None:
    beats = faulty.device_metrics
    for device in faulty.devices.itertuples():
        ts = beats.loc[beats["device_id"] == device.device_id, "ts"]
        assert ts.diff().dropna().min() == pd.Timedelta(device.heartbeat_interval)
    assert beats[["cpu", "memory", "battery"]].stack().between(0, 100).all()
    assert beats["signal"].between(-120, -30).all()
