"""Anomaly detection: detectors with one interface, evaluation, fleet-wide runs.

Every detector has ``fit(series) -> self``, ``score(series)``, ``detect(series)``
and ``score_online(series, refit_every=..., window=..., min_history=...)``; see
:class:`~iotlab.detect.base.Detector`. Heavy imports (Prophet) happen on first fit.

Examples
--------
>>> import numpy as np, pandas as pd
>>> from iotlab.detect import RollingZScoreDetector
>>> ts = pd.date_range("2026-01-01", periods=200, freq="1min", tz="UTC")
>>> values = np.random.default_rng(0).normal(0.0, 1.0, 200)
>>> values[150] = 12.0
>>> RollingZScoreDetector().detect(pd.DataFrame({"ts": ts, "value": values}))[
...     ["start", "end", "n_points"]]
                      start                       end  n_points
0 2026-01-01 02:30:00+00:00 2026-01-01 02:30:00+00:00         1
"""

from __future__ import annotations

from iotlab._compat import deprecated
from iotlab.detect.base import SCORE_COLUMNS, Detector, ShortHistoryWarning, as_series
from iotlab.detect.baselines import RollingZScoreDetector, SeasonalNaiveDetector
from iotlab.detect.calibration import Calibration
from iotlab.detect.episodes import EPISODE_COLUMNS
from iotlab.detect.evaluate import Evaluation, evaluate
from iotlab.detect.prophet import ProphetResidualDetector
from iotlab.detect.severity import SEVERITIES, SeverityRule

__all__ = [
    "EPISODE_COLUMNS",
    "SCORE_COLUMNS",
    "SEVERITIES",
    "Calibration",
    "Detector",
    "Evaluation",
    "ProphetResidualDetector",
    "RollingZScoreDetector",
    "SeasonalNaiveDetector",
    "SeverityRule",
    "ShortHistoryWarning",
    "as_series",
    "evaluate",
]


def __getattr__(name: str) -> object:
    renamed = {"EVENT_COLUMNS": "EPISODE_COLUMNS", "SEVERITY_LEVELS": "SEVERITIES"}
    if name in renamed:  # 0.1's names
        deprecated(f"iotlab.detect.{name} is deprecated, use {renamed[name]}")
        return globals()[renamed[name]]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
