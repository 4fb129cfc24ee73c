"""Event F1 and false alarms of the Prophet detector vs the baselines, over unseen seeds.

Two parts, both on seeds no test uses:

1. **The simulated fleet** (default device types and fault rates): ``--devices`` devices
   for ``--days`` at 1-minute readings, for each of ``--seeds``. Every (device, sensor)
   series is scored offline (``score``) by each detector and evaluated against the
   simulator's labels restricted to the value faults a detector can see (spike, dip,
   level_shift, drift, stuck, noise_burst). One row per detector and sensor family (the
   sensor id's prefix: temp, humidity, vibration, power, voltage, co2, pm25) and for all:
   event precision, recall and F1 (:func:`iotlab.detect.evaluate`) and false alarms per
   1,000 normal readings (flagged readings outside every label window + 1 h).
2. **The shapes real series have** (:mod:`iotlab.simulate.shapes`: on/off steps, a
   missed working day, random walk, bursty counts, quantised levels, regime change,
   variance burst, drift), scored causally with ``score_online``; see
   ``eval_shapes.py``. Skip with ``--no-shapes``.

The last lines say whether Prophet is ahead of both baselines (event F1) on every
family of either part, and name the families where it is not.

    .venv/bin/python benchmarks/eval_detect.py [--days 7] [--seeds 4242 5151 6161]
    .venv/bin/python benchmarks/eval_detect.py --days 28 --no-shapes
"""

from __future__ import annotations

import argparse
import time

import pandas as pd
from eval_shapes import run as run_shapes

from iotlab.detect import (
    ProphetResidualDetector,
    RollingZScoreDetector,
    SeasonalNaiveDetector,
    evaluate,
)
from iotlab.detect.fleet import score_many
from iotlab.simulate import Fleet

VALUE_FAULTS = ("spike", "dip", "level_shift", "drift", "stuck", "noise_burst")
DETECTORS = (ProphetResidualDetector, RollingZScoreDetector, SeasonalNaiveDetector)
#: A flag this long after a label's end is the detector still seeing that fault.
AFTER_LABEL = pd.Timedelta("1h")


def false_alarms(scored: pd.DataFrame, labels: pd.DataFrame) -> tuple[int, int]:
    """Flagged readings outside every label window (+ ``AFTER_LABEL``), and the number
    of such normal readings; labels without a sensor cover all of the device's."""
    normal = pd.Series(True, index=scored.index)
    for row in labels.itertuples():
        own = scored["device_id"] == row.device_id
        if isinstance(row.sensor_id, str):
            own &= scored["sensor_id"] == row.sensor_id
        inside = (scored["ts"] >= row.start) & (scored["ts"] < row.end + AFTER_LABEL)
        normal &= ~(own & inside)
    normal &= scored["value"].notna()
    return int((scored["is_anomaly"] & normal).sum()), int(normal.sum())


def score_fleet(devices: int, days: int, seed: int, n_jobs: int) -> dict[str, tuple]:
    """Every detector's scored readings for one simulated fleet, with its labels."""
    sim = Fleet(n_devices=devices, seed=seed).simulate(start="2026-01-05", days=days, freq="1min")
    sensors = sim.sensors.set_index(["device_id", "sensor_id"])
    series = {
        key: group[["ts", "value"]]
        for key, group in sim.readings.groupby(["device_id", "sensor_id"], sort=True)
    }
    ranges = {
        key: (float(sensors.loc[key, "min_value"]), float(sensors.loc[key, "max_value"]))
        for key in series
    }
    out = {}
    for make in DETECTORS:
        began = time.perf_counter()
        run = score_many(series, make(), sensor_ranges=ranges, n_jobs=n_jobs, progress=False)
        if len(run.failures):
            raise RuntimeError(f"{make.name} failed on {len(run.failures)} series")
        out[make.name] = (run.rows, sim.labels, time.perf_counter() - began)
    return out


def fleet_table(devices: int, days: int, seeds: list[int], n_jobs: int) -> pd.DataFrame:
    """One row per detector and sensor family (and 'all'), over all seeds."""
    parts: dict[str, list] = {make.name: [] for make in DETECTORS}
    for seed in seeds:
        for name, (scored, labels, seconds) in score_fleet(devices, days, seed, n_jobs).items():
            # Device ids are unique per seed; prefix them so fleets do not mix.
            scored = scored.assign(device_id=f"{seed}/" + scored["device_id"].astype(str))
            labels = labels.assign(device_id=f"{seed}/" + labels["device_id"].astype(str))
            parts[name].append((scored, labels, seconds))
    rows = []
    for name, runs in parts.items():
        scored = pd.concat([s for s, _, _ in runs], ignore_index=True)
        labels = pd.concat([lab for _, lab, _ in runs], ignore_index=True)
        seconds = sum(sec for _, _, sec in runs)
        family = scored["sensor_id"].str.split("_").str[0]
        for fam, part in [("all", scored), *scored.groupby(family)]:
            own = labels[labels["device_id"].isin(part["device_id"].unique())]
            value_labels = own[own["kind"].isin(VALUE_FAULTS)]
            result = evaluate(part, value_labels)
            false, normal = false_alarms(part, own)
            rows.append(
                {
                    "detector": name,
                    "family": fam,
                    "event_precision": round(result.event_precision, 3),
                    "event_recall": round(result.event_recall, 3),
                    "event_f1": round(result.event_f1, 3),
                    "false_alarms_per_1000": round(1000 * false / max(normal, 1), 2),
                    "n_labels": result.n_labels,
                    "n_false_events": result.n_false_events,
                    "median_delay": result.median_delay,
                    "seconds": round(seconds, 1),
                }
            )
    return pd.DataFrame(rows)


def behind(table: pd.DataFrame, column: str, metric: str) -> list[str]:
    """Families where Prophet's ``metric`` is not above both baselines'."""
    wide = table.pivot(index=column, columns="detector", values=metric)
    baselines = [c for c in wide.columns if c != "prophet"]
    return [str(f) for f, row in wide.iterrows() if not (row["prophet"] > row[baselines]).all()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=10)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--seeds", type=int, nargs="+", default=[4242, 5151, 6161])
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--no-shapes", action="store_true")
    args = parser.parse_args()
    fleet = fleet_table(args.devices, args.days, args.seeds, args.n_jobs)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(
            f"simulated fleet: {args.devices} devices x {args.days} days at 1 min, "
            f"seeds {args.seeds}, offline score()"
        )
        print(fleet.to_string(index=False))
        lagging = behind(fleet, "family", "event_f1")
        if not args.no_shapes:
            shapes = run_shapes(args.seeds, args.days)
            print(f"\nshapes: {args.seeds} x (anomaly, clean), {args.days} days, score_online()")
            print(shapes.drop(columns="seconds").to_string(index=False))
            lagging += [f"shape {s}" for s in behind(shapes, "shape", "event_f1")]
    print(
        "\nProphet ahead of both baselines on event F1 in every family: "
        + ("yes" if not lagging else "no, not in " + ", ".join(lagging))
    )


if __name__ == "__main__":
    main()
