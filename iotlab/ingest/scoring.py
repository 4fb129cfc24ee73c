"""Score live readings against cached per-sensor forecasts; refit on a schedule.

For each (device, sensor) the cache keeps a detector fitted on the sensor's recent
stored history and, from it, a *forecast table*: the detector's expected value and band
at the next expected reading times (``horizon`` ahead, one point per reading period).
A batch is scored by looking each reading up in its sensor's table, vectorised; no
model is fitted per reading. Models are fitted at fixed data-time grid points (multiples
of ``refit_every``) on the history before the point, so the same stream gives the same
scores however it is cut into batches; at most ``max_refits`` sensors are refitted per
batch, so a large fleet spreads its refits over several batches.

Readings without a usable forecast (a new sensor, too little history, beyond the
horizon) get NaN scores and are never anomalous, the same rule the detectors use.

Examples
--------
>>> import numpy as np, pandas as pd
>>> from iotlab.store import open_store
>>> store = open_store("sqlite://"); store.create_schema()
>>> ts = pd.date_range("2026-01-01", periods=180, freq="1min", tz="UTC")
>>> values = 20 + np.random.default_rng(0).normal(0, 0.2, 180)
>>> values[170] = 30.0
>>> rows = pd.DataFrame({"device_id": "d1", "sensor_id": "t", "ts": ts, "value": values,
...     "quality": 100, "status": "ok"})
>>> _ = store.write_rows("readings", rows)
>>> cache = ForecastCache(store)
>>> scored = cache.score(rows.iloc[120:].reset_index(drop=True))
>>> scored.loc[scored["is_anomaly"], "ts"].tolist() == [ts[170]]
True
>>> store.close()
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from iotlab.errors import IotlabError
from iotlab.store.base import Store

__all__ = ["SCORE_FIELDS", "ForecastCache"]

logger = logging.getLogger(__name__)

#: Columns :meth:`ForecastCache.score` adds to a batch.
SCORE_FIELDS = ("expected", "lower", "upper", "score", "confidence", "is_anomaly", "severity")

DetectorFactory = Callable[[str, str, "tuple[float, float] | None"], object]


def rolling_zscore_factory(
    device_id: str, sensor_id: str, sensor_range: tuple[float, float] | None
) -> object:
    """The default model: a 2-hour rolling robust z-score with the sensor's range."""
    from iotlab.detect import RollingZScoreDetector

    return RollingZScoreDetector(window="2h", sensor_range=sensor_range)


@dataclass
class _Entry:
    fitted_at: pd.Timestamp  # data time of the last (attempted) fit
    grid_ms: np.ndarray  # expected reading times, epoch ms
    expected: np.ndarray
    scale: np.ndarray  # robust sd of the residual at each grid time
    step_ms: int
    width: float  # the sensor's range: declared, else the history's robust range
    detector: object | None


