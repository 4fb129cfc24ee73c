"""Simple baselines with the same interface: rolling robust z-score and seasonal naive.

Both are causal by construction (each reading is compared with data strictly
before it), so their online scores are exact trailing-window statistics,
computed vectorised rather than by refitting.

Examples
--------
>>> import numpy as np, pandas as pd
>>> ts = pd.date_range("2026-01-01", periods=300, freq="5min", tz="UTC")
>>> values = np.random.default_rng(0).normal(20.0, 0.5, 300)
>>> values[200] = 35.0
>>> scored = RollingZScoreDetector().score(pd.DataFrame({"ts": ts, "value": values}))
>>> scored.loc[scored["is_anomaly"], "ts"].tolist() == [ts[200]]
True
"""

from __future__ import annotations

from typing import Unpack

import numpy as np
import pandas as pd
from pandas.api.indexers import BaseIndexer

from iotlab.detect.base import Detector, DetectorOptions, Forecast, ShortHistoryWarning
from iotlab.detect.calibration import robust_scale

__all__ = ["RollingZScoreDetector", "SeasonalNaiveDetector", "trailing_forecasts"]

_IQR_TO_SIGMA = 1.0 / 1.349


def _trailing_stats(
    ts: pd.Series, values: np.ndarray, window: pd.Timedelta, min_periods: int
) -> tuple[np.ndarray, np.ndarray]:
    """Median and IQR-based scale of the values in ``[t - window, t)`` for each reading."""
    rolling = pd.Series(values, index=pd.DatetimeIndex(ts)).rolling(
        window, closed="left", min_periods=min_periods
    )
    median = rolling.median().to_numpy()
    spread = (rolling.quantile(0.75) - rolling.quantile(0.25)).to_numpy()
    return median, spread * _IQR_TO_SIGMA


class RollingZScoreDetector(Detector):
    """Robust z-score against the median and IQR of a trailing window.

    Parameters
    ----------
    window
        Length of the trailing window.
    min_periods
        Fewer readings than this in the window: not scored.
    **kwargs
        See :class:`Detector` (threshold, sensor_range, calibration, severity, episode_gap).
    """

    name = "rolling_zscore"

    def __init__(
        self,
        *,
        window: str | pd.Timedelta = "2h",
        min_periods: int = 10,
        **kwargs: Unpack[DetectorOptions],
    ) -> None:
        super().__init__(**kwargs)
        self.window = pd.Timedelta(window)
        self.min_periods = min_periods

    def _fit(self, clean: pd.DataFrame) -> None:
        values = clean["value"].to_numpy()
        self._width_ = self._width(values)
        self._floor_ = self._floor(values)
        # The fitted tail is the context for scoring a later series (live use).
        self._tail = clean[clean["ts"] >= clean["ts"].iloc[-1] - self.window]

    def _stats(self, frame: pd.DataFrame, context: pd.DataFrame) -> Forecast:
        both = pd.concat([context, frame], ignore_index=True)
        median, scale = _trailing_stats(
            both["ts"], both["value"].to_numpy(), self.window, self.min_periods
        )
        own = slice(len(context), None)
        return Forecast(
            median[own],
            np.maximum(scale[own], self._floor_),
            np.full(len(frame), self._width_),
        )

    def _predict(self, frame: pd.DataFrame) -> Forecast:
        context = self._tail[self._tail["ts"] < frame["ts"].iloc[0]] if len(frame) else self._tail
        return self._stats(frame, context)

    def _predict_online(self, frame, refit_every, window, min_history) -> Forecast:
        # Already causal: the trailing window excludes the reading itself. The floor and
        # width use the data seen so far; ``window``/``refit_every`` do not apply.
        median, spread = _trailing_stats(
            frame["ts"], frame["value"].to_numpy(), self.window, self.min_periods
        )
        width = _expanding_width(frame, self.sensor_range)
        return Forecast(
            _mask_warmup(frame, median, min_history), _floored(spread, width, median), width
        )


