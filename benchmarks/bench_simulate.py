"""Benchmark the fleet simulator: readings per second for 1,000 devices x 4 sensors x 1 day
at 1-minute resolution (about 5.8M readings, less the faulted-away rows).

Run::

    .venv/bin/python benchmarks/bench_simulate.py [--devices 1000] [--days 1] [--repeat 3]

Every built-in device type is given a redundant second set of its sensors (a common
industrial setup), so each device has four. Two baselines are measured in the same run:

- ``numpy``: drawing as many standard normals with ``numpy.random.Generator`` (the cost
  floor of any simulator that adds noise);
- ``naive``: a per-device, per-sensor pandas loop (``date_range`` + a DataFrame per
  series + ``concat``) on a sample of devices, scaled to readings/s.

The ratios say how far the simulator is from the floor and from the obvious approach.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
from _fleets import four_sensor_types

from iotlab.simulate import Fleet, Simulation

START = "2026-01-05"


def naive(n_devices: int, days: int, seed: int = 0) -> pd.DataFrame:
    """The obvious approach: one DataFrame per device and sensor."""
    rng = np.random.default_rng(seed)
    frames = []
    times = pd.date_range(START, periods=days * 1440, freq="1min", tz="UTC")
    hours = times.hour + times.minute / 60
    for d in range(n_devices):
        for s in range(4):
            value = 20 + 3 * np.cos(2 * np.pi * (hours - 15) / 24) + rng.normal(0, 0.1, len(times))
            frames.append(
                pd.DataFrame(
                    {
                        "device_id": f"device-{d}",
                        "sensor_id": f"sensor_{s:02d}",
                        "ts": times,
                        "value": value,
                        "quality": 100,
                        "status": "ok",
                    }
                )
            )
    return pd.concat(frames, ignore_index=True)


def timed(fn, repeat: int) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeat):
        began = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - began)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--days", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    fleet = Fleet(args.devices, seed=1, device_types=four_sensor_types())
    seconds, sim = timed(lambda: fleet.simulate(START, days=args.days, freq="1min"), args.repeat)
    assert isinstance(sim, Simulation)
    n = len(sim.readings)
    rate = n / seconds
    print(f"simulator: {args.devices} devices x 4 sensors x {args.days} day(s) at 1min")
    print(f"  {n:,} readings + {len(sim.device_metrics):,} heartbeats in {seconds:.2f} s "
          f"(best of {args.repeat}) = {rate / 1e6:.2f} M readings/s")  # fmt: skip
    chunk_s, _ = timed(
        lambda: sum(len(p.readings) for p in fleet.simulate_chunks(
            START, days=args.days, freq="1min", devices_per_chunk=250)),
        1,
    )  # fmt: skip
    print(f"  in chunks of 250 devices: {n / chunk_s / 1e6:.2f} M readings/s")

    rng = np.random.default_rng(0)
    raw_s, _ = timed(lambda: rng.standard_normal(n), args.repeat)
    print(f"numpy baseline: {n:,} standard normals in {raw_s:.3f} s = {n / raw_s / 1e6:.1f} M/s")

    sample = max(1, args.devices // 20)
    naive_s, frame = timed(lambda: naive(sample, args.days), 1)
    naive_rate = len(frame) / naive_s  # type: ignore[arg-type]
    print(f"naive baseline: per-device pandas loop on {sample} devices = "
          f"{naive_rate / 1e6:.2f} M readings/s")  # fmt: skip

    print(f"ratio simulator / numpy raw normals: {rate / (n / raw_s):.2f} "
          "(1.0 would mean the simulator costs no more than its noise)")  # fmt: skip
    print(f"ratio simulator / naive pandas loop: {rate / naive_rate:.1f}x faster")
    target = 2e6
    print(f"target >= {target / 1e6:.0f} M readings/s: {'met' if rate >= target else 'NOT met'}")
    megabytes = sim.readings.memory_usage(deep=False).sum() / 1e6
    print(f"readings frame (shallow): {megabytes:.0f} MB")


if __name__ == "__main__":
    main()
