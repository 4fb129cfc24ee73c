"""Cassandra store throughput against the driver's own baselines, in one run.

Writes (rows/s):
  (a) synchronous ``session.execute`` loop, one prepared INSERT per row (20k-row sample);
  (b) ``execute_concurrent_with_args``, one prepared INSERT per row, concurrency 100;
  (c) ``Platform.ingest`` (validation + bulk write + minute/hour roll-ups); ``--write-only``
      times ``store.write_rows("readings", ...)`` instead.
Reads: all rows into a DataFrame with ``store.read_rows`` vs a ``dict_factory`` +
``pd.DataFrame(list(rows))`` baseline over the same partitions.

Usage::

    IOTLAB_TEST_CASSANDRA=127.0.0.1:9042 .venv/bin/python benchmarks/bench_store.py --rows 1000000

The benchmark's keyspace is dropped at the end.
"""

from __future__ import annotations

import argparse
import os
import time
import uuid

import numpy as np
import pandas as pd
from _fleets import grid_readings

from iotlab.store import open_store


def make_readings(n_rows: int, n_devices: int, rng: np.random.Generator) -> pd.DataFrame:
    """``n_rows`` readings: devices x 4 sensors, one row a second per sensor."""
    return grid_readings(n_rows, n_devices, rng, freq="1s")


def rate(rows: int, seconds: float) -> float:
    return rows / seconds if seconds > 0 else float("inf")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--sample", type=int, default=20_000, help="rows for baseline (a)")
    parser.add_argument("--devices", type=int, default=10)
    parser.add_argument("--write-only", action="store_true", help="time store.write_rows for (c)")
    parser.add_argument("--read-repeats", type=int, default=2, help="best of N alternated reads")
    args = parser.parse_args()

    contact = os.environ.get("IOTLAB_TEST_CASSANDRA", "127.0.0.1:9042")
    keyspace = f"bench_{uuid.uuid4().hex[:10]}"
    url = f"cassandra://{contact}/{keyspace}?replication_factor=1"
    rng = np.random.default_rng(7)
    data = make_readings(args.rows, args.devices, rng)
    store = open_store(url)
    from cassandra.concurrent import execute_concurrent_with_args
    from cassandra.query import dict_factory

    session = store.session
    try:
        print(f"Cassandra {store.describe()['server_version']} at {contact}; {len(data):,} rows")
        print("load average at start: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
        session.execute(
            f"CREATE TABLE {keyspace}.baseline (device_id text, sensor_id text, bucket timestamp, "
            "ts timestamp, value double, quality bigint, status text, "
            "PRIMARY KEY ((device_id, sensor_id, bucket), ts))"
        )
        insert = session.prepare(
            f"INSERT INTO {keyspace}.baseline (device_id, sensor_id, bucket, ts, value, quality, "
            "status) VALUES (?, ?, ?, ?, ?, ?, ?)"
        )
        ms = data["ts"].astype("datetime64[ms, UTC]").astype("int64").to_numpy()
        params = list(
            zip(
                data["device_id"].tolist(),
                data["sensor_id"].tolist(),
                (ms // 86_400_000 * 86_400_000).tolist(),
                ms.tolist(),
                data["value"].tolist(),
                data["quality"].tolist(),
                data["status"].tolist(),
            )
        )

        sample = params[: args.sample]
        t0 = time.perf_counter()
        for p in sample:
            session.execute(insert, p)
        a = rate(len(sample), time.perf_counter() - t0)
        print(f"(a) sync execute loop        {a:>12,.0f} rows/s  ({len(sample):,} rows)")

        t0 = time.perf_counter()
        execute_concurrent_with_args(session, insert, params, concurrency=100)
        b = rate(len(params), time.perf_counter() - t0)
        print(f"(b) execute_concurrent (100) {b:>12,.0f} rows/s  ({len(params):,} rows)")

        cpu0 = time.process_time()
        if not args.write_only:
            from iotlab.platform import Platform

            lab = Platform(store)
            t0 = time.perf_counter()
            result = lab.ingest(data, require_provisioned=False, progress=False)
            c = rate(result.written, time.perf_counter() - t0)
            what = "Platform.ingest"
        else:
            t0 = time.perf_counter()
            written = store.write_rows("readings", data)
            c = rate(written, time.perf_counter() - t0)
            what = "store.write_rows"
        cpu = time.process_time() - cpu0
        print(f"(c) {what:<24} {c:>12,.0f} rows/s  ({len(data):,} rows; client CPU {cpu:.1f} s)")
        print(f"    (c)/(b) = {c / b:.2f}  (target >= 1.5)")
        print(f"    (c)/(a) = {c / a:.2f}  (target >= 5)")

        devices = sorted(data["device_id"].unique().tolist())
        sensors = sorted(data["sensor_id"].unique().tolist())
        key = {"device_id": devices, "sensor_id": sensors}
        buckets = sorted(set((ms // 86_400_000 * 86_400_000).tolist()))
        select = session.prepare(
            f"SELECT * FROM {keyspace}.readings WHERE device_id = ? AND sensor_id = ? "
            "AND bucket = ?"
        )
        from cassandra.cluster import ExecutionProfile

        store.connection.cluster.add_execution_profile(
            "dicts", ExecutionProfile(row_factory=dict_factory, request_timeout=60)
        )

        def read_fast() -> float:
            t0 = time.perf_counter()
            frame = store.read_rows("readings", key)
            assert len(frame) == len(data), (len(frame), len(data))
            return time.perf_counter() - t0

        def read_slow() -> float:
            t0 = time.perf_counter()
            rows: list = []
            for d in devices:
                for s in sensors:
                    for bucket in buckets:
                        rows.extend(
                            session.execute(select, (d, s, bucket), execution_profile="dicts")
                        )
            baseline = pd.DataFrame(list(rows))
            assert len(baseline) == len(data)
            return time.perf_counter() - t0

        # Alternated and best of each: the node is still flushing and compacting the
        # writes above, which would otherwise slow whichever read runs first.
        fast, slow = float("inf"), float("inf")
        for _ in range(args.read_repeats):
            fast = min(fast, read_fast())
            slow = min(slow, read_slow())
        print(f"read store.read_rows          {rate(len(data), fast):>12,.0f} rows/s")
        print(f"read dict_factory + DataFrame {rate(len(data), slow):>12,.0f} rows/s")
        print(f"    read ratio = {slow / fast:.2f}  (target >= 3)")
        print("load average at end: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    finally:
        session.execute(f"DROP KEYSPACE IF EXISTS {keyspace}", timeout=120)
        store.close()


if __name__ == "__main__":
    main()
