"""The one interface every detector implements, and the input rules they share.

A *series* is a DataFrame with a tz-aware ``ts`` column and a numeric ``value``
column (a ``pd.Series`` with a tz-aware ``DatetimeIndex`` is accepted too).
Rows may be unsorted, irregular, have gaps and NaN values; naive timestamps are
rejected (guessing a zone would silently shift the data).

Public methods validate and delegate: subclasses implement ``_fit`` (learn from
clean, sorted, NaN-free data), ``_predict`` (expected value and residual scale
at given readings) and, when they can do better than scheduled refits,
``_predict_online``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, NamedTuple, TypedDict, TypeVar

import numpy as np
import pandas as pd

from iotlab._compat import deprecated
from iotlab.detect.calibration import Calibration, gaussian_log10_p, scale_floor
from iotlab.detect.episodes import collapse_episodes
from iotlab.detect.reference import References
from iotlab.detect.severity import SeverityRule
from iotlab.errors import DetectionError, ValidationError

__all__ = [
    "SCORE_COLUMNS",
    "Detector",
    "DetectorOptions",
    "Forecast",
    "ShortHistoryWarning",
    "as_series",
]

#: Columns of :meth:`Detector.score` and :meth:`Detector.score_online`, in order.
SCORE_COLUMNS = (
    "ts",
    "value",
    "expected",
    "lower",
    "upper",
    "residual",
    "score",
    "confidence",
    "is_anomaly",
    "severity",
)

D = TypeVar("D", bound="Detector")


class DetectorOptions(TypedDict, total=False):
    """The :class:`Detector` parameters a subclass passes on as ``**kwargs``."""

    threshold: float
    sensor_range: tuple[float, float] | None
    calibration: Calibration | None
    severity: SeverityRule | None
    episode_gap: str | pd.Timedelta
    event_gap: str | pd.Timedelta  # deprecated name of episode_gap


class ShortHistoryWarning(UserWarning):
    """The series is too short for the detector's model; a simpler fallback is used."""


class Forecast(NamedTuple):
    """What a detector predicts for each reading (arrays aligned with the series)."""

    expected: np.ndarray
    scale: np.ndarray  # robust standard deviation of an out-of-sample residual
    width: np.ndarray  # the sensor's range width, for severity
    #: The distribution of the detector's own past errors each reading is judged by
    #: (``None``: the normal tail alone); see :mod:`iotlab.detect.reference`.
    reference: References | None = None
    #: ``log10`` of the chance of each reading's run of repeated values (added to the
    #: residual's; ``None``: runs are not judged); see :mod:`iotlab.detect.repeats`.
    repeat_log10_p: np.ndarray | None = None


def as_series(series: pd.DataFrame | pd.Series) -> pd.DataFrame:
    """Validate a series and return it as ``ts`` (ns, UTC) and ``value`` (float64), sorted.

    Examples
    --------
    >>> s = pd.Series([1.0, 2.0], index=pd.date_range("2026-01-01", periods=2, tz="UTC"))
    >>> as_series(s).dtypes.tolist()
    [datetime64[ns, UTC], dtype('float64')]
    >>> as_series(pd.DataFrame({"ts": ["2026-01-01"], "value": [1.0]}))
    Traceback (most recent call last):
    ...
    iotlab.errors.ValidationError: ts: timestamps must be tz-aware (UTC); got naive values
    """
    if isinstance(series, pd.Series):
        if not isinstance(series.index, pd.DatetimeIndex):
            raise ValidationError("a Series needs a DatetimeIndex", field="index")
        frame = pd.DataFrame({"ts": pd.Series(series.index), "value": series.to_numpy()})
    elif isinstance(series, pd.DataFrame):
        missing = [c for c in ("ts", "value") if c not in series.columns]
        if missing:
            raise ValidationError(
                f"missing column(s) {missing}; a series needs 'ts' and 'value'",
                field=missing[0],
            )
        frame = pd.DataFrame(
            {
                "ts": series["ts"].reset_index(drop=True),
                "value": series["value"].reset_index(drop=True),
            }
        )
    else:
        raise ValidationError(
            f"expected a DataFrame or Series, got {type(series).__name__}", field="series"
        )
    ts = frame["ts"]
    if not isinstance(ts.dtype, pd.DatetimeTZDtype):
        if (
            pd.api.types.is_datetime64_dtype(ts.dtype)
            or pd.api.types.is_string_dtype(ts.dtype)
            or ts.dtype == object
        ):
            try:
                parsed = pd.to_datetime(ts)
            except (TypeError, ValueError) as exc:
                raise ValidationError("cannot parse as timestamps", field="ts") from exc
            if not isinstance(parsed.dtype, pd.DatetimeTZDtype):
                raise ValidationError(
                    "timestamps must be tz-aware (UTC); got naive values", field="ts"
                )
            ts = parsed
        else:
            raise ValidationError(f"timestamps expected, got dtype {ts.dtype}", field="ts")
    ts = ts.dt.tz_convert("UTC").astype("datetime64[ns, UTC]")
    if ts.isna().any():
        raise ValidationError("is missing (NaT)", field="ts", rows=np.flatnonzero(ts.isna()))
    values = pd.to_numeric(frame["value"], errors="coerce").astype("float64")
    bad = values.isna() & frame["value"].notna()
    if bad.any():
        raise ValidationError("is not numeric", field="value", rows=np.flatnonzero(bad))
    infinite = np.isinf(values.to_numpy())
    if infinite.any():
        raise ValidationError(
            "must be finite or NaN (missing)", field="value", rows=np.flatnonzero(infinite)
        )
    out = pd.DataFrame({"ts": ts, "value": values})
    return out.sort_values("ts", kind="stable", ignore_index=True)


