"""Prophet forecast-residual detector.

Prophet learns trend plus daily/weekly seasonality; a reading is anomalous when its
residual is improbable *for an out-of-sample forecast*. In-sample residuals
understate forecast error (the model has seen the data), so the residual scale is
measured where the model had not looked: on a holdout fold after :meth:`fit`, and
on the forecasts already made for later readings in :meth:`score_online`.

The expected value of a reading is the sum of three parts:

1. Prophet's forecast (trend, a daily seasonality from 2 days of data, a weekly one
   from 14 days), fitted on ``resample`` (30 min) means: a day is 48 points whatever
   the sensor's rate, which keeps fits fast;
2. a :class:`~iotlab.detect.profile.DayProfile`: the median residual per 5-minute
   bin of the day, for weekdays, Saturdays and Sundays separately. It follows the
   steps (a shift starting at 06:00, an office emptying at 18:00) that Fourier terms
   smooth into an hour of ringing, and the different shape of a weekend day;
3. a local level correction: the median residual of the trailing ``local_window``
   (1 h), which follows a sensor's slow wander (weather, a busier day). It uses only
   earlier readings.

Readings far off (beyond 3 robust sds) in a first pass are left out of the final fit
and profile, so a level shift or a burst does not bend the expectation towards
itself. Less than ``min_span`` (1 day) of data: :class:`ShortHistoryWarning` and the
:class:`RollingZScoreDetector` instead.

Refits in :meth:`score_online` start from the previous fit's parameters (Prophet's
"updating fitted models" warm start), which cuts their optimiser time.
"""

from __future__ import annotations

import warnings
from typing import Any, NamedTuple, Unpack

import numpy as np
import pandas as pd

from iotlab.detect._quiet import fit_quietly, import_prophet
from iotlab.detect.base import Detector, DetectorOptions, Forecast, ShortHistoryWarning
from iotlab.detect.baselines import RollingZScoreDetector
from iotlab.detect.calibration import gaussian_log10_p, robust_scale
from iotlab.detect.profile import DayProfile, ts_ns
from iotlab.detect.prophet_curve import ProphetCurve
from iotlab.detect.reference import TailReference
from iotlab.detect.repeats import RepeatRule, run_positions

__all__ = ["ProphetResidualDetector"]

_MIN_TRAIN_POINTS = 10
_REFIT_MASK_Z = 3.0
#: How far past its training data a forecast's trend is extrapolated before it is held.
_TREND_HORIZON = pd.Timedelta("1D")
#: Fewest readings the local level correction's window spans, whatever the sampling rate.
_LOCAL_MIN_READINGS = 6


class _Design(NamedTuple):
    """The shape of a Prophet model; equal designs can warm-start each other."""

    n_changepoints: int
    daily: bool
    weekly: bool


class _Fitted(NamedTuple):
    model: Any
    design: _Design
    profile: DayProfile | None


def _local_correction(
    ts: pd.Series, residual: np.ndarray, window: pd.Timedelta | None, *, causal: bool = True
) -> np.ndarray:
    """Median of the residuals in ``[t - window, t)`` for each reading (0 if none).

    Prophet's trend and seasonality miss a sensor's slow wander (weather, a busier
    day); left in the residuals it would dominate their scale and hide faults 5 noise
    sds tall. Correcting each forecast by the recent residual level removes it, and
    uses only earlier readings, so it is as causal as the forecast itself. Offline
    (``causal=False``), a reading with no earlier one in the window (the start of the
    series, the end of a gap) takes the next correction there is rather than none.
    """
    if window is None:
        return np.zeros(len(residual))
    rolling = pd.Series(residual, index=pd.DatetimeIndex(ts)).rolling(
        window, closed="left", min_periods=3
    )
    median = rolling.median()
    if not causal:
        median = median.bfill()
    return np.nan_to_num(median.to_numpy(), nan=0.0)


