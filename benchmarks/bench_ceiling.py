"""How close ``Platform.ingest`` comes to what one Cassandra node can absorb, in one run.

The same readings (one a minute per sensor, the shape where minute roll-ups used to
double the rows written) are written, interleaved, ``--repeats`` times by:

  ceiling   the best raw writer this package can build: single-partition UNLOGGED batches
            of 200 rows, values serialised once, Python's collector paused, 96 in flight,
            readings only (no partition index, no validation, no roll-ups);
  raw       ``store.write_rows("readings", ...)``: the store's bulk writer (and its index);
  ingest    ``Platform.ingest``: validation, the bulk write and the hour/minute roll-ups;
  driver    the plain driver baseline: one prepared INSERT per row with
            ``execute_concurrent_with_args`` (concurrency 100), on ``--driver-rows`` rows.

Each repeat writes new devices (fresh partitions, as a new day of data would be), and
the best rate of each writer is printed with its ratio to the ceiling. The issue's
targets: ingest >= 0.50 of the ceiling, raw >= 0.80.

Usage::

    IOTLAB_TEST_CASSANDRA=127.0.0.1:9042 .venv/bin/python benchmarks/bench_ceiling.py

The benchmark's keyspace is dropped at the end.
"""

from __future__ import annotations

import argparse
import os
import time
import uuid

import numpy as np
import pandas as pd
from _fleets import grid_readings, load_average

import iotlab
from iotlab.store._cql_io import PARTITION_BATCH_ROWS, _batch, collector_paused, run_concurrent


def readings(n_rows: int, n_devices: int, tag: str, rng: np.random.Generator) -> pd.DataFrame:
    """``n_rows`` readings of ``n_devices`` x 4 sensors, one a minute from 2026-01-01."""
    return grid_readings(n_rows, n_devices, rng, freq="1min", prefix=f"{tag}-dev-", decimals=3)


def ceiling_write(store, rows: pd.DataFrame) -> None:
    """Readings only, in single-partition batches of 200 pre-serialised rows."""
    from iotlab.store._cql_io import _prepared_chunk

    plan = store._write_plan(store.tables["readings"])
    chunk = _prepared_chunk(plan, store._check_rows(plan.spec, rows))
    encoded = list(zip(*chunk.encoded))
    keys = [plan.insert_columns.index(c) for c in plan.spec.partition_key]
    edges = [0, *(np.flatnonzero(np.diff(chunk.codes)) + 1).tolist(), len(encoded)]

    def batches():
        for start, end in zip(edges[:-1], edges[1:]):
            parts = [encoded[start][i] for i in keys]
            for lo in range(start, end, PARTITION_BATCH_ROWS):
                yield _batch(plan, encoded[lo : min(lo + PARTITION_BATCH_ROWS, end)], parts), None

    with collector_paused():
        run_concurrent(store.session, batches())


def driver_write(store, keyspace: str, rows: pd.DataFrame) -> None:
    from cassandra.concurrent import execute_concurrent_with_args

    insert = store.session.prepare(
        f"INSERT INTO {keyspace}.baseline (device_id, sensor_id, bucket, ts, value, quality, "
        "status) VALUES (?, ?, ?, ?, ?, ?, ?)"
    )
    ts = rows["ts"].dt.tz_localize(None).dt.to_pydatetime()
    params = [
        (d, s, t.replace(hour=0, minute=0, second=0, microsecond=0), t, v, q, st)
        for d, s, t, v, q, st in zip(
            rows["device_id"],
            rows["sensor_id"],
            ts,
            rows["value"].tolist(),
            rows["quality"].tolist(),
            rows["status"],
        )
    ]
    execute_concurrent_with_args(store.session, insert, params, concurrency=100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=500_000)
    parser.add_argument("--devices", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--driver-rows", type=int, default=50_000)
    args = parser.parse_args()
    contact = os.environ.get("IOTLAB_TEST_CASSANDRA", "127.0.0.1:9042")
    keyspace = f"bench_{uuid.uuid4().hex[:10]}"
    rng = np.random.default_rng(7)
    lab = iotlab.connect(f"cassandra://{contact}/{keyspace}?replication_factor=1")
    store = lab.store
    store.session.execute(
        f"CREATE TABLE {keyspace}.baseline (device_id text, sensor_id text, bucket timestamp, "
        "ts timestamp, value double, quality bigint, status text, "
        "PRIMARY KEY ((device_id, sensor_id, bucket), ts))"
    )
    print(
        f"Cassandra {store.describe()['server_version']} at {contact}, one node; {load_average()}"
    )
    print(
        f"{args.rows:,} readings per writer and repeat ({args.devices} devices x 4 sensors, 1/min)"
    )
    best: dict[str, float] = {}
    try:
        for repeat in range(args.repeats):
            writers = {
                "ceiling": lambda rows: ceiling_write(store, rows),
                "raw": lambda rows: store.write_rows("readings", rows),
                "ingest": lambda rows: lab.ingest(rows, require_provisioned=False, progress=False),
                "driver": lambda rows: driver_write(
                    store, keyspace, rows.iloc[: args.driver_rows]
                ),
            }
            for name, write in writers.items():
                rows = readings(args.rows, args.devices, f"{name}{repeat}", rng)
                n = min(len(rows), args.driver_rows) if name == "driver" else len(rows)
                began = time.perf_counter()
                result = write(rows)
                seconds = time.perf_counter() - began
                if name == "ingest":
                    assert result.written == len(rows) and result.rejected.empty
                rate = n / seconds
                best[name] = max(best.get(name, 0.0), rate)
                print(f"  repeat {repeat + 1} {name:8s} {rate:>10,.0f} rows/s ({seconds:.1f} s)")
        ceiling = best["ceiling"]
        print("best of each, as a ratio to the ceiling:")
        labels = {
            "ceiling": "best raw writer (ceiling)",
            "raw": "store.write_rows",
            "ingest": "Platform.ingest",
            "driver": "plain driver, one INSERT per row",
        }
        for name, label in labels.items():
            print(f"  {label:34s} {best[name]:>10,.0f} rows/s  {best[name] / ceiling:.2f}")
        print(load_average())
    finally:
        store.session.execute(f"DROP KEYSPACE IF EXISTS {keyspace}", timeout=120)
        lab.close()


if __name__ == "__main__":
    main()
