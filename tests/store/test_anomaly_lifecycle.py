"""Anomalies kept per detector, their lifecycle, and the migration of older stores.

Every test runs on SQLite and on a real Cassandra node.
"""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
import pytest

import iotlab
from iotlab.errors import NotFoundError, SchemaMismatchError, ValidationError
from iotlab.store import open_store, parse_store_url
from iotlab.store.migrate import BACKUP_SUFFIX, migrate_store
from iotlab.store.schema import TABLES
from tests.fixtures.tiny_fleet import END, START

T = pd.Timestamp("2026-01-02 10:00", tz="UTC")


def _rows(detector: str, value: float = 9.0, n: int = 1) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "device_id": "dev-a",
            "ts": pd.Series(pd.date_range(T, periods=n, freq="1min")).astype(
                "datetime64[ms, UTC]"
            ),
            "sensor_id": "temp_01",
            "value": value,
            "expected": 1.0,
            "lower": 0.0,
            "upper": 2.0,
            "score": 8.0,
            "confidence": 0.99,
            "severity": "high",
            "status": "open",
            "detector": detector,
        }
    )


def _write(store, rows: pd.DataFrame) -> None:
    store.write_rows("anomalies", rows)
    store.write_rows("anomalies_by_day", rows)


def test_two_detectors_at_the_same_reading_keep_two_rows(platform):
    _write(platform.store, _rows("zscore", 9.0))
    _write(platform.store, _rows("prophet", 7.0))
    fleet = platform.anomalies()
    device = platform.anomalies(devices=["dev-a"])
    for found in (fleet, device):
        assert found.set_index("detector")["value"].to_dict() == {"prophet": 7.0, "zscore": 9.0}


def test_two_detector_runs_keep_both_sets(backend, load_fresh):
    from iotlab.detect import SeasonalNaiveDetector

    loaded = load_fresh(backend)  # ran the rolling z-score detector
    lab = loaded.lab
    second = lab.detect_anomalies(
        start=START, end=END, detector=SeasonalNaiveDetector(), progress=False
    )
    stored = lab.anomalies(start=START, end=END)
    counts = stored["detector"].value_counts().to_dict()
    assert counts == {"rolling_zscore": len(loaded.anomalies), "seasonal_naive": len(second)}
    assert len(second) > 0


def test_lifecycle_round_trip(platform):
    store = platform.store
    _write(store, _rows("zscore", n=3))
    ids = platform.anomalies()["anomaly_id"].tolist()
    assert platform.anomalies()["status"].tolist() == ["open"] * 3

    acked = platform.acknowledge_anomaly(
        ids[0], by="alice", note="checking the probe", at="2026-01-02 11:00"
    )
    assert acked[["status", "acknowledged_by", "note"]].values.tolist() == [
        ["acknowledged", "alice", "checking the probe"]
    ]
    # A detector re-run rewrites its rows whole: the acknowledgement survives it.
    _write(store, _rows("zscore", n=3))
    now = platform.anomalies().set_index("anomaly_id")
    assert now.loc[ids[0], "status"] == "acknowledged"
    assert now.loc[ids[0], "acknowledged_at"] == pd.Timestamp("2026-01-02 11:00", tz="UTC")
    assert now.loc[ids[0], "created_at"] == T

    # Acknowledging again keeps the first acknowledgement.
    again = platform.acknowledge_anomaly(ids[0], by="bob")
    assert again["acknowledged_by"].item() == "alice"

    resolved = platform.resolve_anomaly(ids[:2], by="bob", note="probe replaced")
    assert resolved["status"].tolist() == ["resolved", "resolved"]
    final = platform.anomalies().set_index("anomaly_id")
    assert final.loc[ids[0], ["acknowledged_by", "resolved_by", "note"]].tolist() == [
        "alice",
        "bob",
        "probe replaced",
    ]
    assert final.loc[ids[2], "status"] == "open"
    assert pd.isna(final.loc[ids[2], "resolved_at"])

    with pytest.raises(ValidationError, match="already resolved"):
        platform.acknowledge_anomaly(ids[1], by="carol")
    with pytest.raises(NotFoundError, match="no stored anomaly"):
        platform.resolve_anomaly("dev-a/temp_01/zscore/2030-01-01T00:00:00.000Z", by="x")
    with pytest.raises(ValidationError, match="by"):
        platform.resolve_anomaly(ids[2], by=" ")
    assert platform.anomalies().set_index("anomaly_id").loc[ids[2], "status"] == "open"


def test_ended_episodes_are_resolved_automatically(loaded):
    stored = loaded.lab.anomalies(start=START, end=END)
    auto = stored[stored["resolved_by"] == "auto"]
    assert len(auto) > 0
    assert (auto["status"] == "resolved").all()
    assert (auto["cleared_at"] >= auto["ts"]).all()
    # An episode only ends once the sensor reported normally for an hour after it,
    # so anomalies in the last hour of the window stay open.
    last_hour = stored[stored["ts"] >= END - pd.Timedelta("1h")]
    assert (last_hour["resolved_by"] != "auto").all()
    for row in auto.drop_duplicates(["device_id", "sensor_id", "cleared_at"]).itertuples():
        after = loaded.lab.readings(
            row.device_id,
            sensors=row.sensor_id,
            start=row.cleared_at + pd.Timedelta("1h"),
            end=END,
        )
        assert len(after) > 0


def _legacy_tables() -> dict:
    """The anomaly tables as they were before the detector joined their key."""
    return {
        **TABLES,
        "anomalies": replace(TABLES["anomalies"], clustering=("ts", "sensor_id")),
        "anomalies_by_day": replace(
            TABLES["anomalies_by_day"], clustering=("ts", "device_id", "sensor_id")
        ),
    }


def _legacy_store(url: str):
    parsed = parse_store_url(url)
    if parsed.scheme == "sqlite":
        from iotlab.store.sqlite import SQLiteStore

        return SQLiteStore(parsed, _legacy_tables())
    from iotlab.store.cassandra import CassandraStore

    return CassandraStore(parsed, _legacy_tables())


def test_an_older_store_migrates_without_losing_a_row(store_url, backend):
    old = _legacy_store(store_url)
    old.create_schema()
    _write(old, _rows("zscore", n=5))
    old.close()

    if backend == "cassandra":
        with pytest.raises(SchemaMismatchError, match="iotlab migrate"):
            open_store(store_url)
        steps = migrate_store(store_url)
        assert any("5 rows copied" in s for s in steps)
        assert any(s.startswith("anomalies_by_day: recreated") for s in steps)
        again = migrate_store(store_url)
        assert all("up to date" in s for s in again), again
    with iotlab.connect(store_url) as lab:
        assert lab.anomalies()["detector"].tolist() == ["zscore"] * 5
        assert len(lab.anomalies(devices=["dev-a"])) == 5
        _write(lab.store, _rows("prophet", n=5))
        assert lab.anomalies()["detector"].value_counts().to_dict() == {
            "prophet": 5,
            "zscore": 5,
        }
        if backend == "cassandra":
            backup = lab.store._existing_columns()
            assert "anomalies" + BACKUP_SUFFIX in backup  # kept until the user drops it
