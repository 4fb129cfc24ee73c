"""Scale run: a fleet-day from the simulator's chunked output into Cassandra, queried back.

1,000 devices x 4 sensors x 1 day at 1 min (about 5.8M readings) by default. The
simulator yields the day in pieces of ``--devices-per-chunk`` devices; each piece goes
through ``Platform.ingest`` (validation, bulk write, roll-ups), so memory stays bounded.
Then every reading and the hour roll-ups of a sample of devices are read back. Prints
rows/s (wall and client CPU), the load average and the process's peak memory
(``ru_maxrss``).

    IOTLAB_TEST_CASSANDRA=127.0.0.1:9042 .venv/bin/python benchmarks/scale_cassandra.py

The benchmark's keyspace is dropped at the end.
"""

from __future__ import annotations

import argparse
import os
import resource
import time
import uuid

import pandas as pd
from _fleets import four_sensor_types, load_average

import iotlab
from iotlab.simulate import Fleet

START = "2026-01-05"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--days", type=float, default=1.0)
    parser.add_argument("--devices-per-chunk", type=int, default=250)
    args = parser.parse_args()
    contact = os.environ.get("IOTLAB_TEST_CASSANDRA", "127.0.0.1:9042")
    keyspace = f"scale_{uuid.uuid4().hex[:10]}"
    fleet = Fleet(args.devices, seed=3, device_types=four_sensor_types())
    print(f"{args.devices} devices x 4 sensors x {args.days} day(s) at 1 min; {load_average()}")
    lab = iotlab.connect(f"cassandra://{contact}/{keyspace}?replication_factor=1")
    try:
        lab.provision(fleet)
        written = rejected = 0
        simulate_s = 0.0
        wall0, cpu0 = time.perf_counter(), time.process_time()
        pieces = fleet.simulate_chunks(
            START, days=args.days, freq="1min", devices_per_chunk=args.devices_per_chunk
        )
        while True:
            t = time.perf_counter()
            piece = next(pieces, None)
            simulate_s += time.perf_counter() - t
            if piece is None:
                break
            result = lab.ingest(piece.readings, progress=False)
            written += result.written
            rejected += len(result.rejected)
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        ingest_s = wall - simulate_s
        print(
            f"ingest: {written:,} written, {rejected:,} rejected in {wall:.1f} s wall "
            f"({simulate_s:.1f} s of it simulating), client CPU {cpu:.1f} s; "
            f"{written / ingest_s:,.0f} rows/s excluding simulation; {load_average()}"
        )
        devices = fleet.devices["device_id"].tolist()
        end = pd.Timestamp(START, tz="UTC") + pd.Timedelta(days=args.days)
        wall0, cpu0 = time.perf_counter(), time.process_time()
        rows = 0
        for first in range(0, len(devices), args.devices_per_chunk):
            key = {"device_id": devices[first : first + args.devices_per_chunk]}
            key["sensor_id"] = sorted(fleet.sensors["sensor_id"].unique())
            rows += len(lab.store.read_rows("readings", key, start=START, end=end))
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        print(
            f"read back: {rows:,} readings in {wall:.1f} s ({rows / wall:,.0f} rows/s), "
            f"client CPU {cpu:.1f} s; {load_average()}"
        )
        assert rows == written, (rows, written)
        sample = {"device_id": devices[:20], "sensor_id": key["sensor_id"]}
        hourly = lab.store.read_rows("rollups_hour", sample, start=START, end=end)
        raw = lab.store.read_rows("readings", sample, start=START, end=end)
        assert int(hourly["count"].sum()) == len(raw), (hourly["count"].sum(), len(raw))
        print(f"hour roll-ups of 20 devices: {len(hourly)} rows, counts equal the raw rows")
        peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(f"peak memory (ru_maxrss): {peak_kib / 1024:,.0f} MiB")
    finally:
        lab.store.session.execute(f"DROP KEYSPACE IF EXISTS {keyspace}", timeout=120)
        lab.close()


if __name__ == "__main__":
    main()