class ForecastCache:
    """Per-sensor fitted detectors and their forecasts, refreshed on a schedule.

    Parameters
    ----------
    store
        Where each sensor's history is read from at refit time.
    detector_factory
        ``factory(device_id, sensor_id, sensor_range) -> Detector`` makes an unfitted
        detector (default: 2 h rolling robust z-score). All detectors must share one
        ``threshold``, ``calibration`` and ``severity`` rule.
    refit_every
        Data time between refits of one sensor.
    history
        How much stored history a refit reads.
    horizon
        How far ahead a forecast table reaches (default ``2 * refit_every``, so a sensor
        waiting for its turn to refit still has a forecast).
    max_refits
        Most sensors refitted per batch.
    """

    def __init__(
        self,
        store: Store,
        detector_factory: DetectorFactory | None = None,
        *,
        refit_every: str | pd.Timedelta = "30min",
        history: str | pd.Timedelta = "6h",
        horizon: str | pd.Timedelta | None = None,
        max_refits: int = 100,
    ) -> None:
        self.store = store
        self.factory = detector_factory or rolling_zscore_factory
        self.refit_every = pd.Timedelta(refit_every)
        self.history = pd.Timedelta(history)
        self.horizon = pd.Timedelta(horizon) if horizon is not None else 2 * self.refit_every
        self.max_refits = max_refits
        self._entries: dict[tuple[str, str], _Entry] = {}
        self._ranges: dict[tuple[str, str], tuple[float, float]] | None = None
        self._prototype = self.factory("", "", None)
        self.name = str(getattr(self._prototype, "name", type(self._prototype).__name__))
        self.refits = 0

    def __len__(self) -> int:
        return len(self._entries)

    # -- refits ------------------------------------------------------------------------------
    def _sensor_range(self, key: tuple[str, str]) -> tuple[float, float] | None:
        if self._ranges is None:
            sensors = self.store.read_rows("sensors")
            self._ranges = {
                (d, s): (float(lo), float(hi))
                for d, s, lo, hi in zip(
                    sensors["device_id"],
                    sensors["sensor_id"],
                    sensors["min_value"],
                    sensors["max_value"],
                )
                if np.isfinite(lo) and np.isfinite(hi) and hi > lo
            }
        return self._ranges.get(key)

    def _fit(self, key: tuple[str, str], before: pd.Timestamp) -> _Entry:
        from iotlab.store.queries import read_readings

        history = read_readings(self.store, key[0], key[1], before - self.history, before)
        empty = np.array([], dtype=np.int64)
        entry = _Entry(before, empty, empty.astype(float), empty.astype(float), 1, np.nan, None)
        if len(history) < 2:
            return entry
        series = history[["ts", "value"]]
        step_ms = int(np.median(np.diff(series["ts"].to_numpy("datetime64[ms]").astype(np.int64))))
        step_ms = max(step_ms, 1)
        limits = self._sensor_range(key)
        values = series["value"].to_numpy(dtype=float)
        low, high = limits if limits else np.quantile(values, [0.005, 0.995])
        detector = self.factory(key[0], key[1], limits)
        last_ms = int(series["ts"].iloc[-1].value // 1_000_000)
        n = max(1, int(self.horizon / pd.Timedelta(milliseconds=step_ms)))
        grid = last_ms + step_ms * np.arange(1, n + 1, dtype=np.int64)
        probe = pd.DataFrame({"ts": pd.to_datetime(grid, unit="ms", utc=True), "value": np.nan})
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # short-history fallbacks are expected here
                detector.fit(series)  # type: ignore[attr-defined]
                forecast = detector.score(probe)  # type: ignore[attr-defined]
        except IotlabError as exc:
            logger.warning("cannot fit %s/%s: %s", key[0], key[1], exc)
            return entry
        z = detector.calibration.z_threshold(detector.threshold)  # type: ignore[attr-defined]
        expected = forecast["expected"].to_numpy(dtype=float)
        scale = (forecast["upper"].to_numpy(dtype=float) - expected) / z
        self.refits += 1
        width = float(high - low) if high > low else np.nan
        return _Entry(before, grid, expected, scale, step_ms, width, detector)

    def _forecast_for(self, key: tuple[str, str], point: pd.Timestamp, budget: int) -> bool:
        """Make ``key``'s forecast the one fitted at grid ``point``, if due and affordable.

        Fits happen at fixed data-time grid points (multiples of ``refit_every``) and read
        only history before the point, so which model scores a reading depends on the
        reading's time, not on where a stream happened to be cut into batches.
        """
        entry = self._entries.get(key)
        if entry is not None and entry.fitted_at >= point:
            return False
        if budget <= 0:  # keep the older forecast; its horizon covers the wait
            return False
        self._entries[key] = self._fit(key, point)
        return True

    # -- scoring -----------------------------------------------------------------------------
    def score(self, readings: pd.DataFrame) -> pd.DataFrame:
        """``readings`` (device_id, sensor_id, ts, value, ...) with :data:`SCORE_FIELDS`.

        Each reading is looked up in the forecast its sensor was fitted for at the last
        grid point (a multiple of ``refit_every``) at or before it; missing fits are made
        first, at most ``max_refits`` per call.
        """
        out = readings.reset_index(drop=True)
        n = len(out)
        expected = np.full(n, np.nan)
        scale = np.full(n, np.nan)
        width = np.full(n, np.nan)
        if n:
            ts_ms = out["ts"].to_numpy("datetime64[ms]").astype(np.int64)
            points = out["ts"].dt.floor(self.refit_every)
            # Sorted: each sensor's grid points in time order, so a batch spanning a grid
            # point scores its earlier rows before refitting for the later ones.
            groups = out.groupby([out["device_id"], out["sensor_id"], points], sort=True).indices
            budget = self.max_refits
            for (device_id, sensor_id, point), rows in groups.items():
                key = (device_id, sensor_id)
                budget -= self._forecast_for(key, point, budget)
                entry = self._entries.get(key)
                if entry is None or not len(entry.grid_ms):
                    continue
                k = np.rint((ts_ms[rows] - entry.grid_ms[0]) / entry.step_ms).astype(np.int64)
                ok = (k >= 0) & (k < len(entry.grid_ms))
                ok &= np.abs(ts_ms[rows] - entry.grid_ms[0] - k * entry.step_ms) * 2 <= (
                    entry.step_ms
                )
                expected[rows[ok]] = entry.expected[k[ok]]
                scale[rows[ok]] = entry.scale[k[ok]]
                width[rows] = entry.width
        return self._assemble(out, expected, scale, width)

    def _assemble(
        self, out: pd.DataFrame, expected: np.ndarray, scale: np.ndarray, width: np.ndarray
    ) -> pd.DataFrame:
        proto = self._prototype
        value = out["value"].to_numpy(dtype=float)
        residual = value - expected
        with np.errstate(divide="ignore", invalid="ignore"):
            z = residual / scale
        confidence = proto.calibration.confidence(z)  # type: ignore[attr-defined]
        is_anomaly = np.nan_to_num(confidence, nan=0.0) > proto.threshold  # type: ignore[attr-defined]
        half = proto.calibration.z_threshold(proto.threshold) * scale  # type: ignore[attr-defined]
        out_of_range = self._out_of_range(out, value)
        with np.errstate(divide="ignore", invalid="ignore"):
            share = np.abs(residual) / width
        severity = proto.severity.assign(share, confidence, is_anomaly, out_of_range)  # type: ignore[attr-defined]
        return out.assign(
            expected=expected,
            lower=expected - half,
            upper=expected + half,
            score=proto.calibration.score(z),  # type: ignore[attr-defined]
            confidence=confidence,
            is_anomaly=is_anomaly,
            severity=severity,
        )

    def _out_of_range(self, out: pd.DataFrame, value: np.ndarray) -> np.ndarray:
        """Whether each reading lies outside its sensor's declared range."""
        outside = np.zeros(len(out), dtype=bool)
        if not len(out):
            return outside
        for key, rows in out.groupby(["device_id", "sensor_id"], sort=False).indices.items():
            limits = self._sensor_range(key)
            if limits is not None:
                outside[rows] = (value[rows] < limits[0]) | (value[rows] > limits[1])
        return outside

    def forget_sensor_ranges(self) -> None:
        """Re-read sensor ranges from the store at the next use (after new provisioning)."""
        self._ranges = None
