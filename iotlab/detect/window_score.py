"""Window-based scoring that rewards early detection and charges false alarms.

This implements, from its published description, the scoring scheme of the Numenta
Anomaly Benchmark (Lavin & Ahmad, "Evaluating Real-time Anomaly Detection Algorithms",
2015):

- every labelled anomaly sits in a *window* of readings around it;
- inside a window only the *first* detection counts, and it earns
  ``a_tp * sigma(position)`` where ``position`` runs from -1 at the window's start to
  0 at its end and ``sigma(x) = 2 / (1 + exp(5 x)) - 1`` (about 0.99 at the start, 0
  at the end): the earlier, the better;
- a window with no detection costs ``a_fn``;
- a detection outside every window costs ``a_fp`` times ``-sigma(position)`` measured
  from the end of the window before it (a detection just after a window costs little,
  one far from any window costs the full ``a_fp``);
- readings in the first ``probation`` share of a series (at most 750 readings) are not
  scored: a detector needs them to learn;
- the result is normalised so that a detector that never fires scores 0 and a perfect
  one 100, and the threshold on the detector's output is chosen to maximise it.

The standard profile weighs ``a_tp = a_fn = 1`` and ``a_fp = 0.11``.

Examples
--------
>>> import numpy as np, pandas as pd
>>> ts = pd.date_range("2026-01-01", periods=1000, freq="5min", tz="UTC")
>>> windows = pd.DataFrame({"start": [ts[600]], "end": [ts[700]]})
>>> early = pd.DataFrame({"ts": ts, "confidence": (np.arange(1000) == 610) * 0.9})
>>> late = pd.DataFrame({"ts": ts, "confidence": (np.arange(1000) == 690) * 0.9})
>>> window_score({"a": early}, {"a": windows}, threshold=0.5).score > window_score(
...     {"a": late}, {"a": windows}, threshold=0.5).score
True
>>> window_score({"a": early}, {"a": windows}, threshold=0.95).score  # never fires
0.0
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from iotlab.errors import ValidationError

__all__ = ["WindowScore", "anomaly_windows", "best_window_score", "window_score"]

#: The cap on the probationary period, in readings.
_MAX_PROBATION = 750


@dataclass(frozen=True)
class WindowScore:
    """What :func:`window_score` measured at one threshold."""

    score: float  # normalised: 0 never fires, 100 perfect
    threshold: float
    n_windows: int
    n_detected: int
    n_false_alarms: int
    n_normal: int  # scored readings outside every window

    @property
    def false_alarms_per_1000(self) -> float:
        """False alarms per 1,000 scored readings outside the windows."""
        return 1000.0 * self.n_false_alarms / self.n_normal if self.n_normal else float("nan")


def _sigma(position: np.ndarray) -> np.ndarray:
    return np.where(position > 3.0, -1.0, 2.0 / (1.0 + np.exp(5.0 * position)) - 1.0)


def anomaly_windows(ts: pd.Series, anomalies: pd.Series, *, share: float = 0.1) -> pd.DataFrame:
    """Windows centred on labelled anomaly times, as the benchmark builds them.

    The windows together cover ``share`` of the series' readings, split equally
    between the anomalies; overlapping windows merge.
    """
    ts = pd.Series(pd.DatetimeIndex(ts)).sort_values(ignore_index=True)
    points = pd.DatetimeIndex(anomalies).sort_values()
    if points.empty:
        return pd.DataFrame({"start": ts.iloc[:0], "end": ts.iloc[:0]})
    half = max(1, int(share * len(ts) / len(points))) // 2
    rows = np.searchsorted(ts.to_numpy(), points.to_numpy())
    starts = np.clip(rows - half, 0, len(ts) - 1)
    ends = np.clip(rows + half, 0, len(ts) - 1)
    merged: list[list[int]] = []
    for s, e in zip(starts, ends):
        if merged and s <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], int(e))
        else:
            merged.append([int(s), int(e)])
    return pd.DataFrame(
        {"start": [ts.iloc[s] for s, _ in merged], "end": [ts.iloc[e] for _, e in merged]}
    )


class _Series:
    """One scored series, prepared once so that many thresholds are cheap."""

    def __init__(self, scored: pd.DataFrame, windows: pd.DataFrame, column: str) -> None:
        for col in ("ts", column):
            if col not in scored.columns:
                raise ValidationError("missing column in scored", field=col)
        scored = scored.sort_values("ts", kind="stable")
        t = pd.DatetimeIndex(scored["ts"]).as_unit("ns").asi8
        self.value = np.nan_to_num(scored[column].to_numpy(dtype=float), nan=-np.inf)
        n = len(t)
        probation = min(int(math.floor(0.15 * n)), _MAX_PROBATION)
        self.window_of = np.full(n, -1)
        bounds: list[tuple[int, int]] = []
        for start, end in zip(windows["start"], windows["end"]):
            s = int(np.searchsorted(t, pd.Timestamp(start).as_unit("ns").value, side="left"))
            e = int(np.searchsorted(t, pd.Timestamp(end).as_unit("ns").value, side="right")) - 1
            if e < s:
                continue
            self.window_of[s : e + 1] = len(bounds)
            bounds.append((s, e))
        self.n_windows = len(bounds)
        index = np.arange(n)
        # Position of each reading relative to its window (TP) or to the window before it (FP).
        self.position = np.full(n, np.inf)
        previous_end = np.full(n, -1)
        previous_len = np.ones(n)
        for s, e in bounds:
            length = e - s + 1
            inside = slice(s, e + 1)
            self.position[inside] = -(e - index[inside] + 1) / length
            previous_end[e + 1 :] = e
            previous_len[e + 1 :] = length
        after = (self.window_of < 0) & (previous_end >= 0)
        self.position[after] = (index[after] - previous_end[after]) / previous_len[after]
        self.scored = index >= probation
        self.n_normal = int((self.scored & (self.window_of < 0)).sum())

    def tally(self, threshold: float, a_tp: float, a_fp: float, a_fn: float):
        fired = self.scored & (self.value >= threshold)
        windows = self.window_of[fired]
        position = self.position[fired]
        inside = windows >= 0
        first = np.unique(windows[inside], return_index=True)[1]
        tp = float(a_tp * _sigma(position[inside][first]).sum())
        outside = position[~inside]
        fp = float(np.where(np.isinf(outside), -a_fp, a_fp * _sigma(outside)).sum())
        detected = len(first)
        return tp + fp - a_fn * (self.n_windows - detected), detected, int((~inside).sum())


def window_score(
    scored: Mapping[str, pd.DataFrame],
    windows: Mapping[str, pd.DataFrame],
    *,
    threshold: float,
    column: str = "confidence",
    a_tp: float = 1.0,
    a_fp: float = 0.11,
    a_fn: float = 1.0,
) -> WindowScore:
    """The normalised window score of many scored series at one threshold.

    Parameters
    ----------
    scored
        Series name -> a frame with ``ts`` and ``column`` (NaN: not scored).
    windows
        Series name -> a frame of anomaly windows ``start``, ``end`` (inclusive);
        a series missing here has none.
    threshold
        A reading is a detection when ``column >= threshold``.
    column, a_tp, a_fp, a_fn
        The score column and the profile's weights.
    """
    prepared = [
        _Series(frame, windows.get(name, pd.DataFrame({"start": [], "end": []})), column)
        for name, frame in scored.items()
    ]
    return _score(prepared, threshold, a_tp, a_fp, a_fn)


def _score(prepared: list[_Series], threshold: float, a_tp: float, a_fp: float, a_fn: float):
    raw = 0.0
    detected = false_alarms = 0
    for series in prepared:
        s, d, f = series.tally(threshold, a_tp, a_fp, a_fn)
        raw, detected, false_alarms = raw + s, detected + d, false_alarms + f
    n_windows = sum(p.n_windows for p in prepared)
    null, perfect = -a_fn * n_windows, a_tp * n_windows * float(_sigma(np.array([-1.0]))[0])
    span = perfect - null
    normalised = 100.0 * (raw - null) / span if span > 0 else float("nan")
    return WindowScore(
        score=normalised,
        threshold=threshold,
        n_windows=n_windows,
        n_detected=detected,
        n_false_alarms=false_alarms,
        n_normal=sum(p.n_normal for p in prepared),
    )


def best_window_score(
    scored: Mapping[str, pd.DataFrame],
    windows: Mapping[str, pd.DataFrame],
    *,
    column: str = "confidence",
    thresholds: np.ndarray | None = None,
    a_tp: float = 1.0,
    a_fp: float = 0.11,
    a_fn: float = 1.0,
) -> WindowScore:
    """:func:`window_score` at the threshold that maximises it (one threshold for all
    series, as the benchmark picks it). By default every distinct score value of the
    top 5,000 is tried."""
    prepared = [
        _Series(frame, windows.get(name, pd.DataFrame({"start": [], "end": []})), column)
        for name, frame in scored.items()
    ]
    if thresholds is None:
        values = np.concatenate([p.value[p.scored] for p in prepared])
        values = np.unique(values[np.isfinite(values)])
        thresholds = values[-5000:]
    best = WindowScore(0.0, float("inf"), sum(p.n_windows for p in prepared), 0, 0, 0)
    for threshold in thresholds:
        result = _score(prepared, float(threshold), a_tp, a_fp, a_fn)
        if result.score > best.score:
            best = result
    return best
