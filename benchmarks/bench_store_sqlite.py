"""The embedded (SQLite) backend: ingest and read throughput against pandas, in one run.

Run::

    .venv/bin/python benchmarks/bench_store_sqlite.py [--rows 1000000]

On the same rows (250 devices x 4 sensors at 1 min, in time order like a simulator's
output), in fresh temporary database files, it prints rows/s for

- ``SQLiteStore.write_rows`` (upsert by primary key) and ``ingest_readings`` (validation +
  write + minute/hour roll-ups), against ``DataFrame.to_sql`` (a plain INSERT into a
  table without a key) as the baseline; target: the full ``ingest_readings`` >= 300k
  rows/s (it writes the raw rows and a million minute roll-ups, one per reading);
- reading every row back into a DataFrame with ``SQLiteStore.read_rows`` against
  ``pd.read_sql`` of the same table.
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from iotlab.store import open_store
from iotlab.store.ingest import ingest_readings

SENSORS = ["temp_01", "hum_01", "pres_01", "co2_01"]
INGEST_TARGET = 300_000  # rows/s of ingest_readings: validation + raw write + roll-ups


def make_readings(rows: int, rng: np.random.Generator) -> pd.DataFrame:
    devices = [f"dev-{i:04d}" for i in range(250)]
    per_series = rows // (len(devices) * len(SENSORS))
    ts = pd.date_range("2026-01-01", periods=per_series, freq="1min", tz="UTC", unit="ms")
    index = pd.MultiIndex.from_product(
        [ts, devices, SENSORS], names=["ts", "device_id", "sensor_id"]
    )
    frame = index.to_frame(index=False)[["device_id", "sensor_id", "ts"]]
    frame["value"] = rng.normal(20, 5, len(frame))
    frame["quality"] = 100
    frame["status"] = "ok"
    return frame


def timed(label: str, rows: int, fn) -> float:
    start = time.perf_counter()
    fn()
    seconds = time.perf_counter() - start
    print(f"{label:<44} {seconds:7.2f} s  {rows / seconds:>11,.0f} rows/s")
    return rows / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    frame = make_readings(args.rows, np.random.default_rng(7))
    n = len(frame)
    print(f"{n:,} readings, sqlite {sqlite3.sqlite_version}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        baseline = sqlite3.connect(tmp_path / "baseline.db")
        base_w = timed(
            "baseline: DataFrame.to_sql",
            n,
            lambda: frame.to_sql("readings", baseline, index=False, chunksize=100_000),
        )
        store = open_store(f"sqlite:///{tmp_path / 'write.db'}")
        write = timed("SQLiteStore.write_rows", n, lambda: store.write_rows("readings", frame))
        ingest_store = open_store(f"sqlite:///{tmp_path / 'ingest.db'}")
        ingest = timed(
            "ingest_readings (validate+write+roll-ups)",
            n,
            lambda: ingest_readings(
                ingest_store, frame, require_provisioned=False, progress=False
            ),
        )
        base_r = timed(
            "baseline: pd.read_sql", n, lambda: pd.read_sql("SELECT * FROM readings", baseline)
        )
        key = {"device_id": sorted(frame["device_id"].unique()), "sensor_id": SENSORS}
        got: list[pd.DataFrame] = []
        read = timed(
            "SQLiteStore.read_rows -> DataFrame",
            n,
            lambda: got.append(store.read_rows("readings", key)),
        )
        assert len(got[0]) == n, "read back a different number of rows"
        print(f"write_rows / to_sql: {write / base_w:.2f}x")
        verdict = "met" if ingest >= INGEST_TARGET else "NOT met"
        print(
            f"ingest / to_sql:     {ingest / base_w:.2f}x   full ingest {ingest:,.0f} rows/s: "
            f"target >= {INGEST_TARGET:,} rows/s {verdict}"
        )
        print(f"read_rows / read_sql: {read / base_r:.2f}x")
        baseline.close()
        store.close()
        ingest_store.close()


if __name__ == "__main__":
    main()
