"""Ingesting minute after minute (a notebook feeding a live fleet through ``lab.ingest``):
roll-ups stay exact, and each call reads back neither the hour's earlier raw rows nor
more than one hour roll-up per sensor, unless another writer changed the hour."""

from __future__ import annotations

import numpy as np
import pandas as pd

import iotlab
from iotlab.store.ingest import ingest_readings
from iotlab.store.rollups import compute_rollups
from iotlab.testing import T0


def _minute(m: int, sensors: int = 3) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "device_id": "d",
            "sensor_id": [f"s{i}" for i in range(sensors)],
            "ts": T0 + pd.Timedelta(minutes=m),
            "value": np.arange(sensors) + m / 10,
        }
    )


def _hours(store) -> pd.DataFrame:
    key = {"device_id": ["d"], "sensor_id": ["s0", "s1", "s2"]}
    return store.read_rows("rollups_hour", key, start=T0, end=T0 + pd.Timedelta("2h"))


def test_minute_after_minute_reads_no_raw_rows_and_stays_exact(store_url, monkeypatch) -> None:
    with iotlab.connect(store_url) as lab:
        store = lab.store
        raw_reads: list[str] = []
        read_rows = type(store).read_rows

        def counting(self, table, *args, **kwargs):
            if table == "readings":
                raw_reads.append(table)
            return read_rows(self, table, *args, **kwargs)

        monkeypatch.setattr(type(store), "read_rows", counting)
        for m in range(30):
            ingest_readings(store, _minute(m), require_provisioned=False, progress=False)
        assert raw_reads == []  # each call trusted what the one before it stored

        # Another writer (a second connection: its own memory) re-ingests minute 10 with
        # new values and adds a late reading: the next call must see the hour changed.
        with iotlab.connect(store_url) as other:
            changed = _minute(10).assign(value=-5.0)
            late = _minute(10, sensors=1).assign(ts=T0 + pd.Timedelta("10min 30s"))
            ingest_readings(other.store, changed, require_provisioned=False, progress=False)
            ingest_readings(other.store, late, require_provisioned=False, progress=False)
        for m in range(30, 65):  # into the next hour
            ingest_readings(store, _minute(m), require_provisioned=False, progress=False)
        monkeypatch.undo()

        stored = store.read_rows(
            "readings",
            {"device_id": ["d"], "sensor_id": ["s0", "s1", "s2"]},
            start=T0,
            end=T0 + pd.Timedelta("2h"),
        )
        assert len(stored) == 65 * 3 + 1
        want = compute_rollups(stored, "hour").sort_values(["sensor_id", "bucket_start"])
        got = _hours(store).sort_values(["sensor_id", "bucket_start"])
        assert got["count"].tolist() == want["count"].tolist() == [61, 5, 60, 5, 60, 5]
        np.testing.assert_allclose(got["sum"], want["sum"])
        np.testing.assert_allclose(got["min"], want["min"])
        assert got["min"].min() == -5.0
