"""Detection throughput: online scoring rate, and fleet detection across processes/Dask.

Prints
- online scoring of a 20,000-point 5-minute series with ``ProphetResidualDetector
  .score_online`` (daily refits on a 14-day window), in points/s including refits
  (target >= 1,000 points/s on one core);
- fleet detection of ``--series`` series x 7 days at 1 minute with n_jobs=1 vs n_jobs=2
  (target ratio >= 1.6) and on a local Dask cluster of 2 single-threaded workers.

The fleet part calls the store-free parallel core ``iotlab.detect.fleet.detect_many``
on in-memory simulator series (the store read is benchmarked by bench_store*).

    .venv/bin/python benchmarks/bench_detect.py [--series 200] [--no-dask]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from iotlab.detect import ProphetResidualDetector
from iotlab.detect.fleet import detect_many
from iotlab.simulate import Fleet


def online_rate(points: int) -> float:
    ts = pd.date_range("2026-01-05", periods=points, freq="5min", tz="UTC")
    hours = np.asarray((ts - ts[0]) / pd.Timedelta("1h"))
    rng = np.random.default_rng(0)
    values = 20 + 3 * np.sin(2 * np.pi * hours / 24) + rng.normal(0, 0.2, points)
    series = pd.DataFrame({"ts": ts, "value": values})
    began = time.perf_counter()
    scored = ProphetResidualDetector().score_online(series, refit_every="1D", window="14D")
    seconds = time.perf_counter() - began
    print(
        f"online: {points} points in {seconds:.1f} s = {points / seconds:,.0f} points/s "
        f"({scored['score'].notna().sum()} scored; target >= 1,000 points/s)"
    )
    return points / seconds


def fleet_series(n_series: int) -> dict[tuple[str, str], pd.DataFrame]:
    sim = Fleet(n_devices=max(1, n_series // 2), seed=7).simulate(
        start="2026-01-05", days=7, freq="1min"
    )
    groups = sim.readings.groupby(["device_id", "sensor_id"], sort=True)
    return {key: group[["ts", "value"]] for key, group in list(groups)[:n_series]}


def timed(label: str, **kwargs) -> float:
    began = time.perf_counter()
    events = detect_many(detector=ProphetResidualDetector(), progress=False, **kwargs)
    seconds = time.perf_counter() - began
    print(
        f"fleet {label}: {seconds:.1f} s, {len(events)} events, "
        f"{len(events.attrs['failures'])} failures"
    )
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=200)
    parser.add_argument("--online-points", type=int, default=20_000)
    parser.add_argument("--no-dask", action="store_true")
    args = parser.parse_args()
    online_rate(args.online_points)
    series = fleet_series(args.series)
    print(f"fleet: {len(series)} series x 7 days at 1 min")
    one = timed("n_jobs=1", series=series, n_jobs=1)
    two = timed("n_jobs=2", series=series, n_jobs=2)
    print(f"speed-up n_jobs=2 / n_jobs=1: {one / two:.2f}x (target >= 1.6x)")
    if not args.no_dask:
        from distributed import Client, LocalCluster

        with (
            LocalCluster(
                n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
            ) as cluster,
            Client(cluster) as client,
        ):
            dask = timed("dask 2 workers", series=series, client=client)
        print(f"speed-up dask / n_jobs=1: {one / dask:.2f}x")


if __name__ == "__main__":
    main()
