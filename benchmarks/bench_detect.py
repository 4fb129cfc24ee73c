"""Detection throughput: online scoring rate, and fleet detection across processes/Dask.

Prints
- online scoring of a 20,000-point 5-minute series with ``ProphetResidualDetector()
  .score_online(series)`` with the defaults a user gets (a refit every day on the trailing
  14 days), in points/s including refits (target >= 1,000 points/s on one core), by wall
  clock and by CPU time (this process plus the cmdstan processes it started);
- fleet detection of ``--series`` series x 7 days at 1 minute with n_jobs=1 vs n_jobs=2
  (target ratio >= 1.6) and on a local Dask cluster of 2 single-threaded workers; wall
  time, and for the process runs the CPU time of this process and its children (the
  pool's workers and their cmdstan runs).

On a machine shared with other work the wall-clock ratio understates the speed-up; the
CPU times show how much work each run did.

The fleet part calls the store-free parallel core ``iotlab.detect.fleet.episodes_many``
on in-memory simulator series (the store read is benchmarked by bench_store*).

    .venv/bin/python benchmarks/bench_detect.py [--series 200] [--no-dask]
"""

from __future__ import annotations

import argparse
import os
import resource
import time

import numpy as np
import pandas as pd

from iotlab.detect import ProphetResidualDetector
from iotlab.detect.fleet import episodes_many
from iotlab.simulate import Fleet


class Clock:
    """Wall time, and CPU time of this process plus its (finished) children."""

    def __enter__(self) -> Clock:
        self._wall = time.perf_counter()
        self._cpu = self._cpu_now()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self._wall
        self.cpu = self._cpu_now() - self._cpu

    @staticmethod
    def _cpu_now() -> float:
        child = resource.getrusage(resource.RUSAGE_CHILDREN)
        return time.process_time() + child.ru_utime + child.ru_stime


def online_rate(points: int) -> float:
    ts = pd.date_range("2026-01-05", periods=points, freq="5min", tz="UTC")
    hours = np.asarray((ts - ts[0]) / pd.Timedelta("1h"))
    rng = np.random.default_rng(0)
    values = 20 + 3 * np.sin(2 * np.pi * hours / 24) + rng.normal(0, 0.2, points)
    series = pd.DataFrame({"ts": ts, "value": values})
    with Clock() as clock:
        scored = ProphetResidualDetector().score_online(series)  # defaults: 1D refit, 14D
    print(
        f"online: {points} points in {clock.wall:.1f} s wall = {points / clock.wall:,.0f} "
        f"points/s; {clock.cpu:.1f} s CPU = {points / clock.cpu:,.0f} points/s per core "
        f"({scored['score'].notna().sum()} scored; target >= 1,000 points/s)"
    )
    return points / clock.wall


def fleet_series(n_series: int) -> dict[tuple[str, str], pd.DataFrame]:
    sim = Fleet(n_devices=max(1, n_series // 2), seed=7).simulate(
        start="2026-01-05", days=7, freq="1min"
    )
    groups = sim.readings.groupby(["device_id", "sensor_id"], sort=True)
    return {key: group[["ts", "value"]] for key, group in list(groups)[:n_series]}


def timed(label: str, **kwargs) -> Clock:
    with Clock() as clock:
        events, failures = episodes_many(
            detector=ProphetResidualDetector(), progress=False, **kwargs
        )
    print(
        f"fleet {label}: {clock.wall:.1f} s wall, {clock.cpu:.1f} s CPU (incl. children), "
        f"{len(events)} events, {len(failures)} failures"
    )
    return clock


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=200)
    parser.add_argument("--online-points", type=int, default=20_000)
    parser.add_argument("--no-online", action="store_true")
    parser.add_argument("--no-dask", action="store_true")
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    if not args.no_online:
        online_rate(args.online_points)
    series = fleet_series(args.series)
    print(f"fleet: {len(series)} series x 7 days at 1 min")
    one = timed("n_jobs=1", series=series, n_jobs=1)
    two = timed("n_jobs=2", series=series, n_jobs=2)
    print(
        f"speed-up n_jobs=2 / n_jobs=1: {one.wall / two.wall:.2f}x wall (target >= 1.6x); "
        f"CPU n_jobs=2 / n_jobs=1: {two.cpu / one.cpu:.2f}x"
    )
    if not args.no_dask:
        from distributed import Client, LocalCluster

        with (
            LocalCluster(
                n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
            ) as cluster,
            Client(cluster) as client,
        ):
            client.run(lambda: None)  # workers up before the clock starts
            with Clock() as dask:
                events = episodes_many(
                    series, ProphetResidualDetector(), client=client, progress=False
                ).rows
        print(
            f"fleet dask 2 workers: {dask.wall:.1f} s wall, {len(events)} events; "
            f"speed-up dask / n_jobs=1: {one.wall / dask.wall:.2f}x"
        )
    print(f"load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
