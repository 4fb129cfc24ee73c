"""Synthetic series for the detector tests: a daily cycle plus Gaussian noise.

Kept small (5-minute readings over a few days) so Prophet fits stay well under a
second each.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from iotlab.detect import ProphetResidualDetector, RollingZScoreDetector, SeasonalNaiveDetector

NOISE = 0.2
AMPLITUDE = 3.0


def seasonal_series(
    days: float = 4.0, freq: str = "5min", seed: int = 0, start: str = "2026-01-05"
) -> pd.DataFrame:
    """``20 + 3 sin(daily) + N(0, 0.2)``: noise sd 0.2, a daily swing of +-3."""
    ts = pd.date_range(
        start, periods=int(pd.Timedelta(f"{days}D") / pd.Timedelta(freq)), freq=freq, tz="UTC"
    )
    hours = (ts - ts[0]) / pd.Timedelta("1h")
    rng = np.random.default_rng(seed)
    values = 20 + AMPLITUDE * np.sin(2 * np.pi * np.asarray(hours) / 24)
    return pd.DataFrame({"ts": ts, "value": values + rng.normal(0, NOISE, len(ts))})


@pytest.fixture
def make_series() -> Callable[..., pd.DataFrame]:
    return seasonal_series


DETECTORS = {
    "prophet": lambda **kw: ProphetResidualDetector(**kw),
    "rolling": lambda **kw: RollingZScoreDetector(**kw),
    "seasonal_naive": lambda **kw: SeasonalNaiveDetector(**kw),
}


@pytest.fixture(params=sorted(DETECTORS))
def detector_name(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def make_detector(detector_name: str) -> Callable[..., object]:
    return DETECTORS[detector_name]
