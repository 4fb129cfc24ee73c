"""Fleet health report from roll-ups vs recomputed from raw readings, in one run.

Default: 200 devices x 4 sensors x 7 days at 1 min on the Cassandra node at 127.0.0.1:9042
(about 8M readings and 1.2M heartbeats, ingested first, day by day). The built-in device
types have two sensors each, so the bench gives each type a second copy of its sensors
(four per device; heartbeats every 1 or 5 min as before). Both reports cover the same
window and must give identical tables; the script prints each one's time and their ratio
(target >= 3x), and the load average, since the machine may be shared.

    .venv/bin/python benchmarks/bench_reports.py                 # the full run
    .venv/bin/python benchmarks/bench_reports.py --devices 20 --days 2
    .venv/bin/python benchmarks/bench_reports.py --store sqlite:////tmp/bench.db

The default keyspace ``bench_reports_<devices>_<days>_4s`` is dropped at the end unless
``--keep`` (then a second run skips the ingest); a ``--store`` you name is never dropped.
"""

from __future__ import annotations

import argparse
import sys
import time

import pandas as pd
from _fleets import four_sensor_types, load_average

import iotlab
from iotlab.simulate import Fleet

START = pd.Timestamp("2026-01-05", tz="UTC")


def _load(lab: iotlab.Platform, fleet: Fleet, days: int, freq: str) -> int:
    """Provision and ingest ``days`` days, one day at a time to bound memory."""
    lab.provision(fleet)
    written = 0
    for day in range(days):
        t0 = time.perf_counter()
        sim = fleet.simulate(start=START + pd.Timedelta(days=day), days=1, freq=freq)
        result = lab.ingest(sim.readings, progress=False)
        lab.ingest_metrics(sim.device_metrics, progress=False)
        written += result.written
        rate = result.written / (time.perf_counter() - t0)
        print(f"  day {day + 1}/{days}: {result.written:,} readings ({rate:,.0f} rows/s)")
    return written


def _timed(lab: iotlab.Platform, end: pd.Timestamp, source: str) -> tuple[float, object]:
    t0 = time.perf_counter()
    report = lab.report("fleet_health", start=START, end=end, generated_at=START, source=source)
    return time.perf_counter() - t0, report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=200)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--freq", default="1min")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--store", help="store URL (default: Cassandra at 127.0.0.1:9042)")
    parser.add_argument("--keep", action="store_true", help="keep the keyspace for a rerun")
    args = parser.parse_args(argv)
    keyspace = f"bench_reports_{args.devices}_{args.days}_4s"
    url = args.store or f"cassandra://127.0.0.1:9042/{keyspace}?replication_factor=1"
    end = START + pd.Timedelta(days=args.days)
    fleet = Fleet(n_devices=args.devices, seed=args.seed, device_types=four_sensor_types())
    with iotlab.connect(url) as lab:
        try:
            stored = lab.stats().set_index("table")["rows"].get("readings", 0)
            if stored:
                print(f"{url}: reusing {stored:,} stored readings")
            else:
                print(f"{url}: ingesting {args.devices} devices x {args.days} days at {args.freq}")
                _load(lab, fleet, args.days, args.freq)
            sensors = len(lab.store.read_rows("sensors"))
            print(f"fleet: {args.devices} devices, {sensors} sensors")
            print(f"load average before timing: {load_average()}")
            _timed(lab, START + pd.Timedelta("1D"), "rollups")  # warm connections, caches
            fast, by_rollups = _timed(lab, end, "rollups")
            slow, by_raw = _timed(lab, end, "raw")
            for name, table in by_rollups.tables.items():
                pd.testing.assert_frame_equal(table, by_raw.tables[name], obj=name)
            readings = int(by_raw.tables["devices"]["readings"].sum())
            print(f"fleet health from roll-ups:    {fast:8.2f} s")
            print(f"fleet health from raw readings:{slow:8.2f} s  ({readings:,} readings)")
            print(f"ratio raw / roll-ups:          {slow / fast:8.1f}x  (target >= 3x)")
            print("tables identical: yes")
            print(f"load average after timing:  {load_average()}")
        finally:
            if not args.keep and args.store is None:  # only the keyspace this script made
                lab.store.close()
                _drop_keyspace(url)
    return 0


def _drop_keyspace(url: str) -> None:
    from cassandra.cluster import Cluster

    from iotlab.store.url import parse_store_url

    parsed = parse_store_url(url)
    cluster = Cluster(list(parsed.hosts), port=parsed.port)
    try:
        cluster.connect().execute(f"DROP KEYSPACE IF EXISTS {parsed.keyspace}", timeout=120)
    finally:
        cluster.shutdown()


if __name__ == "__main__":
    sys.exit(main())
