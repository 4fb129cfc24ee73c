"""Large reads: one device's 5M readings (2 sensors x 29 days at 1 Hz: 58 day partitions)
read whole with ``Platform.readings`` several times, then scanned with
``Platform.iter_readings`` (one frame per day). Each read runs in a fresh process, which
reports its wall time and peak memory (``ru_maxrss``).

    .venv/bin/python benchmarks/scale_large_read.py --store cassandra://127.0.0.1:9042/bench_read

The keyspace is dropped at the end (``--keep`` keeps it).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np
import pandas as pd

import iotlab

START = pd.Timestamp("2026-01-05", tz="UTC")
DEVICE = "bench-large-read"
SENSORS = ("temp_01", "humidity_01")


def load(store: str, days: int) -> int:
    with iotlab.connect(store) as lab:
        lab.provision_device(
            "environmental",
            location="bench",
            sensors=list(SENSORS),
            device_id=DEVICE,
            at=START - pd.Timedelta("1D"),
        )
        written = 0
        rng = np.random.default_rng(1)
        for day in range(days):
            ts = pd.date_range(START + pd.Timedelta(days=day), periods=86_400, freq="1s")
            for sensor in SENSORS:
                rows = pd.DataFrame(
                    {
                        "device_id": DEVICE,
                        "sensor_id": sensor,
                        "ts": ts.as_unit("ms"),
                        "value": 20
                        + np.sin(np.arange(86_400) / 8_000)
                        + rng.normal(0, 0.1, 86_400),
                        "quality": 100,
                        "status": "ok",
                    }
                )
                written += lab.store.write_rows("readings", rows)
        return written


def read(store: str, days: int, mode: str) -> dict:
    end = START + pd.Timedelta(days=days)
    began = time.perf_counter()
    with iotlab.connect(store) as lab:
        if mode == "full":
            frame = lab.readings(DEVICE, start=START, end=end)
            rows, total = len(frame), float(frame["value"].sum())
        else:
            rows, total = 0, 0.0
            for frame in lab.iter_readings(DEVICE, start=START, end=end, chunk="1D"):
                rows += len(frame)
                total += float(frame["value"].sum())
    return {
        "mode": mode,
        "rows": rows,
        "sum": round(total, 3),
        "seconds": round(time.perf_counter() - began, 1),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--store", required=True)
    parser.add_argument("--days", type=int, default=29)
    parser.add_argument("--repeat", type=int, default=5, help="whole reads (5)")
    parser.add_argument("--child", choices=["full", "stream"], help=argparse.SUPPRESS)
    parser.add_argument("--keep", action="store_true", help="keep the keyspace")
    parser.add_argument("--skip-load", action="store_true")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(read(args.store, args.days, args.child)))
        return
    if not args.skip_load:
        began = time.perf_counter()
        written = load(args.store, args.days)
        print(f"loaded {written:,} rows in {time.perf_counter() - began:.0f} s", flush=True)
    for mode in ["full"] * args.repeat + ["stream"]:
        child = [sys.executable, __file__, "--store", args.store, "--days", str(args.days)]
        result = subprocess.run(
            [*child, "--child", mode], capture_output=True, text=True, check=False
        )
        if result.returncode:
            print(f"{mode}: FAILED\n{result.stderr[-2000:]}", flush=True)
        else:
            print(result.stdout.strip(), flush=True)
    if not args.keep and args.store.startswith("cassandra"):
        with iotlab.connect(args.store) as lab:
            keyspace = lab.store.keyspace
            lab.store.session.execute(f"DROP KEYSPACE IF EXISTS {keyspace}")


if __name__ == "__main__":
    main()
