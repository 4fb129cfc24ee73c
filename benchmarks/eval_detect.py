"""Event-level F1 of the Prophet detector vs the baselines on the simulator's fleet.

Simulates the default fleet (default device types and fault rates, seed 7) for four
weeks at 1-minute readings, scores every (device, sensor) series offline with each
detector, and evaluates against the simulator's labels restricted to the value faults a
detector can see (spike, dip, level_shift, drift, stuck, noise_burst). Prints one row per
detector (and per sensor type with ``--by-sensor``).

Four weeks, not one: the Prophet detector learns a profile per day of the week, which
needs each weekday seen at least twice (with one week, the only Saturday and Sunday are
learned from the pooled days and their shifts and office hours are flagged).

    .venv/bin/python benchmarks/eval_detect.py [--devices 20] [--days 28] [--n-jobs 2]
"""

from __future__ import annotations

import argparse
import time

import pandas as pd

from iotlab.detect import (
    ProphetResidualDetector,
    RollingZScoreDetector,
    SeasonalNaiveDetector,
    evaluate,
)
from iotlab.detect.fleet import score_many
from iotlab.simulate import Fleet

VALUE_FAULTS = ("spike", "dip", "level_shift", "drift", "stuck", "noise_burst")


def run(devices: int, days: int, freq: str, seed: int, n_jobs: int, by_sensor: bool) -> None:
    sim = Fleet(n_devices=devices, seed=seed).simulate(start="2026-01-05", days=days, freq=freq)
    labels = sim.labels[sim.labels["kind"].isin(VALUE_FAULTS)]
    sensors = sim.sensors.set_index(["device_id", "sensor_id"])
    series = {
        key: group[["ts", "value"]]
        for key, group in sim.readings.groupby(["device_id", "sensor_id"], sort=True)
    }
    ranges = {
        key: (float(sensors.loc[key, "min_value"]), float(sensors.loc[key, "max_value"]))
        for key in series
    }
    rows = []
    for detector in (ProphetResidualDetector(), RollingZScoreDetector(), SeasonalNaiveDetector()):
        began = time.perf_counter()
        scored, failures = score_many(
            series, detector, sensor_ranges=ranges, n_jobs=n_jobs, progress=False
        )
        seconds = time.perf_counter() - began
        groups = [("all", scored)]
        if by_sensor:
            prefix = scored["sensor_id"].str.split("_").str[0]
            groups += list(scored.groupby(prefix))
        for name, part in groups:
            result = evaluate(part, labels).to_frame()
            result.insert(0, "sensors", name)
            result.insert(0, "detector", detector.name)
            result["seconds"] = round(seconds, 1)
            result["failures"] = len(failures)
            rows.append(result)
    table = pd.concat(rows, ignore_index=True)
    cols = [
        "detector",
        "sensors",
        "event_precision",
        "event_recall",
        "event_f1",
        "point_precision",
        "point_recall",
        "point_f1",
        "n_labels",
        "n_detected",
        "n_false_events",
        "median_delay",
        "seconds",
        "failures",
    ]
    with pd.option_context(
        "display.width", 200, "display.max_columns", 20, "display.precision", 3
    ):
        print(
            f"{devices} devices x {days} days at {freq}, seed {seed}: "
            f"{len(series)} series, {len(labels)} value-fault labels"
        )
        print(table[cols].to_string(index=False))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=20)
    parser.add_argument("--days", type=int, default=28)
    parser.add_argument("--freq", default="1min")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--by-sensor", action="store_true")
    args = parser.parse_args()
    run(args.devices, args.days, args.freq, args.seed, args.n_jobs, args.by_sensor)


if __name__ == "__main__":
    main()
