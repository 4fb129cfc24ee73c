"""Report builders on real stores: numbers, errors, empty fleets, both backends alike."""

from __future__ import annotations

import pandas as pd
import pytest

from iotlab.analytics import SEVERITIES
from iotlab.errors import NotFoundError, ValidationError
from iotlab.reports import REPORT_KINDS, build_report

START = pd.Timestamp("2026-01-05", tz="UTC")  # the window of the conftest's fleet
END = START + pd.Timedelta("2D")
KINDS = sorted(REPORT_KINDS)


def test_fleet_health_numbers(loaded) -> None:
    report = loaded.lab.report("fleet_health", start=START, end=END, generated_at=START)
    devices = report.tables["devices"].set_index("device_id")
    rows = loaded.sim.readings
    assert devices["readings"].to_dict() == rows.groupby("device_id").size().to_dict()
    for device_id, row in devices.iterrows():
        metrics = loaded.lab.device_metrics(device_id, start=START, end=END)
        assert row["uptime"] == metrics.uptime
        assert row["anomalies"] == metrics.total_anomalies
        assert [row[s] for s in SEVERITIES] == list(metrics.anomalies.values())
    worst = report.tables["worst_devices"]
    assert worst["uptime"].tolist() == sorted(devices["uptime"])[: len(worst)]
    summary = report.tables["summary"].set_index("metric")["value"]
    assert summary["devices"] == len(loaded.fleet.devices)
    assert summary["readings (last 48 h)"] == len(rows)
    assert set(report.figures) == {"uptime", "anomalies_over_time"}
    bars = report.figures["anomalies_over_time"].axes[0].patches
    assert sum(p.get_height() for p in bars) == len(loaded.anomalies)


def test_fleet_health_from_rollups_equals_recomputing_from_raw(loaded) -> None:
    start, end = START + pd.Timedelta("7h3min5s"), END - pd.Timedelta("30s")
    fast = loaded.lab.report("fleet_health", start=start, end=end, generated_at=START)
    slow = loaded.lab.report(
        "fleet_health", start=start, end=end, generated_at=START, source="raw"
    )
    for name, table in fast.tables.items():
        pd.testing.assert_frame_equal(table, slow.tables[name], obj=name)


def test_device_performance_numbers(loaded) -> None:
    devices = list(loaded.fleet.devices["device_id"][:2])
    report = loaded.lab.report(
        "device_performance", start=START, end=END, devices=devices, generated_at=START
    )
    sensors = report.tables["sensors"]
    assert sorted(sensors["device_id"].unique()) == sorted(devices)
    raw = loaded.sim.readings[loaded.sim.readings["device_id"].isin(devices)]
    expected = raw.groupby(["device_id", "sensor_id"])["value"]
    got = sensors.set_index(["device_id", "sensor_id"])
    assert got["count"].to_dict() == expected.size().to_dict()
    pd.testing.assert_series_equal(got["median"], expected.median(), check_names=False, rtol=1e-12)
    mine = loaded.anomalies[loaded.anomalies["device_id"].isin(devices)]
    assert len(report.tables["anomalies"]) == len(mine)
    assert sorted(report.figures) == sorted(f"readings_{d}" for d in devices)
    assert report.parameters["devices"] == devices


def test_anomaly_summary_numbers(loaded) -> None:
    report = build_report(
        loaded.lab.store, "anomaly_summary", start=START, end=END, generated_at=START, top=5
    )
    anomalies = loaded.anomalies
    by_severity = report.tables["by_severity"].set_index("severity")["count"]
    assert by_severity.to_dict() == {
        s: int((anomalies["severity"] == s).sum()) for s in SEVERITIES
    }
    by_device = report.tables["by_device"].set_index("device_id")["anomalies"]
    assert by_device.to_dict() == anomalies.groupby("device_id").size().to_dict()
    assert report.tables["by_sensor"]["anomalies"].sum() == len(anomalies)
    top = report.tables["top_anomalies"]
    assert top["score"].tolist() == sorted(anomalies["score"], reverse=True)[:5]


def test_report_errors(loaded) -> None:
    with pytest.raises(NotFoundError, match="known kinds: anomaly_summary, device_perf"):
        loaded.lab.report("weekly", start=START, end=END)
    with pytest.raises(ValidationError, match="end: must be after start"):
        loaded.lab.report("fleet_health", start=END, end=END)
    with pytest.raises(NotFoundError, match="unknown devices .*: ghost"):
        loaded.lab.report("device_performance", start=START, end=END, devices=["ghost"])


@pytest.mark.parametrize("kind", KINDS)
def test_a_fleet_with_no_data_gives_an_empty_valid_report(platform, kind, tmp_path) -> None:
    report = platform.report(kind, start=START, end=END, generated_at=START)
    assert report.kind == kind and report.generated_at == START
    assert report.tables and all(isinstance(t, pd.DataFrame) for t in report.tables.values())
    for name, table in report.tables.items():
        if name not in {"summary", "by_severity", "anomalies_by_severity"}:
            assert table.empty, name
    text = report.to_html(tmp_path / "r.html").read_text()
    assert text.count("data:image/png;base64,") == len(report.figures)
    assert "https://" not in text and "http://" not in text


@pytest.mark.cassandra
def test_reports_are_identical_on_both_backends(load_fresh) -> None:
    sqlite, cassandra = load_fresh("sqlite"), load_fresh("cassandra")
    assert sqlite.lab.store.scheme == "sqlite" and cassandra.lab.store.scheme == "cassandra"
    for kind in KINDS:
        one = sqlite.lab.report(kind, start=START, end=END, generated_at=START)
        two = cassandra.lab.report(kind, start=START, end=END, generated_at=START)
        assert list(one.tables) == list(two.tables)
        for name, table in one.tables.items():
            pd.testing.assert_frame_equal(table, two.tables[name], obj=f"{kind}.{name}")
        assert one.to_markdown() == two.to_markdown()
