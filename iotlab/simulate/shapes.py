"""Single labelled series of the shapes real sensors and metrics have, for detector work.

The fleet simulator's sensors are smooth seasonal signals. Real series are not: a
machine switched on at 09:00 and off at 18:00 steps, a CPU metric wanders like a random
walk, counts come in heavy-tailed bursts, a quantised sensor sits on a few levels, a
process moves to a new level and stays. :func:`shape_series` makes each of these,
seeded, with (optionally) one labelled anomaly of the kind that matters for it, so
detectors can be judged on shapes they were not tuned on.

Examples
--------
>>> frame, labels = shape_series("random_walk", seed=3, days=7)
>>> len(frame), list(frame.columns), list(labels.columns)
(2016, ['ts', 'value'], ['start', 'end', 'kind'])
>>> shape_series("random_walk", seed=3, days=7)[0].equals(frame)  # same seed, same data
True
>>> shape_series("random_walk", seed=3, days=7, anomaly=False)[1].empty
True
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from iotlab.errors import ValidationError

__all__ = ["SHAPES", "shape_series"]

#: The shapes :func:`shape_series` makes, with the anomaly each one carries.
SHAPES = {
    "on_off": "a day at twice the usual on-level",
    "on_off_missed": "a working day the machine never switched on",
    "random_walk": "a spike of 25 units for 30 minutes",
    "bursty_counts": "three hours at six times the usual rate",
    "quantised": "a level never seen before, for an hour",
    "regime_change": "a permanent level shift: alert once, then learn it",
    "variance_burst": "six hours of six times the usual noise",
    "drift": "a slow ramp away from the usual level",
}


def shape_series(
    kind: str,
    *,
    seed: int,
    days: int = 14,
    freq: str = "5min",
    start: str = "2026-03-02",
    anomaly: bool = True,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One series of shape ``kind`` (see :data:`SHAPES`) and its labels.

    Returns ``(frame, labels)``: ``ts`` (UTC) and ``value``; ``start``, ``end``
    (exclusive) and ``kind`` of the anomaly, placed at random in the last 45% of the
    series (empty if ``anomaly`` is false).
    """
    if kind not in SHAPES:
        raise ValidationError(f"unknown shape {kind!r}; one of {sorted(SHAPES)}", field="kind")
    rng = np.random.default_rng(seed)
    ts = pd.date_range(
        start, periods=int(pd.Timedelta(days=days) / pd.Timedelta(freq)), freq=freq, tz="UTC"
    )
    n, step = len(ts), pd.Timedelta(freq)
    hour = ts.hour.to_numpy() + ts.minute.to_numpy() / 60.0
    daily = np.sin(2 * np.pi * hour / 24.0)
    on = (hour >= 9) & (hour < 18)

    def rows(duration: str) -> int:
        return max(1, int(pd.Timedelta(duration) / step))

    at = int(n * 0.55) + int(rng.integers(0, max(1, int(n * 0.35))))
    if kind in ("on_off", "on_off_missed"):
        at = int(ts.searchsorted(ts[at].normalize() + pd.Timedelta("9h")))
        length = rows("9h")
    else:
        length = {
            "random_walk": rows("30min"),
            "bursty_counts": rows("3h"),
            "quantised": rows("1h"),
            "variance_burst": rows("6h"),
        }.get(kind, n - at)
    end = min(n, at + length)
    value: np.ndarray
    if kind == "on_off":
        value = np.where(on, 80.0, 20.0) + rng.normal(0, 2, n)
        if anomaly:
            value[at:end] += 80.0
    elif kind == "on_off_missed":
        value = np.where(on, 80.0, 20.0) + rng.normal(0, 2, n)
        if anomaly:
            value[at:end] = 20.0 + rng.normal(0, 2, end - at)
    elif kind == "random_walk":
        value = np.clip(50 + np.cumsum(rng.normal(0, 0.3, n)), 0, 100)
        if anomaly:
            value[at:end] += 25.0
    elif kind == "bursty_counts":
        rate = 5 + 3 * daily
        value = rng.poisson(rate) + (rng.random(n) < 0.01) * rng.pareto(2.0, n) * 10
        if anomaly:
            value[at:end] += rng.poisson(5 * rate[at:end])
    elif kind == "quantised":
        value = 2.0 + (rng.random(n) < 0.03)
        if anomaly:
            value[at:end] = 7.0
    elif kind == "regime_change":
        value = 30 + 5 * daily + rng.normal(0, 1, n)
        if anomaly:
            value[at:] += 15.0
            end = min(n, at + rows("1h"))
    elif kind == "variance_burst":
        value = 30 + 5 * daily + rng.normal(0, 1, n)
        if anomaly:
            value[at:end] += rng.normal(0, 6, end - at)
    else:  # drift
        value = 60 + 3 * daily + rng.normal(0, 0.7, n)
        if anomaly:
            value[at:] += np.linspace(0, 25, n - at)
            end = min(n, at + rows("12h"))
    frame = pd.DataFrame({"ts": ts, "value": np.asarray(value, dtype=float)})
    labels = pd.DataFrame({"start": ts[:0], "end": ts[:0], "kind": pd.Series([], dtype=object)})
    if anomaly:
        stop = ts[end] if end < n else ts[-1] + step
        labels = pd.DataFrame({"start": [ts[at]], "end": [stop], "kind": [kind]})
    return frame, labels