def trailing_forecasts(
    history: pd.DataFrame,
    probes: pd.DataFrame,
    widths: np.ndarray,
    *,
    window: str | pd.Timedelta = "2h",
    min_periods: int = 10,
) -> tuple[np.ndarray, np.ndarray]:
    """What :class:`RollingZScoreDetector` fitted on each of many series predicts at probes.

    The live scorer refits hundreds of sensors at a time; fitting one detector per
    sensor would cost a few milliseconds of pandas overhead each. This computes the
    same numbers for all of them with one grouped rolling window.

    Parameters
    ----------
    history
        ``series`` (integer code), ``ts``, ``value``: each series' fitted history,
        sorted by ``series`` then ``ts``, without NaN values.
    probes
        ``series``, ``ts``: future times to predict, sorted the same way, each later
        than its series' history.
    widths
        The range width of each series code (what ``Detector._width`` gives: the
        declared range, else the history's robust range); sets the scale floor.
    window, min_periods
        As for :class:`RollingZScoreDetector`.

    Returns
    -------
    expected, scale
        Arrays aligned with ``probes`` (NaN where the window holds too few readings).

    Examples
    --------
    >>> ts = pd.date_range("2026-01-01", periods=30, freq="1min", tz="UTC")
    >>> history = pd.DataFrame({"series": 0, "ts": ts, "value": np.arange(30.0)})
    >>> probes = pd.DataFrame({"series": 0, "ts": ts[-1:] + pd.Timedelta("1min")})
    >>> expected, scale = trailing_forecasts(history, probes, np.array([100.0]))
    >>> float(expected[0]), round(float(scale[0]), 2)
    (14.5, 10.75)
    """
    window = pd.Timedelta(window)
    codes = history["series"].to_numpy()
    values = history["value"].to_numpy(dtype=float)
    level = pd.Series(np.abs(values)).groupby(codes).median()
    floor = np.maximum(1e-3 * widths, 1e-6 * np.maximum(level.reindex(range(len(widths))), 1.0))
    # A probe's window is its series' history in [probe - window, probe) (closed left, as
    # the detector's rolling window): every probe follows the history, so the window is a
    # suffix of the series' last ``window``, the detector's context. Its row bounds come
    # from one search over (series, time rank); the rolling statistics are then computed
    # on those windows only, not on every history row of every series.
    # As int64 nanoseconds: a tz-aware column's plain to_numpy() boxes every Timestamp.
    ts_ns = history["ts"].to_numpy(dtype="datetime64[ns]").view(np.int64)
    codes = codes.astype(np.int64)
    probe_codes = probes["series"].to_numpy(dtype=np.int64)
    probe_ns = probes["ts"].to_numpy(dtype="datetime64[ns]").view(np.int64)
    times = np.unique(ts_ns)
    stride = len(times) + 1
    keys = codes * stride + np.searchsorted(times, ts_ns)
    start = np.searchsorted(
        keys, probe_codes * stride + np.searchsorted(times, probe_ns - window.value)
    )
    end = np.searchsorted(keys, probe_codes * stride + np.searchsorted(times, probe_ns))
    # One series: the history values, then a slot per probe whose window is its bounds
    # (history rows get empty windows, so NaN, and are dropped).
    slots = pd.Series(np.concatenate([values, np.full(len(probe_ns), np.nan)]))
    nothing = np.zeros(len(values), dtype=np.int64)
    rolling = slots.rolling(
        _FixedWindows(np.concatenate([nothing, start]), np.concatenate([nothing, end])),
        min_periods=min_periods,
    )
    median = rolling.median().to_numpy()[len(values) :]
    upper, lower = (rolling.quantile(q).to_numpy()[len(values) :] for q in (0.75, 0.25))
    spread = (upper - lower) * _IQR_TO_SIGMA
    scale = np.maximum(spread, np.asarray(floor)[probe_codes])
    return median, scale


class _FixedWindows(BaseIndexer):
    """Rolling windows with given row bounds ``[start[i], end[i])``."""

    def __init__(self, start: np.ndarray, end: np.ndarray) -> None:
        super().__init__()
        self.start, self.end = start, end

    def get_window_bounds(
        self, num_values=0, min_periods=None, center=None, closed=None, step=None
    ):
        return self.start, self.end


def _floored(spread: np.ndarray, width: np.ndarray, level: np.ndarray) -> np.ndarray:
    """Per-reading version of :func:`iotlab.detect.calibration.scale_floor`."""
    floor = np.maximum(1e-3 * np.nan_to_num(width), 1e-6 * np.maximum(np.abs(level), 1.0))
    return np.maximum(spread, np.nan_to_num(floor, nan=0.0))


def _mask_warmup(
    frame: pd.DataFrame, expected: np.ndarray, min_history: pd.Timedelta | None
) -> np.ndarray:
    """No expectation (so no score) for readings in the first ``min_history``."""
    if min_history is None or frame.empty:
        return expected
    early = (frame["ts"] < frame["ts"].iloc[0] + min_history).to_numpy()
    return np.where(early, np.nan, expected)


def _expanding_width(frame: pd.DataFrame, sensor_range: tuple[float, float] | None) -> np.ndarray:
    """Range width known before each reading: declared, else the running robust range."""
    if sensor_range is not None:
        return np.full(len(frame), sensor_range[1] - sensor_range[0])
    values = frame["value"].shift(1)
    width = (values.expanding().quantile(0.995) - values.expanding().quantile(0.005)).to_numpy()
    return width