def _staleness(
    t_ns: np.ndarray, valid: np.ndarray, window: pd.Timedelta | None, readings: int = 3
) -> np.ndarray:
    """How much wider than usual each reading's forecast error is expected to be.

    The first ``readings`` readings after a silence longer than ``window`` have no
    recent level to correct the forecast with: they are a forecast as far ahead as the
    silence was long, and a level that wandered meanwhile (a building warmed up while
    its sensor was off) is no anomaly. Their scale grows as a random walk's does, with
    the square root of the silence in windows; every other reading's factor is 1.
    """
    factor = np.ones(len(t_ns))
    if window is None or not valid.any():
        return factor
    rows = np.flatnonzero(valid)
    gap = np.diff(t_ns[rows], prepend=t_ns[rows[0]])
    if not (gap > window.value).any():
        return factor  # no silence: the usual case, and a live batch's
    after = gap > window.value
    last = np.maximum.accumulate(np.where(after, np.arange(rows.size), -1))
    fresh = (last >= 0) & (np.arange(rows.size) - last < readings)
    silence = gap[np.maximum(last, 0)]
    factor[rows[fresh]] = np.sqrt(1.0 + silence[fresh] / window.value)
    return factor


def _median_step(ts: pd.Series) -> pd.Timedelta:
    steps = np.diff(ts_ns(ts))
    steps = steps[steps > 0]
    return pd.Timedelta(int(np.median(steps))) if steps.size else pd.Timedelta(0)


def _warm_start(previous: _Fitted | None, design: _Design) -> dict[str, Any] | None:
    """Initial values from an earlier fit of the same design (Prophet's documented
    ``stan_init`` pattern), or ``None``."""
    if previous is None or previous.design != design or design.n_changepoints < 1:
        return None
    params = previous.model.params
    return {
        "k": float(params["k"][0][0]),
        "m": float(params["m"][0][0]),
        "sigma_obs": float(params["sigma_obs"][0][0]),
        "delta": params["delta"][0],
        "beta": params["beta"][0],
    }


