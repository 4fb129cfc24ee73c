"""The pieces the offline and live Prophet scoring share: Prophet's forecast as arrays,
the local correction's trailing median, and which refit judges a reading."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from iotlab.detect import online
from iotlab.detect._quiet import fit_quietly, import_prophet
from iotlab.detect.online import NO_MODEL, judging_refit, trailing_median
from iotlab.detect.prophet_curve import ProphetCurve


@pytest.mark.parametrize("scaling", ["absmax", "minmax"])
def test_prophet_curve_equals_predict_including_the_held_trend(scaling):
    rng = np.random.default_rng(4)
    ds = pd.date_range("2026-01-01", periods=16 * 48, freq="30min")
    hours = ds.hour.to_numpy() + ds.minute.to_numpy() / 60
    y = (
        50
        + 0.3 * np.arange(len(ds)) / 48
        + 4 * np.sin(2 * np.pi * hours / 24)
        + 2 * (ds.day_of_week.to_numpy() >= 5)
        + rng.normal(0, 0.5, len(ds))
    )
    model = import_prophet()(
        n_changepoints=20,
        daily_seasonality=6,
        weekly_seasonality=3,
        yearly_seasonality=False,
        uncertainty_samples=0,
        scaling=scaling,
    )
    model = fit_quietly(model, pd.DataFrame({"ds": ds, "y": y}))
    hold = pd.Timedelta("1D")
    curve = ProphetCurve.from_model(model, hold_after=hold)
    offsets = np.sort(rng.uniform(-86400e9, 20 * 86400e9, 500).astype(np.int64))
    at = ds[0] + pd.to_timedelta(offsets, unit="ns")
    want = model.predict(pd.DataFrame({"ds": at}))
    limit = ds.max() + hold
    held = model.predict(pd.DataFrame({"ds": [limit]}))["trend"].iloc[0]
    beyond = np.asarray(at > limit)
    assert beyond.any() and (~beyond).any()
    yhat = want["yhat"].to_numpy() + np.where(beyond, held - want["trend"].to_numpy(), 0.0)
    np.testing.assert_allclose(curve.at(at.as_unit("ns").asi8), yhat, rtol=1e-10, atol=1e-9)


@pytest.mark.parametrize("cells", [online._MATRIX_CELLS, 50])  # numpy, then pandas
def test_trailing_median_equals_pandas_rolling(monkeypatch, cells):
    monkeypatch.setattr(online, "_MATRIX_CELLS", cells)
    rng = np.random.default_rng(8)
    t = np.cumsum(rng.integers(1, 400, 600)) * 10**9  # irregular, with gaps
    values = rng.normal(0, 1, 600)
    values[rng.choice(600, 40, replace=False)] = np.nan
    window = pd.Timedelta("30min")
    want = (
        pd.Series(values, index=pd.DatetimeIndex(t))
        .rolling(window, closed="left", min_periods=3)
        .median()
        .fillna(0.0)
        .to_numpy()
    )
    rows = np.arange(100, 600)
    got = trailing_median(t, values, window.value, rows=rows)
    np.testing.assert_allclose(got, want[rows], rtol=0, atol=1e-12)
    assert (got != 0).sum() > 300  # most readings had a window to take a median of


def test_judging_refit_is_the_last_grid_point_after_enough_history():
    day = pd.Timedelta("1D")
    first = pd.Timestamp("2026-01-05 07:13", tz="UTC").value
    t = (
        pd.to_datetime(
            [
                "2026-01-05 08:00",
                "2026-01-07 07:12",
                "2026-01-07 07:13",
                "2026-01-07 23:59",
                "2026-01-08 00:00",
            ],
            utc=True,
        )
        .as_unit("ns")
        .asi8
    )
    got = judging_refit(t, first_ns=first, refit_every=day, min_history=2 * day)
    start = first + 2 * day.value
    midnight = pd.Timestamp("2026-01-08", tz="UTC").value
    assert got.tolist() == [NO_MODEL, NO_MODEL, start, start, midnight]
