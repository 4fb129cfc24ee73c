"""Severity of an anomaly: how far off it is for *this* sensor, and how sure we are.

A 2-unit error is nothing on a 0-1000 lux light sensor and a lot on a 0-5 V
supply rail, so severity never uses absolute value thresholds. It starts from the
deviation ``|value - expected|`` as a share of the sensor's range (its declared
``sensor_range`` or, without one, the data's robust 0.5-99.5% range) and steps
one level down when the detector is not very sure (confidence below
``sure_confidence``). A reading outside the declared range is always critical.

Examples
--------
>>> import numpy as np
>>> rule = SeverityRule()
>>> rule.assign(np.array([0.01, 0.2, 0.6]), np.array([0.99, 0.99, 0.85]),
...             np.array([True, True, True])).tolist()
['low', 'high', 'high']
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from iotlab._compat import deprecated

__all__ = ["SEVERITIES", "SeverityRule"]

#: Ordered from mildest to worst; the ``severity`` column is an ordered categorical.
#: Severity levels, least to most severe.
SEVERITIES = ("low", "medium", "high", "critical")


@dataclass(frozen=True)
class SeverityRule:
    """Deviation bands (share of the sensor's range) that start each level.

    Parameters
    ----------
    medium, high, critical
        A deviation of at least this share of the range is at least this level.
    sure_confidence
        Below this confidence, severity is one level milder.
    """

    medium: float = 0.05
    high: float = 0.15
    critical: float = 0.4
    sure_confidence: float = 0.95

    def __post_init__(self) -> None:
        if not 0.0 < self.medium < self.high < self.critical:
            raise ValueError("severity bands must satisfy 0 < medium < high < critical")

    def assign(
        self,
        deviation_share: np.ndarray,
        confidence: np.ndarray,
        is_anomaly: np.ndarray,
        out_of_range: np.ndarray | None = None,
    ) -> pd.Categorical[str]:
        """Severity per row; missing (NaN) where ``is_anomaly`` is false."""
        share = np.nan_to_num(np.asarray(deviation_share, dtype=float), nan=0.0)
        level = np.searchsorted([self.medium, self.high, self.critical], share, side="right")
        unsure = np.nan_to_num(np.asarray(confidence, dtype=float)) < self.sure_confidence
        level = np.where(unsure, np.maximum(level - 1, 0), level)
        if out_of_range is not None:
            level = np.where(out_of_range, len(SEVERITIES) - 1, level)
        codes = np.where(np.asarray(is_anomaly, dtype=bool), level, -1)
        return pd.Categorical.from_codes(codes, categories=pd.Index(SEVERITIES), ordered=True)


def __getattr__(name: str) -> object:
    if name == "SEVERITY_LEVELS":  # 0.1's name
        deprecated("iotlab.detect.SEVERITY_LEVELS is deprecated, use SEVERITIES")
        return SEVERITIES
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