class ProphetResidualDetector(Detector):
    """Flag readings far from a Prophet forecast, on an out-of-sample residual scale.

    A reading that repeats the one before it for far longer than the series does (a
    stuck sensor, which the local correction would follow) is also judged on its run:
    see :mod:`iotlab.detect.repeats`.

    Parameters
    ----------
    resample
        Fit Prophet on means of this bin width when readings are denser.
    holdout, holdout_block
        Share of the data held out, as every n-th block of ``holdout_block``, to measure
        errors at readings the model has not seen.
    min_span
        Less data than this: warn and fall back to a rolling z-score.
    changepoint_prior_scale, changepoint_every
        Prophet's trend flexibility and how often its trend may bend.
    local_window
        Correct each forecast by the median residual of this trailing window (``None``:
        no correction); see :func:`_local_correction`.
    daily_order, weekly_order
        Fourier orders of Prophet's seasonalities.
    profile_bin, profile_min_days
        Bin width of the day-type profile, and how many distinct days a day type needs
        before it gets its own profile (see :mod:`iotlab.detect.profile`).
    max_iter
        Iteration cap of Prophet's L-BFGS optimiser.
    **kwargs
        See :class:`Detector` (threshold, sensor_range, calibration, severity, episode_gap).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> ts = pd.date_range("2026-01-01", periods=4 * 96, freq="15min", tz="UTC")
    >>> rng = np.random.default_rng(1)
    >>> values = 20 + 3 * np.sin(2 * np.pi * ts.hour.to_numpy() / 24) + rng.normal(0, 0.2, len(ts))
    >>> values[300] += 5
    >>> events = ProphetResidualDetector().detect(pd.DataFrame({"ts": ts, "value": values}))
    >>> events["ts"].tolist() == [ts[300]]
    True
    """

    name = "prophet"

    def __init__(
        self,
        *,
        resample: str | pd.Timedelta = "30min",
        holdout: float = 0.2,
        holdout_block: str | pd.Timedelta = "2h",
        min_span: str | pd.Timedelta = "1D",
        changepoint_prior_scale: float = 0.05,
        changepoint_every: str | pd.Timedelta = "12h",
        local_window: str | pd.Timedelta | None = "1h",
        daily_order: int = 10,
        weekly_order: int = 0,
        profile_bin: str | pd.Timedelta = "5min",
        profile_min_days: int = 2,
        max_iter: int = 2000,
        **kwargs: Unpack[DetectorOptions],
    ) -> None:
        super().__init__(**kwargs)
        if not 0.0 < holdout < 0.5:
            raise ValueError(f"holdout must be in (0, 0.5), got {holdout}")
        self.resample = pd.Timedelta(resample)
        self.holdout = holdout
        self.holdout_block = pd.Timedelta(holdout_block)
        self.min_span = pd.Timedelta(min_span)
        self.changepoint_prior_scale = changepoint_prior_scale
        self.changepoint_every = pd.Timedelta(changepoint_every)
        self.local_window = pd.Timedelta(local_window) if local_window is not None else None
        self.daily_order = daily_order
        self.weekly_order = weekly_order
        self.profile_bin = pd.Timedelta(profile_bin)
        self.profile_min_days = profile_min_days
        self.max_iter = max_iter

    # -- model building ----------------------------------------------------------------------
    def _history(self, train: pd.DataFrame) -> pd.DataFrame:
        history = pd.DataFrame(
            {"ds": train["ts"].dt.tz_localize(None), "y": train["value"].to_numpy()}
        )
        if _median_step(train["ts"]) < self.resample:
            history = (
                history.groupby(history["ds"].dt.floor(self.resample))["y"]
                .mean()
                .rename_axis("ds")
                .reset_index()
            )
        return history

    def _design(self, train: pd.DataFrame, history: pd.DataFrame) -> _Design:
        """Seasonalities from the span and sampling step; changepoints from the span
        (capped as Prophet caps them, so equal designs really have equal shapes)."""
        step = _median_step(train["ts"])
        # The span counts from the first to the last reading: two whole days of readings
        # span one step less than 2 days, and must still learn the day's shape.
        span = train["ts"].iloc[-1] - train["ts"].iloc[0] + step
        seasonal = span >= pd.Timedelta("2D") and step <= pd.Timedelta("2h")
        # One possible trend bend every ``changepoint_every``: a sensor's baseline wanders
        # over days; the local correction follows what is faster than that.
        wanted = max(1, min(200, int(span / self.changepoint_every)))
        return _Design(
            n_changepoints=max(0, min(wanted, len(history) - 1)),
            daily=seasonal,
            weekly=seasonal and self.weekly_order > 0 and span >= pd.Timedelta("14D"),
        )

    def _fit_prophet(self, train: pd.DataFrame, previous: _Fitted | None) -> tuple[Any, _Design]:
        prophet_cls = import_prophet()
        history = self._history(train)
        design = self._design(train, history)
        model = prophet_cls(
            growth="linear",
            n_changepoints=design.n_changepoints,
            changepoint_range=1.0,
            yearly_seasonality=False,
            daily_seasonality=self.daily_order if design.daily else False,
            weekly_seasonality=self.weekly_order if design.weekly else False,
            changepoint_prior_scale=self.changepoint_prior_scale,
            mcmc_samples=0,
            uncertainty_samples=0,  # our bands come from out-of-sample residuals
        )
        fit_args: dict[str, Any] = {"iter": self.max_iter}
        if len(history) >= 100:
            fit_args["algorithm"] = "LBFGS"
        init = _warm_start(previous, design)
        if init is not None:
            fit_args["init"] = init
        return fit_quietly(model, history, **fit_args), design

    @staticmethod
    def _curve(model: Any) -> ProphetCurve:
        """The fitted model's forecast, its trend held flat beyond ``_TREND_HORIZON``
        after the training data.

        A linear trend extrapolated across a gap of days (a sensor offline for a week)
        ends far from where the sensor comes back; its seasonality still holds.
        """
        return ProphetCurve.from_model(model, hold_after=_TREND_HORIZON)

    @classmethod
    def _forecast(cls, model: Any, ts: pd.Series) -> np.ndarray:
        """Prophet's forecast at ``ts`` (see :meth:`_curve`)."""
        return cls._curve(model).at(ts_ns(ts))

    def _learn(
        self,
        train: pd.DataFrame,
        ts: pd.Series,
        previous: _Fitted | None,
        keep: np.ndarray | None = None,
    ) -> tuple[_Fitted, np.ndarray]:
        """Fit Prophet and the day profile on ``train`` (on its ``keep`` rows only, but
        every row counts as a day seen); return the fit and its expectation (before the
        local correction) at ``ts``."""
        model, design = self._fit_prophet(train if keep is None else train[keep], previous)
        base = self._forecast(model, pd.concat([train["ts"], ts], ignore_index=True))
        n = len(train)
        profile = None
        if design.daily:
            profile = DayProfile.learn(
                ts_ns(train["ts"]),
                train["value"].to_numpy() - base[:n],
                bin=self.profile_bin,
                min_days=self.profile_min_days,
                keep=keep,
                forecast=base[:n],
            )
            base = base[n:] + profile.at(ts_ns(ts))
        else:
            base = base[n:]
        return _Fitted(model, design, profile), base

    def _local_window(self, ts: pd.Series) -> pd.Timedelta | None:
        """``local_window``, widened to span a few readings of a slowly sampled sensor
        (one hour of hourly data is one reading: no level to correct from)."""
        if self.local_window is None:
            return None
        return max(self.local_window, _LOCAL_MIN_READINGS * _median_step(ts))

    def _expected(
        self, ts: pd.Series, values: np.ndarray, base: np.ndarray, *, causal: bool
    ) -> np.ndarray:
        window = self._local_window(ts)
        correction = _local_correction(ts, values - base, window, causal=causal)
        return base + correction

    def _fit_with_holdout(
        self, clean: pd.DataFrame, floor: float, previous: _Fitted | None = None
    ) -> tuple[_Fitted, float, np.ndarray]:
        """Measure errors on held-out blocks, then refit on everything except the
        readings found far off. Returns (fit, scale, held-out z-scores).

        Every fifth ``holdout_block`` of time is held out (not the end of the series):
        a fault just before a cut-off would otherwise tilt the extrapolated trend and
        inflate the scale of a perfectly good model.
        """
        ts, values = clean["ts"], clean["value"].to_numpy()
        block = (ts_ns(ts) - ts_ns(ts)[0]) // self.holdout_block.value
        every = round(1 / self.holdout)
        held = (block % every) == every - 1
        first, base = self._learn(clean[~held], ts, previous)
        residual = values - self._expected(ts, values, base, causal=False)
        scale = max(robust_scale(residual[held]), robust_scale(residual[~held]), floor)
        # Leave out anything beyond 3 sds, not just flagged readings: a fault bends the
        # first fit towards itself, so its residuals there understate it. Judged with a
        # day profile learned from every reading, not the training blocks only: a day
        # seen once (a week's only Saturday) has no profile of its own in its held-out
        # blocks, and leaving its ordinary readings out there would keep it so.
        keep = np.abs(self._in_sample(first, ts, values, residual)) <= _REFIT_MASK_Z * scale
        final, _ = self._learn(clean, ts.iloc[:0], first, keep=keep)
        return final, scale, residual[held] / scale

    def _in_sample(
        self, fitted: _Fitted, ts: pd.Series, values: np.ndarray, residual: np.ndarray
    ) -> np.ndarray:
        """Residuals at ``ts`` with ``fitted``'s Prophet curve and a day profile
        relearned from all of ``values`` (``residual`` when the fit has no profile)."""
        if fitted.profile is None:
            return residual
        t = ts_ns(ts)
        curve = self._forecast(fitted.model, ts)
        profile = DayProfile.learn(
            t,
            values - curve,
            bin=self.profile_bin,
            min_days=self.profile_min_days,
            forecast=curve,
        )
        return values - self._expected(ts, values, curve + profile.at(t), causal=False)

    def _too_short(self, span: pd.Timedelta) -> RollingZScoreDetector:
        warnings.warn(
            ShortHistoryWarning(
                f"{self.name}: {span} of data is less than min_span={self.min_span}; "
                "falling back to a rolling z-score"
            ),
            stacklevel=4,
        )
        return RollingZScoreDetector(
            threshold=self.threshold,
            sensor_range=self.sensor_range,
            calibration=self.calibration,
            severity=self.severity,
            episode_gap=self.episode_gap,
        )

    def _base(self, fitted: _Fitted, ts: pd.Series) -> np.ndarray:
        base = self._forecast(fitted.model, ts)
        if fitted.profile is not None:
            base = base + fitted.profile.at(ts_ns(ts))
        return base

    # -- Detector hooks -----------------------------------------------------------------------
    def _fit(self, clean: pd.DataFrame) -> None:
        span = clean["ts"].iloc[-1] - clean["ts"].iloc[0]
        self._fallback = None
        if span < self.min_span or len(clean) < _MIN_TRAIN_POINTS:
            self._fallback = self._too_short(span).fit(clean)
            return
        values = clean["value"].to_numpy()
        self._width_ = self._width(values)
        self._repeats = RepeatRule.learn(ts_ns(clean["ts"]), values)
        # Offline the held-out errors are not a reference for the tail: they come from
        # the very readings being judged, and a fault would explain itself away.
        self._fitted_model, self.scale_, _ = self._fit_with_holdout(clean, self._floor(values))

    def _predict(self, frame: pd.DataFrame) -> Forecast:
        if self._fallback is not None:
            return self._fallback._predict(frame)
        n = len(frame)
        values = frame["value"].to_numpy()
        base = self._base(self._fitted_model, frame["ts"])
        expected = self._expected(frame["ts"], values, base, causal=False)
        return Forecast(
            expected,
            np.full(n, self.scale_),
            np.full(n, self._width_),
            repeat_log10_p=self._repeat_log10_p(self._repeats, values),
        )

    @staticmethod
    def _repeat_log10_p(rule: RepeatRule, values: np.ndarray) -> np.ndarray:
        """``rule``'s ``log10 p`` of each reading's run (NaN readings neither break
        nor extend a run, and get 0)."""
        finite = np.isfinite(values)
        out = np.zeros(len(values))
        out[finite] = rule.log10_p(run_positions(values[finite]))
        return out

    def _predict_online(self, frame, refit_every, window, min_history) -> Forecast:
        min_history = (
            min_history if min_history is not None else max(self.min_span, pd.Timedelta("2D"))
        )
        ts, values = frame["ts"], frame["value"].to_numpy()
        valid = np.isfinite(values)
        span = ts[valid].iloc[-1] - ts[valid].iloc[0] if valid.any() else pd.Timedelta(0)
        if span < min_history:
            fallback = self._too_short(span)
            fallback._fitted = True
            return fallback._predict_online(frame, refit_every, window, None)
        from iotlab.detect.online import OnlineProphet

        engine = OnlineProphet(
            self,
            refit_every=refit_every,
            window=window,
            min_history=min_history,
            first_ns=int(ts_ns(ts[valid])[0]),
        )
        judged = engine.judge(ts_ns(ts), values)
        return Forecast(
            judged.expected,
            judged.scale,
            judged.width,
            engine.references(judged),
            judged.repeat_log10_p,
        )

    def _is_anomaly(
        self, z: np.ndarray, table: TailReference | None, repeat_log10_p: np.ndarray
    ) -> np.ndarray:
        """The flag rule of :meth:`Detector.score`, for z-scores judged by ``table`` and
        runs of repeats by their ``log10 p``."""
        abs_z = np.abs(z)
        log10_p = table.log10_p(abs_z) if table is not None else gaussian_log10_p(abs_z)
        log10_p = log10_p + repeat_log10_p
        score = self.calibration.score_from_log10_p(log10_p, abs_z)
        return self.calibration.confidence_from_score(score) > self.threshold
