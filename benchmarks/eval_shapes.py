"""Prophet against the baselines on the shapes real series have, over seeds no test uses.

Every shape of :mod:`iotlab.simulate.shapes` (daily on/off steps, a missed working day,
random walk, bursty counts, quantised levels, regime change, variance burst, drift) is
made for several seeds, with and without its anomaly, and scored causally with
``score_online`` by each detector. Per shape and overall it prints:

- the window score (:mod:`iotlab.detect.window_score`; 0 = never fires, 100 = perfect),
  at the best single threshold on ``confidence`` for all series;
- event precision, recall and F1 of ``is_anomaly`` at the default threshold
  (:func:`iotlab.detect.evaluate`);
- false alarms per 1,000 normal readings at the default threshold.

    .venv/bin/python benchmarks/eval_shapes.py [--seeds 1000 1001 1002] [--days 7]
"""

from __future__ import annotations

import argparse
import time
import warnings

import pandas as pd

from iotlab.detect import (
    ProphetResidualDetector,
    RollingZScoreDetector,
    SeasonalNaiveDetector,
    ShortHistoryWarning,
    evaluate,
)
from iotlab.detect.window_score import anomaly_windows, best_window_score
from iotlab.simulate.shapes import SHAPES, shape_series

DETECTORS = (ProphetResidualDetector, RollingZScoreDetector, SeasonalNaiveDetector)


def _false_alarms_per_1000(scored: pd.DataFrame, labels: pd.DataFrame) -> tuple[int, int]:
    normal = scored["confidence"].notna()
    for start, end in zip(labels["start"], labels["end"]):
        normal &= ~((scored["ts"] >= start) & (scored["ts"] < end + pd.Timedelta("1h")))
    return int((scored["is_anomaly"] & normal).sum()), int(normal.sum())


def run(seeds: list[int], days: int) -> pd.DataFrame:
    rows = []
    for make in DETECTORS:
        began = time.perf_counter()
        per_shape = {}
        for kind in SHAPES:
            scored, windows, evals, alarms = {}, {}, [], [0, 0]
            for seed in seeds:
                for anomaly in (True, False):
                    frame, labels = shape_series(kind, seed=seed, days=days, anomaly=anomaly)
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", ShortHistoryWarning)
                        result = make().score_online(frame)
                    name = f"{kind}/{seed}/{anomaly}"
                    scored[name] = result
                    windows[name] = anomaly_windows(frame["ts"], labels["start"])
                    evals.append((result, labels))
                    false, normal = _false_alarms_per_1000(result, labels)
                    alarms[0] += false
                    alarms[1] += normal
            per_shape[kind] = (scored, windows, evals, alarms)
        seconds = time.perf_counter() - began
        every = ({}, {}, [], [0, 0])
        for kind, (scored, windows, evals, alarms) in [*per_shape.items(), ("all", every)]:
            if kind != "all":
                every[0].update(scored)
                every[1].update(windows)
                every[2].extend(evals)
                every[3][0] += alarms[0]
                every[3][1] += alarms[1]
            best = best_window_score(scored, windows)
            tagged = [r.assign(sensor_id=str(i)) for i, (r, _) in enumerate(evals)]
            label_rows = [
                lab.assign(sensor_id=str(i)) for i, (_, lab) in enumerate(evals) if len(lab)
            ]
            ev = evaluate(pd.concat(tagged), pd.concat(label_rows), tolerance="1h")
            rows.append(
                {
                    "detector": make.name,
                    "shape": kind,
                    "window_score": round(best.score, 1),
                    "event_precision": round(ev.event_precision, 2),
                    "event_recall": round(ev.event_recall, 2),
                    "event_f1": round(ev.event_f1, 2),
                    "false_alarms_per_1000": round(1000 * alarms[0] / max(alarms[1], 1), 2),
                    "seconds": round(seconds, 0),
                }
            )
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1000, 1001, 1002])
    parser.add_argument("--days", type=int, default=7)
    args = parser.parse_args()
    table = run(args.seeds, args.days)
    print(f"{len(SHAPES)} shapes x {len(args.seeds)} seeds x (anomaly, clean), {args.days} days")
    wide = table.pivot(index="shape", columns="detector", values="window_score")
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(table.to_string(index=False))
        print("\nwindow score by shape:")
        print(wide.to_string())


if __name__ == "__main__":
    main()