class SeasonalNaiveDetector(Detector):
    """Expected value = the value one season ago (median of a small neighbourhood).

    The residual scale is the robust spread of seasonal differences: over the fitted
    data for :meth:`score`, over a trailing window for :meth:`score_online`.
    Series shorter than two seasons fall back to :class:`RollingZScoreDetector`
    with a :class:`ShortHistoryWarning`.

    Parameters
    ----------
    season
        The period, e.g. ``"1D"`` for a daily cycle.
    neighbourhood
        Half-width of the window around ``t - season`` whose median is the expectation
        (robust to a spike exactly one season ago).
    **kwargs
        See :class:`Detector`.
    """

    name = "seasonal_naive"

    def __init__(
        self,
        *,
        season: str | pd.Timedelta = "1D",
        neighbourhood: str | pd.Timedelta = "15min",
        **kwargs: Unpack[DetectorOptions],
    ) -> None:
        super().__init__(**kwargs)
        self.season = pd.Timedelta(season)
        self.neighbourhood = pd.Timedelta(neighbourhood)
        if not pd.Timedelta(0) < self.neighbourhood < self.season / 2:
            raise ValueError("neighbourhood must be positive and below half a season")

    def _reference(self, history: pd.DataFrame, ts: pd.Series) -> np.ndarray:
        """Median of ``history`` within ``neighbourhood`` of ``ts - season``."""
        hist = history.dropna(subset=["value"])
        if hist.empty:
            return np.full(len(ts), np.nan)
        centred = (
            pd.Series(hist["value"].to_numpy(), index=pd.DatetimeIndex(hist["ts"]))
            .rolling(2 * self.neighbourhood, center=True, min_periods=1)
            .median()
        )
        lookup = pd.DataFrame({"ts": centred.index, "ref": centred.to_numpy()})
        query = pd.DataFrame({"ts": (ts - self.season).to_numpy(), "order": np.arange(len(ts))})
        query["ts"] = query["ts"].astype(lookup["ts"].dtype)
        merged = pd.merge_asof(
            query.sort_values("ts"),
            lookup,
            on="ts",
            direction="nearest",
            tolerance=self.neighbourhood,
        ).sort_values("order")
        return merged["ref"].to_numpy()

    def _fit(self, clean: pd.DataFrame) -> None:
        span = clean["ts"].iloc[-1] - clean["ts"].iloc[0]
        self._fallback = None
        if span < 2 * self.season:
            import warnings

            warnings.warn(
                ShortHistoryWarning(
                    f"{self.name}: {span} of data is less than two seasons "
                    f"({2 * self.season}); falling back to a rolling z-score"
                ),
                stacklevel=3,
            )
            self._fallback = self._make_fallback().fit(clean)
            return
        values = clean["value"].to_numpy()
        diffs = values - self._reference(clean, clean["ts"])
        self._history = clean
        self._width_ = self._width(values)
        self._scale_ = max(robust_scale(diffs), self._floor(values))

    def _make_fallback(self) -> RollingZScoreDetector:
        return RollingZScoreDetector(
            threshold=self.threshold,
            sensor_range=self.sensor_range,
            calibration=self.calibration,
            severity=self.severity,
            episode_gap=self.episode_gap,
        )

    def _predict(self, frame: pd.DataFrame) -> Forecast:
        if self._fallback is not None:
            return self._fallback._predict(frame)
        earlier = self._history[self._history["ts"] < frame["ts"].iloc[0]] if len(frame) else None
        history = pd.concat([earlier, frame], ignore_index=True) if earlier is not None else frame
        expected = self._reference(history, frame["ts"])
        n = len(frame)
        return Forecast(expected, np.full(n, self._scale_), np.full(n, self._width_))

    def _predict_online(self, frame, refit_every, window, min_history) -> Forecast:
        # The reference is causal by construction; the scale is the robust spread of the
        # seasonal differences in the trailing ``window`` (excluding the reading itself).
        expected = self._reference(frame, frame["ts"])
        diffs = frame["value"].to_numpy() - expected
        rolling = pd.Series(diffs, index=pd.DatetimeIndex(frame["ts"])).rolling(
            window, closed="left", min_periods=20
        )
        spread = (rolling.quantile(0.75) - rolling.quantile(0.25)).to_numpy() * _IQR_TO_SIGMA
        width = _expanding_width(frame, self.sensor_range)
        return Forecast(
            _mask_warmup(frame, expected, min_history), _floored(spread, width, expected), width
        )
