"""Score a detector against ground-truth labels: point and event level, and delay.

Definitions (``tolerance`` extends each label's end, since a detector that looks
back may flag a reading just after a fault ends):

- point level: a reading is truly anomalous when it falls in a label's
  ``[start, end)``; precision/recall/F1 of ``is_anomaly`` against that;
- event level: a label is *detected* when a flagged reading of its device and
  sensor falls in ``[start, end + tolerance)``; a *false event* is a run of flagged
  readings (readings less than ``episode_gap`` apart, as in ``detect()``) that
  overlaps no label window; precision = runs overlapping a label / all runs;
- delay: first flagged reading in the window minus the label's ``start``, over
  detected labels.

Labels whose window holds no finite reading (a dropout, an offline device) are
not counted: no value-based detector can see them. Only labels of the
(device, sensor) pairs present in ``scored`` are used.

Examples
--------
>>> import pandas as pd
>>> ts = pd.date_range("2026-01-01", periods=10, freq="1min", tz="UTC")
>>> flags = [False] * 3 + [True] + [False] * 5 + [True]
>>> scored = pd.DataFrame({"ts": ts, "value": 1.0, "is_anomaly": flags})
>>> labels = pd.DataFrame({"start": [ts[2]], "end": [ts[5]], "kind": ["level_shift"]})
>>> result = evaluate(scored, labels, tolerance="1min", episode_gap="2min")
>>> (result.event_recall, result.event_precision, result.median_delay)
(1.0, 0.5, Timedelta('0 days 00:01:00'))
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from pandas._libs import NaTType

from iotlab._compat import legacy_call_forms
from iotlab.detect.episodes import episode_ids
from iotlab.errors import ValidationError

__all__ = ["Evaluation", "evaluate"]


@dataclass(frozen=True)
class Evaluation:
    """Result of :func:`evaluate`; ``to_frame()`` gives a one-row DataFrame."""

    point_precision: float
    point_recall: float
    point_f1: float
    event_precision: float
    event_recall: float
    event_f1: float
    n_labels: int
    n_detected: int
    n_flagged_events: int
    n_false_events: int
    mean_delay: pd.Timedelta | NaTType  # NaT when no label was detected
    median_delay: pd.Timedelta | NaTType

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([asdict(self)])


def _f1(precision: float, recall: float) -> float:
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def _ratio(num: int, den: int) -> float:
    return float(num / den) if den else float("nan")


@legacy_call_forms(renamed={"event_gap": "episode_gap"})
def evaluate(
    scored: pd.DataFrame,
    labels: pd.DataFrame,
    *,
    tolerance: str | pd.Timedelta = "10min",
    episode_gap: str | pd.Timedelta = "1h",
) -> Evaluation:
    """Precision, recall, F1 (point and event level) and detection delay.

    Parameters
    ----------
    scored
        Output of ``score()``/``score_online()`` (``ts``, ``value``, ``is_anomaly``),
        optionally for many series with ``device_id`` and ``sensor_id`` columns.
    labels
        ``start``, ``end`` (exclusive), ``kind``, and ``device_id``/``sensor_id`` when
        ``scored`` has them.
    tolerance
        Grace period after a label's end in which a flag still counts.
    episode_gap
        Flagged readings closer than this form one run (match the detector's).
    """
    keys = [c for c in ("device_id", "sensor_id") if c in scored.columns]
    for col in ("ts", "value", "is_anomaly"):
        if col not in scored.columns:
            raise ValidationError("missing column in scored", field=col)
    for col in ("start", "end", *keys):
        if col not in labels.columns:
            raise ValidationError("missing column in labels", field=col)
    tolerance = pd.Timedelta(tolerance)
    groups = scored.groupby(keys, sort=False) if keys else [((), scored)]
    label_groups: dict[Hashable, pd.DataFrame] = (
        dict(iter(labels.groupby(keys, sort=False))) if keys else {(): labels}
    )
    tp = fp = fn = 0
    n_labels = n_detected = n_runs = n_false = 0
    delays: list[pd.Timedelta] = []
    for key, series in groups:
        key = key if isinstance(key, tuple) else (key,)
        series = series.sort_values("ts")
        t = pd.DatetimeIndex(series["ts"]).as_unit("ns").asi8
        flag = series["is_anomaly"].to_numpy(dtype=bool)
        finite = np.isfinite(series["value"].to_numpy(dtype=float))
        truth = np.zeros(len(t), dtype=bool)
        covered = np.zeros(len(t), dtype=bool)  # inside a label window plus tolerance
        own = label_groups.get(key if keys else (), labels.iloc[:0])
        for start, end in zip(own["start"], own["end"]):
            s, e = pd.Timestamp(start).as_unit("ns").value, pd.Timestamp(end).as_unit("ns").value
            inside = (t >= s) & (t < e)
            window = (t >= s) & (t < e + tolerance.value)
            truth |= inside
            covered |= window
            if not (inside & finite).any():
                continue  # nothing observable to detect
            n_labels += 1
            hits = np.flatnonzero(window & flag)
            if hits.size:
                n_detected += 1
                delays.append(pd.Timedelta(int(t[hits[0]] - s)))
        tp += int((flag & truth).sum())
        fp += int((flag & ~truth).sum())
        fn += int((~flag & truth & finite).sum())
        runs = episode_ids(series["ts"], flag, episode_gap)
        for run in np.unique(runs[runs >= 0]):
            n_runs += 1
            n_false += int(not covered[runs == run].any())
    point_p, point_r = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
    event_p, event_r = _ratio(n_runs - n_false, n_runs), _ratio(n_detected, n_labels)
    delay = pd.Series(delays, dtype="timedelta64[ns]")
    return Evaluation(
        point_precision=point_p,
        point_recall=point_r,
        point_f1=_f1(np.nan_to_num(point_p), np.nan_to_num(point_r)),
        event_precision=event_p,
        event_recall=event_r,
        event_f1=_f1(np.nan_to_num(event_p), np.nan_to_num(event_r)),
        n_labels=n_labels,
        n_detected=n_detected,
        n_flagged_events=n_runs,
        n_false_events=n_false,
        mean_delay=delay.mean() if len(delay) else pd.NaT,
        median_delay=delay.median() if len(delay) else pd.NaT,
    )
