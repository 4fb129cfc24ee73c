"""Device health, data quality and "needs attention", on simulated faults with labels."""

from __future__ import annotations

import pandas as pd
import pytest

import iotlab
from iotlab.analytics.health import data_quality, fleet_health_check
from iotlab.simulate import FaultConfig, Fleet

START = pd.Timestamp("2026-01-05", tz="UTC")


@pytest.fixture(scope="module")
def drained():
    fleet = Fleet(
        6,
        seed=5,
        device_types=["environmental"],
        faults=FaultConfig(kinds=["battery_drain", "offline"], rates={"battery_drain": 0.4}),
    )
    return fleet, fleet.simulate(START, days=4, freq="5min")


def test_drain_and_offline_faults_need_attention_first(platform, drained):
    fleet, sim = drained
    lab: iotlab.Platform = platform
    lab.provision(fleet)
    lab.ingest(sim.readings, progress=False)
    lab.ingest_metrics(sim.device_metrics, progress=False)
    devices = lab.store.read_rows("devices")
    labels = sim.labels
    drains = labels[labels["kind"] == "battery_drain"]
    assert len(drains) >= 2
    checked = 0
    for label in labels.itertuples():
        if label.kind == "battery_drain":
            # Half way down, hours before the device falls silent.
            at = label.start + (label.end - label.start) / 2
            expected = "battery"
        else:
            at = label.start + pd.Timedelta("25min")
            if label.end <= at:
                continue
            expected = "silent since"
        health = fleet_health_check(
            lab.store, at - pd.Timedelta("1D"), at, devices=devices, anomalies=pd.DataFrame()
        )
        attention = health.attention
        assert label.device_id in set(attention["device_id"]), (label, attention)
        mine = attention.set_index("device_id").loc[label.device_id]
        assert expected in mine["reasons"], mine["reasons"]
        # No device without a fault at that moment ranks above it.
        faulty_now = set(labels[(labels["start"] <= at) & (labels["end"] > at)]["device_id"])
        above = attention[attention["rank"] < mine["rank"]]["device_id"]
        assert set(above) <= faulty_now
        checked += 1
    assert checked >= len(drains)


def test_last_seen_follows_heartbeats(platform, drained):
    fleet, sim = drained
    lab: iotlab.Platform = platform
    lab.provision(fleet)
    assert lab.store.read_rows("devices")["last_seen"].isna().all()
    lab.ingest_metrics(sim.device_metrics, progress=False)
    newest = sim.device_metrics.groupby("device_id")["ts"].max()
    seen = lab.store.read_rows("devices").set_index("device_id")["last_seen"]
    assert (seen.reindex(newest.index) == newest).all()
    # A lifecycle event rewrites the device's projection row; last_seen stays.
    lab.rebuild_projections()
    again = lab.store.read_rows("devices").set_index("device_id")["last_seen"]
    assert (again.reindex(newest.index) == newest).all()
    # Old heartbeats replayed never move it back.
    lab.ingest_metrics(sim.device_metrics.head(50), progress=False)
    assert (lab.store.read_rows("devices").set_index("device_id")["last_seen"] == again).all()


def test_data_quality_finds_stuck_sensors_and_dropouts():
    fleet = Fleet(
        6,
        seed=11,
        device_types=["environmental"],
        faults=FaultConfig(kinds=["stuck", "dropout"], rates={"stuck": 0.5, "dropout": 0.5}),
    )
    sim = fleet.simulate(START, days=3, freq="5min")
    sensors = pd.DataFrame(
        {"sensor_id": sim.readings["sensor_id"].unique(), "min_value": -1e9, "max_value": 1e9}
    )
    labels = sim.labels[sim.labels["end"] - sim.labels["start"] >= pd.Timedelta("1h")]
    assert {"stuck", "dropout"} <= set(labels["kind"])
    for label in labels.itertuples():
        window = sim.readings[
            (sim.readings["device_id"] == label.device_id)
            & (sim.readings["sensor_id"] == label.sensor_id)
            & (sim.readings["ts"] >= label.start - pd.Timedelta("2h"))
            & (sim.readings["ts"] < label.end + pd.Timedelta("2h"))
        ]
        found = data_quality(window, sensors).set_index("sensor_id").loc[label.sensor_id]
        if label.kind == "stuck":
            assert abs(found["stuck_since"] - label.start) <= pd.Timedelta("5min"), label
        else:
            assert found["gaps"] >= 1 and found["longest_gap"] >= pd.Timedelta("1h"), label


def test_device_metrics_carry_health(platform, drained):
    fleet, sim = drained
    lab: iotlab.Platform = platform
    lab.provision(fleet)
    lab.ingest_metrics(sim.device_metrics, progress=False)
    drain = sim.labels[sim.labels["kind"] == "battery_drain"].iloc[0]
    at = drain["start"] + (drain["end"] - drain["start"]) / 2
    metrics = lab.device_metrics(drain["device_id"], start=at - pd.Timedelta("1D"), end=at)
    beats = sim.device_metrics[
        (sim.device_metrics["device_id"] == drain["device_id"]) & (sim.device_metrics["ts"] < at)
    ]
    summary = metrics.summary()
    last = beats.iloc[-1]
    for column in ("battery", "cpu", "memory", "signal"):
        assert summary[column] == pytest.approx(last[column])
    # Half way down a linear drain: about as long again to empty.
    left = (drain["end"] - at) / pd.Timedelta("1D")
    assert summary["battery_days_to_empty"] == pytest.approx(left, rel=0.25)
    assert "battery empty in" in metrics._repr_html_()
