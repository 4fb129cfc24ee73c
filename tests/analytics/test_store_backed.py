"""Device metrics and fleet overview on a loaded store, checked against the simulator's
raw data and ground truth (both backends)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from iotlab.analytics import SEVERITIES, fleet_overview, rollup_statistics
from iotlab.errors import NotFoundError, ValidationError

START = pd.Timestamp("2026-01-05", tz="UTC")  # the window of the conftest's fleet
END = START + pd.Timedelta("2D")


def _raw(loaded, device_id: str, start=START, end=END) -> pd.DataFrame:
    rows = loaded.sim.readings
    mask = (rows["device_id"] == device_id) & (rows["ts"] >= start) & (rows["ts"] < end)
    return rows[mask]


def test_metrics_equal_pandas_on_the_raw_data(loaded) -> None:
    start, end = START + pd.Timedelta("3h17min20s"), END - pd.Timedelta("5h")
    for device_id in loaded.fleet.devices["device_id"]:
        metrics = loaded.lab.device_metrics(device_id, start=start, end=end)
        got = metrics.to_frame().set_index("sensor_id")
        raw = _raw(loaded, device_id, start, end)
        assert sorted(got.index) == sorted(raw["sensor_id"].unique())
        for sensor, values in raw.groupby("sensor_id")["value"]:
            row = got.loc[sensor]
            assert row["count"] == len(values)
            assert (row["min"], row["max"]) == (values.min(), values.max())
            assert row["mean"] == pytest.approx(values.mean(), rel=1e-12)
            assert row["median"] == pytest.approx(values.median(), rel=1e-12)
            assert row["std"] == pytest.approx(values.std(), rel=1e-9)
            assert row["p05"] == pytest.approx(values.quantile(0.05), rel=1e-12)
            assert row["p95"] == pytest.approx(values.quantile(0.95), rel=1e-12)


def test_uptime_matches_the_simulated_offline_periods(loaded) -> None:
    labels = loaded.sim.labels
    offline = labels[labels["kind"] == "offline"]
    window = END - START
    checked_gaps = 0
    for device in loaded.fleet.devices.itertuples():
        metrics = loaded.lab.device_metrics(device.device_id, start=START, end=END)
        interval = pd.Timedelta(device.heartbeat_interval)
        assert metrics.heartbeat_interval == interval
        spans = offline[offline["device_id"] == device.device_id]
        down = sum(
            (min(e, END) - max(s, START) for s, e in zip(spans["start"], spans["end"])),
            pd.Timedelta(0),
        )
        checked_gaps += len(spans)
        expected = 1 - down / window
        tolerance = interval * max(1, len(spans)) / window
        assert abs(metrics.uptime - expected) <= tolerance, device.device_id
    assert checked_gaps >= 3  # the fixture really has offline periods


def test_metrics_anomalies_status_and_last_seen(loaded) -> None:
    for device_id in loaded.fleet.devices["device_id"]:
        metrics = loaded.lab.device_metrics(device_id, start=START, end=END)
        mine = loaded.anomalies[loaded.anomalies["device_id"] == device_id]
        assert metrics.anomalies == {s: int((mine["severity"] == s).sum()) for s in SEVERITIES}
        projected = loaded.lab.store.read_rows("devices", {"device_id": device_id})
        assert metrics.status == projected["status"].iloc[0]
        beats = loaded.sim.device_metrics
        assert metrics.last_seen >= beats.loc[beats["device_id"] == device_id, "ts"].max()
        assert f"Device {device_id}" in metrics._repr_html_()
    assert loaded.anomalies["severity"].isin(SEVERITIES).all() and len(loaded.anomalies)


def test_metrics_default_window_is_the_data_extent(loaded) -> None:
    device_id = loaded.fleet.devices["device_id"].iloc[0]
    metrics = loaded.lab.device_metrics(device_id)
    raw = _raw(loaded, device_id)
    assert int(metrics.sensors["count"].sum()) == len(raw)
    assert metrics.start <= raw["ts"].min()


def test_metrics_errors(loaded) -> None:
    with pytest.raises(NotFoundError, match="unknown device 'nope'"):
        loaded.lab.device_metrics("nope", start=START, end=END)
    device_id = loaded.fleet.devices["device_id"].iloc[0]
    with pytest.raises(ValidationError, match="end: must be after start"):
        loaded.lab.device_metrics(device_id, start=END, end=START)


def test_rollup_statistics_equal_pandas_for_unaligned_windows(loaded) -> None:
    device_id = loaded.fleet.devices["device_id"].iloc[1]
    for start, end in [
        (START + pd.Timedelta("59min30s"), END - pd.Timedelta("1h0min10s")),
        (START + pd.Timedelta("10min"), START + pd.Timedelta("40min")),
        (START, END),
    ]:
        got = rollup_statistics(loaded.lab.store, device_id, start, end).set_index("sensor_id")
        raw = _raw(loaded, device_id, start, end).groupby("sensor_id")["value"]
        expected = raw.agg(["count", "min", "max", "mean"])
        assert got["count"].to_dict() == expected["count"].to_dict()
        assert got["min"].to_dict() == expected["min"].to_dict()
        assert got["max"].to_dict() == expected["max"].to_dict()
        np.testing.assert_allclose(got["mean"], expected["mean"], rtol=1e-12)


def test_overview_counts_equal_the_projections(loaded) -> None:
    now = START + pd.Timedelta("1D13h7min")
    overview = loaded.lab.fleet_overview(now=now)
    devices = loaded.lab.store.read_rows("devices")
    assert overview.devices == len(devices) == len(loaded.fleet.devices)
    assert dict(zip(overview.by_status["status"], overview.by_status["count"])) == (
        devices["status"].value_counts().to_dict()
    )
    assert dict(zip(overview.by_type["device_type"], overview.by_type["count"])) == (
        devices["device_type"].value_counts().to_dict()
    )
    assert overview.active == int((devices["status"] == "active").sum())
    assert sorted(overview.offline["device_id"]) == sorted(
        devices.loc[devices["status"] == "offline", "device_id"]
    )
    rows = loaded.sim.readings
    recent = rows[(rows["ts"] >= now - pd.Timedelta("24h")) & (rows["ts"] < now)]
    assert overview.readings == len(recent)
    per_device = overview.readings_by_device.set_index("device_id")["readings"]
    assert per_device.to_dict() == recent.groupby("device_id").size().to_dict()


def test_overview_anomalies_and_noisiest(loaded) -> None:
    now = END
    overview = fleet_overview(loaded.lab.store, now=now, top=3)
    anomalies = loaded.anomalies[loaded.anomalies["ts"] >= now - pd.Timedelta("24h")]
    assert overview.anomalies == {s: int((anomalies["severity"] == s).sum()) for s in SEVERITIES}
    counts = anomalies.groupby("device_id").size()
    assert overview.noisiest["anomalies"].tolist() == sorted(counts, reverse=True)[:3]
    assert len(overview.noisiest) == min(3, len(counts))
    frame = overview.to_frame().set_index("metric")["value"]
    assert frame["devices"] == overview.devices
    assert set(overview.tables()) >= {"devices_by_status", "noisiest_devices", "summary"}
    assert "Fleet overview" in overview._repr_html_()


def test_overview_of_an_empty_store_is_valid(platform) -> None:
    overview = platform.fleet_overview(now="2026-01-01")
    assert (overview.devices, overview.active, overview.readings) == (0, 0, 0)
    assert overview.anomalies == dict.fromkeys(SEVERITIES, 0)
    assert overview.by_status.empty and overview.noisiest.empty