def robust_width(values: np.ndarray) -> float:
    """The 0.5-99.5% quantile range of the finite values (0 if fewer than 2)."""
    finite = values[np.isfinite(values)]
    if finite.size < 2:
        return 0.0
    low, high = np.quantile(finite, [0.005, 0.995])
    return float(high - low)


class Detector(ABC):
    """Base class of all detectors; see :mod:`iotlab.detect` for the interface.

    Parameters
    ----------
    threshold
        Flag a reading when its ``confidence`` (probability of being anomalous) exceeds this.
    sensor_range
        The sensor's declared ``(min, max)``; sets severity and the scale floor. Without
        it the data's robust range is used.
    calibration
        Prior and anomaly size behind ``confidence``.
    severity
        Deviation bands for ``severity``.
    episode_gap
        Flagged readings closer than this belong to one anomaly episode in :meth:`detect`.
        (``event_gap=`` is its deprecated 0.1 name.)
    """

    #: Short name stored in the ``detector`` column of the anomalies tables.
    name: str = "detector"

    def __init__(
        self,
        *,
        threshold: float = 0.8,
        sensor_range: tuple[float, float] | None = None,
        calibration: Calibration | None = None,
        severity: SeverityRule | None = None,
        episode_gap: str | pd.Timedelta = "1h",
        **legacy: Any,
    ) -> None:
        if "event_gap" in legacy:
            deprecated(f"{type(self).__name__}(event_gap=...) is deprecated, use episode_gap=")
            episode_gap = legacy.pop("event_gap")
        if legacy:
            raise TypeError(f"{type(self).__name__}() got unexpected keyword(s) {sorted(legacy)}")
        if not 0.0 < threshold < 1.0:
            raise ValidationError(f"must be in (0, 1), got {threshold}", field="threshold")
        if sensor_range is not None:
            low, high = (float(v) for v in sensor_range)
            if not high > low:
                raise ValidationError(f"needs min < max, got {sensor_range}", field="sensor_range")
            sensor_range = (low, high)
        self.threshold = threshold
        self.sensor_range = sensor_range
        self.calibration = calibration or Calibration()
        self.severity = severity or SeverityRule()
        self.episode_gap = pd.Timedelta(episode_gap)
        self._fitted = False

    # -- public interface -------------------------------------------------------------------
    def fit(self: D, series: pd.DataFrame | pd.Series) -> D:
        """Learn the series' normal behaviour; return ``self``.

        NaN values are ignored. Raises ``DetectionError`` if no value is finite.
        """
        frame = as_series(series)
        clean = frame.dropna(subset=["value"]).reset_index(drop=True)
        if clean.empty:
            raise DetectionError(f"{self.name}: no finite values to fit")
        self._fit(clean)
        self._fitted = True
        return self

    def score(self, series: pd.DataFrame | pd.Series) -> pd.DataFrame:
        """Score every reading against the fitted model (fitting on ``series`` first if
        the detector is not fitted yet).

        Returns a frame with columns ``ts, value, expected, lower, upper, residual,
        score, confidence, is_anomaly, severity``: ``expected`` the model's value,
        ``[lower, upper]`` the band outside which a reading is flagged, ``score`` the
        unbounded anomaly score ``-log10(p)`` (rank by it) and ``confidence`` the
        probability of being anomalous, in [0, 1] (see
        :mod:`iotlab.detect.calibration`), ``is_anomaly`` is ``confidence >
        threshold``, ``severity`` an ordered categorical (low < medium < high <
        critical), missing on normal rows. Readings that cannot be scored (NaN value,
        no reference) have NaN score and confidence and are never anomalous.
        """
        frame = as_series(series)
        if not self._fitted:
            self.fit(frame)
        return self._assemble(frame, self._predict(frame))

    def detect(self, series: pd.DataFrame | pd.Series) -> pd.DataFrame:
        """Anomaly episodes of ``series``: one row per ongoing anomaly, not per reading.

        Columns: ``start``/``end`` the first and last flagged reading (inclusive),
        ``ts, value, expected, lower, upper, residual, score, confidence`` of the
        episode's peak reading (the highest score), ``severity`` the worst over
        the episode, ``n_points`` how many readings were flagged. Flagged readings less
        than ``episode_gap`` apart are one episode.
        """
        return self.episodes(self.score(series))

    def episodes(self, scored: pd.DataFrame) -> pd.DataFrame:
        """Collapse the output of :meth:`score` or :meth:`score_online` into episodes."""
        return collapse_episodes(scored, self.episode_gap)

    def events(self, scored: pd.DataFrame) -> pd.DataFrame:
        """Deprecated name of :meth:`episodes` ("events" are a device's lifecycle events)."""
        deprecated(f"{type(self).__name__}.events() is deprecated, use .episodes()")
        return self.episodes(scored)

    @property
    def event_gap(self) -> pd.Timedelta:
        """Deprecated name of :attr:`episode_gap`."""
        deprecated(f"{type(self).__name__}.event_gap is deprecated, use .episode_gap")
        return self.episode_gap

    def score_online(
        self,
        series: pd.DataFrame | pd.Series,
        *,
        refit_every: str | pd.Timedelta = "1D",
        window: str | pd.Timedelta = "14D",
        min_history: str | pd.Timedelta | None = None,
    ) -> pd.DataFrame:
        """Score each reading using only data strictly before it, as a live system would.

        The model is refitted every ``refit_every`` on the trailing ``window`` of data and
        readings arriving in between are scored against that cached fit (never one refit
        per reading). Readings in the first ``min_history`` (detector-specific default)
        are not scored (NaN score). Same columns as :meth:`score`.
        """
        frame = as_series(series)
        refit_every, window = pd.Timedelta(refit_every), pd.Timedelta(window)
        if refit_every <= pd.Timedelta(0):
            raise ValidationError("must be positive", field="refit_every")
        if window <= pd.Timedelta(0):
            raise ValidationError("must be positive", field="window")
        history = pd.Timedelta(min_history) if min_history is not None else None
        return self._assemble(frame, self._predict_online(frame, refit_every, window, history))

    # -- for subclasses ---------------------------------------------------------------------
    @abstractmethod
    def _fit(self, clean: pd.DataFrame) -> None:
        """Learn from sorted readings without NaN values."""

    @abstractmethod
    def _predict(self, frame: pd.DataFrame) -> Forecast:
        """Expected value and residual scale of every reading of ``frame``."""

    @abstractmethod
    def _predict_online(
        self,
        frame: pd.DataFrame,
        refit_every: pd.Timedelta,
        window: pd.Timedelta,
        min_history: pd.Timedelta | None,
    ) -> Forecast:
        """Like ``_predict`` but each reading may only use data strictly before it."""

    def _width(self, values: np.ndarray) -> float:
        if self.sensor_range is not None:
            return self.sensor_range[1] - self.sensor_range[0]
        return robust_width(values)

    def _floor(self, values: np.ndarray) -> float:
        return scale_floor(values, self._width(values))

    def _assemble(self, frame: pd.DataFrame, forecast: Forecast) -> pd.DataFrame:
        value = frame["value"].to_numpy()
        expected = np.asarray(forecast.expected, dtype=float)
        scale = np.asarray(forecast.scale, dtype=float)
        residual = value - expected
        with np.errstate(divide="ignore", invalid="ignore"):
            z = residual / scale
        abs_z = np.abs(z)
        cal = self.calibration
        at_threshold = -cal.score_threshold(self.threshold)
        if forecast.reference is None:
            log10_p = gaussian_log10_p(abs_z)
            band_z = np.full(len(z), cal.z_threshold(self.threshold))
        else:
            log10_p = forecast.reference.log10_p(abs_z)
            band_z = forecast.reference.abs_z_at(at_threshold, cal.z_threshold(self.threshold))
        if forecast.repeat_log10_p is not None:
            log10_p = log10_p + forecast.repeat_log10_p
        score = cal.score_from_log10_p(log10_p, abs_z)
        confidence = cal.confidence_from_score(score)
        is_anomaly = np.nan_to_num(confidence, nan=0.0) > self.threshold
        half_band = band_z * scale
        with np.errstate(divide="ignore", invalid="ignore"):
            share = np.abs(residual) / np.asarray(forecast.width, dtype=float)
        out_of_range = None
        if self.sensor_range is not None:
            out_of_range = (value < self.sensor_range[0]) | (value > self.sensor_range[1])
        return pd.DataFrame(
            {
                "ts": frame["ts"],
                "value": value,
                "expected": expected,
                "lower": expected - half_band,
                "upper": expected + half_band,
                "residual": residual,
                "score": score,
                "confidence": confidence,
                "is_anomaly": is_anomaly,
                "severity": self.severity.assign(share, confidence, is_anomaly, out_of_range),
            }
        )

    def __repr__(self) -> str:
        state = "fitted" if self._fitted else "unfitted"
        return f"<{type(self).__name__} threshold={self.threshold} {state}>"
