"""Score live readings against cached per-sensor forecasts; refit on a schedule.

For each (device, sensor) the cache keeps a detector fitted on the sensor's recent
stored history and, from it, a *forecast table*: the detector's expected value and band
at the next expected reading times (``horizon`` ahead, one point per reading period).
A batch is scored by looking each reading up in its sensor's table, vectorised; no
model is fitted per reading. Models are fitted at fixed data-time grid points (every
``refit_every``) on the history before the point, so the same stream gives the same
scores however it is cut into batches; at most ``max_refits`` sensors are refitted per
batch. The default model's fits are computed for all due sensors together. A refit's
history comes from the cache's memory of the readings it scored (which the service
stored) and of what it read before; the store is read, one bulk read per sensor id, only
for sensors the memory does not cover yet (:mod:`iotlab.ingest.recent`).

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
from typing import cast

import numpy as np
import pandas as pd

from iotlab._compat import legacy_call_forms
from iotlab._keys import sensor_pairs
from iotlab._time import TimeLike, utc_timestamp
from iotlab.detect.base import Detector, robust_width
from iotlab.detect.baselines import RollingZScoreDetector, trailing_forecasts
from iotlab.detect.prophet import ProphetResidualDetector
from iotlab.errors import IotlabError, ValidationError
from iotlab.ingest.live_prophet import LiveProphet
from iotlab.ingest.recent import RecentReadings
from iotlab.store.base import Store

__all__ = ["DETECTORS", "SCORE_FIELDS", "ForecastCache"]

logger = logging.getLogger(__name__)

#: Columns :meth:`ForecastCache.score` adds to a batch (``detector``: the model that
#: scored the row, a fallback named as itself).
SCORE_FIELDS = (
    "expected",
    "lower",
    "upper",
    "score",
    "confidence",
    "is_anomaly",
    "severity",
    "detector",
)
#: What ``ForecastCache(detector=...)`` and ``iotlab serve --detector`` accept by name.
DETECTORS = ("prophet", "zscore")

DetectorFactory = Callable[[str, str, "tuple[float, float] | None"], Detector]
#: A batch being scored: its sensor keys, each row's key code, epoch ms and value.
_Batch = tuple[list[tuple[str, str]], np.ndarray, np.ndarray, np.ndarray]


#: The default model's trailing window and fewest readings in it.
ZSCORE_WINDOW = "2h"
ZSCORE_MIN_PERIODS = 10


def rolling_zscore_factory(
    device_id: str, sensor_id: str, sensor_range: tuple[float, float] | None
) -> Detector:
    """The default model: a 2-hour rolling robust z-score with the sensor's range.

    Its forecast tables are computed for all due sensors at once
    (:func:`iotlab.detect.baselines.trailing_forecasts`), with the same result as
    fitting this detector per sensor.
    """
    return RollingZScoreDetector(
        window=ZSCORE_WINDOW, min_periods=ZSCORE_MIN_PERIODS, sensor_range=sensor_range
    )


@dataclass
class _Entry:
    fitted_at: int  # data time (epoch ms) of the grid point of the last (attempted) fit
    grid_ms: np.ndarray  # expected reading times, epoch ms
    expected: np.ndarray
    scale: np.ndarray  # robust sd of the residual at each grid time
    step_ms: int
    width: float  # the sensor's range: declared, else the history's robust range


@dataclass
class _Plan:
    """A due fit: the sensor, its grid point, its history and forecast grid."""

    key: tuple[str, str]
    point: int  # epoch ms
    series: int  # position among the due fits
    rows: slice  # its rows of the history frame: sorted by ts, no NaN (validated)
    step_ms: int
    grid: np.ndarray  # epoch ms
    limits: tuple[float, float] | None
    width: float


class ForecastCache:
    """Per-sensor fitted detectors and their forecasts, refreshed on a schedule.

    Parameters
    ----------
    store
        Where each sensor's history is read from at refit time.
    detector
        Which model scores readings (see :data:`DETECTORS`): ``"prophet"`` (the
        default; a :class:`~iotlab.detect.ProphetResidualDetector` instance to choose its
        options) scores each reading as :meth:`~iotlab.detect.base.Detector.score_online`
        does, with the rolling z-score for sensors with too little history (their rows
        say so in ``detector``); ``"zscore"`` a 2 h rolling robust z-score for every
        sensor; or a factory ``factory(device_id, sensor_id, sensor_range) -> Detector``
        whose detectors are fitted on ``history`` and forecast a table of future
        readings (all must share one ``threshold``, ``calibration`` and ``severity``);
        ``None``: the rolling z-score (the default before Prophet was).
    refit_every
        Data time between refits of one sensor (Prophet: ``1D``, else ``30min``).
    history
        How much stored history a refit reads (Prophet: its training window, ``14D``,
        held in memory per sensor; the z-score: its 2-hour window; one day for other
        detectors).
    horizon
        How far ahead a factory's forecast table reaches (default ``2 * refit_every``,
        so a sensor waiting for its turn to refit still has a forecast).
    max_refits
        Most sensors refitted per batch (default: 8 for Prophet, 2,000 for the z-score,
        whose fits are computed together, 50 for other detectors).
    min_history
        Prophet only: history a sensor needs before Prophet scores it (default: the
        detector's ``max(min_span, 2D)``, as ``score_online``).
    """

    @legacy_call_forms(positional=("detector",), renamed={"detector_factory": "detector"})
    def __init__(
        self,
        store: Store,
        *,
        detector: str | ProphetResidualDetector | DetectorFactory | None = "prophet",
        refit_every: str | pd.Timedelta | None = None,
        history: str | pd.Timedelta | None = None,
        horizon: str | pd.Timedelta | None = None,
        max_refits: int | None = None,
        min_history: str | pd.Timedelta | None = None,
    ) -> None:
        self.store = store
        template = _prophet_template(detector)
        self._live: LiveProphet | None = None
        self._fallback: ForecastCache | None = None
        if template is not None:
            # The rolling z-score scores every row first: the fallback of sensors without
            # a Prophet model, and its memory of recent readings stays complete.
            self._fallback = ForecastCache(store, detector="zscore")
            self._live = LiveProphet(
                store,
                template,
                self._sensor_range,
                refit_every=pd.Timedelta(refit_every or "1D"),
                window=pd.Timedelta(history or "14D"),
                min_history=pd.Timedelta(min_history) if min_history is not None else None,
                max_refits=max_refits if max_refits is not None else 8,
            )
            detector = "zscore"
        elif isinstance(detector, str) and detector not in DETECTORS:
            raise ValidationError(
                f"unknown detector {detector!r}; choose one of {', '.join(DETECTORS)}",
                field="detector",
            )
        self.factory: DetectorFactory = (
            rolling_zscore_factory
            if detector in ("zscore", None)
            else cast("DetectorFactory", detector)  # not "prophet" and not an instance here
        )
        self.refit_every = pd.Timedelta(refit_every or "30min")
        self._refit_ms = self.refit_every // pd.Timedelta(milliseconds=1)
        if self._refit_ms < 1:
            raise ValidationError(f"must be at least 1 ms, got {refit_every}", field="refit_every")
        default = self.factory is rolling_zscore_factory
        self.history = pd.Timedelta(history or (ZSCORE_WINDOW if default else "1D"))
        self.horizon = pd.Timedelta(horizon) if horizon is not None else 2 * self.refit_every
        self.max_refits = max_refits if max_refits is not None else (2000 if default else 50)
        self._entries: dict[tuple[str, str], _Entry] = {}
        self._ranges: dict[tuple[str, str], tuple[float, float]] | None = None
        # What was stored lately (scored batches, store reads): refits read it, not the store.
        self._recent = RecentReadings()
        self._newest_ms: int | None = None  # newest reading scored so far
        self._prototype = self.factory("", "", None)
        self._table_name = str(getattr(self._prototype, "name", type(self._prototype).__name__))
        #: The detector named in the rows this cache scores (a fallback's rows name theirs).
        self.name = template.name if template is not None else self._table_name
        self._refits = 0

    @property
    def refits(self) -> int:
        """How many sensor models were fitted so far."""
        live = self._live.refits if self._live is not None else 0
        fallback = self._fallback.refits if self._fallback is not None else 0
        return self._refits + live + fallback

    def __len__(self) -> int:
        if self._live is not None:
            return len(self._live.engines)
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

    def _histories(
        self, due: list[tuple[tuple[str, str], int]], until_ms: int, batch: _Batch | None
    ) -> pd.DataFrame:
        """``series`` (position in ``due``), ``ts`` (epoch ms), ``value``: the stored
        ``history`` before each due ``(key, point)``, sorted by series then time.

        Taken from the cache's memory of recent readings where it is complete (see
        :mod:`iotlab.ingest.recent`), read from the store (up to ``until_ms``) where not.
        """
        history_ms = int(self.history / pd.Timedelta(milliseconds=1))
        windows = [(key, point - history_ms, point) for key, point in due]
        stored = self._read_stored(windows, until_ms, batch)
        counts, ts_parts, value_parts = [], [], []
        for key, lo, hi in windows:
            source = self._recent if stored.complete_from(key) is None else stored
            ts, values = source.window(key, lo, hi)
            counts.append(len(ts))
            ts_parts.append(ts)
            value_parts.append(values)
        return pd.DataFrame(
            {
                "series": np.repeat(np.arange(len(due), dtype=np.int64), counts),
                "ts": np.concatenate(ts_parts) if ts_parts else np.array([], dtype=np.int64),
                "value": np.concatenate(value_parts) if value_parts else np.array([]),
            }
        )

    def _read_stored(
        self,
        windows: list[tuple[tuple[str, str], int, int]],
        until_ms: int,
        batch: _Batch | None = None,
    ) -> RecentReadings:
        """Read from the store what the memory does not hold of these windows' sensors.

        One ``read_rows`` per sensor id, from the earliest window start to ``until_ms``:
        it reads the partitions concurrently (and, on Cassandra, several per query), so a
        refit round costs a few store calls, not one round trip per sensor. What is read
        is also remembered, and from then on the memory covers those sensors.

        The ``batch`` being scored is added to what was read: it may not be stored yet
        (the ingestion service scores a batch before writing it, so that its readings
        and anomalies reach the store together).
        """
        starts: dict[str, dict[str, int]] = {}
        for (device_id, sensor_id), lo, _ in windows:
            known = self._recent.complete_from((device_id, sensor_id))
            if known is None or known > lo:
                devices = starts.setdefault(sensor_id, {})
                devices[device_id] = min(devices.get(device_id, lo), lo)
        stored = RecentReadings()  # all of this read, for this round's windows
        for sensor_id, devices in starts.items():
            start = min(devices.values())
            rows = self.store.read_rows(
                "readings",
                {"device_id": list(devices), "sensor_id": sensor_id},
                start=pd.Timestamp(start, unit="ms", tz="UTC"),
                end=pd.Timestamp(until_ms, unit="ms", tz="UTC"),
                columns=["device_id", "sensor_id", "ts", "value"],
            )
            rows = rows.assign(ts=rows["ts"].to_numpy("datetime64[ms]").astype(np.int64))
            keys = [(device_id, sensor_id) for device_id in devices]
            for memory in (stored, self._recent):
                memory.add(rows)
                memory.mark_complete(keys, start)
        if starts and batch is not None:  # newer than what the store returned
            for memory in (stored, self._recent):
                memory.add_coded(*batch)
        return stored

    def _fit_all(
        self, due: list[tuple[tuple[str, str], int]], history: pd.DataFrame
    ) -> dict[tuple[tuple[str, str], int], _Entry]:
        """A forecast table for each due ``(key, point)`` from its stored ``history``.

        The table holds the model's expected value and scale at the sensor's next
        expected reading times, ``horizon`` ahead of its last stored reading.
        """
        empty = np.array([], dtype=np.int64)
        entries = {
            (key, point): _Entry(point, empty, empty.astype(float), empty.astype(float), 1, np.nan)
            for key, point in due
        }
        codes = history["series"].to_numpy()
        ts_ms = history["ts"].to_numpy()
        values = history["value"].to_numpy()
        bounds = np.searchsorted(codes, np.arange(len(due) + 1))
        plans = []
        for i, (key, point) in enumerate(due):
            lo, hi = bounds[i], bounds[i + 1]
            if hi - lo < 2:
                continue  # too little history: no forecast, readings stay unscored
            step_ms = max(int(np.median(np.diff(ts_ms[lo:hi]))), 1)
            n = max(1, int(self.horizon / pd.Timedelta(milliseconds=step_ms)))
            limits = self._sensor_range(key)
            width = limits[1] - limits[0] if limits else robust_width(values[lo:hi])
            grid = ts_ms[hi - 1] + step_ms * np.arange(1, n + 1, dtype=np.int64)
            plans.append(_Plan(key, point, i, slice(lo, hi), step_ms, grid, limits, width))
        if not plans:
            return entries
        tables: list[tuple[np.ndarray, np.ndarray] | None]
        if self.factory is rolling_zscore_factory:
            tables = list(self._default_tables(plans, history, len(due)))
        else:
            tables = [self._detector_table(plan, history) for plan in plans]
        for plan, table in zip(plans, tables):
            if table is not None:
                self._refits += 1
                entries[(plan.key, plan.point)] = _Entry(
                    plan.point,
                    plan.grid,
                    *table,
                    plan.step_ms,
                    plan.width if plan.width > 0 else np.nan,
                )
        return entries

    @staticmethod
    def _default_tables(
        plans: list[_Plan], history: pd.DataFrame, n_series: int
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """The default model's tables for every plan at once (see ``trailing_forecasts``)."""
        planned = np.zeros(n_series, dtype=bool)
        planned[[p.series for p in plans]] = True
        history = history[planned[history["series"].to_numpy()]]
        history = history.assign(ts=_as_utc(history["ts"].to_numpy()))
        probes = pd.DataFrame(
            {
                "series": np.repeat([p.series for p in plans], [len(p.grid) for p in plans]),
                "ts": _as_utc(np.concatenate([p.grid for p in plans])),
            }
        )
        widths = np.full(n_series, np.nan)
        widths[[p.series for p in plans]] = [p.width for p in plans]
        expected, scale = trailing_forecasts(
            history, probes, widths, window=ZSCORE_WINDOW, min_periods=ZSCORE_MIN_PERIODS
        )
        bounds = np.cumsum([0, *(len(p.grid) for p in plans)])
        return [(expected[lo:hi], scale[lo:hi]) for lo, hi in zip(bounds[:-1], bounds[1:])]

    def _detector_table(
        self, plan: _Plan, history: pd.DataFrame
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """Fit the factory's detector on one sensor's history and forecast its grid."""
        detector = self.factory(plan.key[0], plan.key[1], plan.limits)
        own = history.iloc[plan.rows]
        series = pd.DataFrame({"ts": _as_utc(own["ts"].to_numpy()), "value": own["value"]})
        probe = pd.DataFrame({"ts": _as_utc(plan.grid), "value": np.nan})
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # short-history fallbacks are expected here
                detector.fit(series)
                forecast = detector.score(probe)
        except IotlabError as exc:
            logger.warning("cannot fit %s/%s: %s", plan.key[0], plan.key[1], exc)
            return None
        z = detector.calibration.z_threshold(detector.threshold)
        expected = forecast["expected"].to_numpy(dtype=float)
        return expected, (forecast["upper"].to_numpy(dtype=float) - expected) / z

    def _refit(
        self,
        wanted: list[tuple[tuple[str, str], int]],
        until_ms: int,
        batch: _Batch | None = None,
    ) -> dict[tuple[tuple[str, str], int], _Entry]:
        """Fit each ``(key, grid point)`` not fitted yet, at most ``max_refits`` of them.

        Fits happen at fixed data-time grid points (multiples of ``refit_every``) and read
        only history before the point, so which model scores a reading depends on the
        reading's time, not on where a stream happened to be cut into batches. Past the
        budget a sensor keeps its older forecast; its horizon covers the wait.
        """
        due: list[tuple[tuple[str, str], int]] = []
        for key, point in wanted:
            entry = self._entries.get(key)
            if (entry is None or entry.fitted_at < point) and len(due) < self.max_refits:
                due.append((key, point))
        if not due:
            return {}
        return self._fit_all(due, self._histories(due, until_ms, batch))

    def warm(self, at: TimeLike) -> int:
        """Fit every provisioned sensor for the grid point at or before ``at``, now.

        A service that starts cold makes these fits (and their store reads) in its first
        batch, which then waits for them; warming before readings arrive moves that work
        ahead of them. Returns how many sensors got a forecast.

        Examples
        --------
        >>> from iotlab.store import open_store
        >>> store = open_store("sqlite://"); store.create_schema()
        >>> ForecastCache(store).warm("2026-01-01")  # nothing provisioned, nothing to fit
        0
        >>> store.close()
        """
        from iotlab.store.validate import provisioned_keys

        at_ms = utc_timestamp(at, field="at").value // 1_000_000
        sensors = provisioned_keys(self.store, "readings")
        keys = list(zip(sensors["device_id"].tolist(), sensors["sensor_id"].tolist()))
        if self._live is not None and self._fallback is not None:
            self._fallback.warm(at)
            # Each sensor's Prophet model, else its z-score table, is its forecast.
            fitted = self._live.warm(keys, at_ms * 1_000_000)
            tables = {k for k, e in self._fallback._entries.items() if len(e.grid_ms)}
            return len(fitted | tables)
        point = int(self._grid_ms(np.array([at_ms]))[0])
        forecasts = 0
        for lo in range(0, len(keys), self.max_refits):
            refitted = self._refit(
                [(key, point) for key in keys[lo : lo + self.max_refits]], at_ms
            )
            for (key, _), entry in refitted.items():
                self._entries[key] = entry
                forecasts += len(entry.grid_ms) > 0
        return forecasts

    # -- scoring -----------------------------------------------------------------------------
    def score(self, readings: pd.DataFrame) -> pd.DataFrame:
        """``readings`` (device_id, sensor_id, ts, value, ...) with :data:`SCORE_FIELDS`.

        Each reading is looked up in the forecast its sensor was fitted for at the last
        grid point of that sensor at or before it (see :meth:`grid_points`); missing fits
        are made first, at most ``max_refits`` per call. Prophet: see
        :mod:`iotlab.ingest.live_prophet`. The ``detector`` column names the model that
        scored each row.
        """
        if self._live is not None and self._fallback is not None:
            return self._score_live(readings, self._live, self._fallback)
        out = readings.reset_index(drop=True)
        n = len(out)
        if not n:
            nothing = np.full(0, np.nan)
            return self._assemble(out, nothing, nothing, nothing, np.zeros(0, dtype=bool))
        ts_ms = out["ts"].to_numpy("datetime64[ms]").astype(np.int64)
        pair, devices, sensors = sensor_pairs(out["device_id"], out["sensor_id"])
        keys = list(zip(devices.tolist(), sensors.tolist()))
        points = self._grid_ms(ts_ms)
        # One group per (sensor, grid point), each sensor's in time order, so a batch
        # spanning a grid point scores its earlier rows before refitting for the later ones.
        order = np.lexsort((points, pair))
        sorted_pair, sorted_points = pair[order], points[order]
        new = np.ones(n, dtype=bool)
        new[1:] = (sorted_pair[1:] != sorted_pair[:-1]) | (sorted_points[1:] != sorted_points[:-1])
        group = np.empty(n, dtype=np.int64)
        group[order] = np.cumsum(new) - 1
        firsts = zip(sorted_pair[new].tolist(), sorted_points[new].tolist())
        wanted = [(keys[k], point) for k, point in firsts]
        batch = (keys, pair, ts_ms, out["value"].to_numpy(dtype=float))
        self._remember(*batch)
        fitted = self._refit(wanted, int(ts_ms.max()) + 1, batch)
        scoring: list[_Entry | None] = []  # the entry each group is scored with
        for key, point in wanted:
            entry = fitted.get((key, point))
            if entry is not None:
                self._entries[key] = entry
            scoring.append(self._entries.get(key))
        expected, scale, width = _look_up(scoring, group, ts_ms)
        return self._assemble(out, expected, scale, width, self._out_of_range(keys, pair, out))

    def _score_live(
        self, readings: pd.DataFrame, live: LiveProphet, fallback: ForecastCache
    ) -> pd.DataFrame:
        """:meth:`score` with Prophet: its rows judged by the sensors' Prophet models,
        the others (too little history, after a long outage) by the rolling z-score.

        The z-score scores only the rows Prophet did not; it remembers every row, so a
        sensor that falls back later finds its recent readings in memory.
        """
        out = readings.reset_index(drop=True)
        n = len(out)
        if not n:
            return fallback.score(out)
        pair, devices, sensors = sensor_pairs(out["device_id"], out["sensor_id"])
        keys = list(zip(devices.tolist(), sensors.tolist()))
        t_ns = out["ts"].to_numpy("datetime64[ns]").astype(np.int64)
        values = out["value"].to_numpy(dtype=float)
        judged = live.judge(keys, pair, t_ns, values)
        prophet = judged.model >= 0
        if not prophet.any():
            return fallback.score(out)
        rest = np.flatnonzero(~prophet)
        ts_ms = out["ts"].to_numpy("datetime64[ms]").astype(np.int64)
        fallback._remember(keys, pair[prophet], ts_ms[prophet], values[prophet])
        scored = live.score(out, keys, pair, judged)
        others = fallback.score(out.iloc[rest]) if len(rest) else None
        columns: dict[str, np.ndarray | pd.Categorical] = {}
        for column, dtype in (
            ("expected", float),
            ("lower", float),
            ("upper", float),
            ("score", float),
            ("confidence", float),
            ("is_anomaly", bool),
        ):
            merged = np.empty(n, dtype=dtype)
            merged[prophet] = scored[column].to_numpy(dtype=dtype)
            if others is not None:
                merged[rest] = others[column].to_numpy(dtype=dtype)
            columns[column] = merged
        severity = scored["severity"].array
        codes = np.full(n, -1, dtype=np.int8)
        codes[prophet] = severity.codes
        detector = np.full(n, live.template.name, dtype=object)
        if others is not None:
            codes[rest] = others["severity"].array.codes
            detector[rest] = others["detector"].to_numpy(dtype=object)
        columns["severity"] = pd.Categorical.from_codes(codes, dtype=severity.dtype)
        columns["detector"] = detector
        return out.assign(**columns)

    def _remember(
        self, keys: list[tuple[str, str]], pair: np.ndarray, ts_ms: np.ndarray, values: np.ndarray
    ) -> None:
        """Keep the batch for later refits; forget what no refit will need.

        A sensor's next refit reads ``history`` before a grid point at most
        ``refit_every`` before the batch (a sensor a refit behind the newest reading
        still finds its window here); older sensors read the store.
        """
        if self._newest_ms is not None:
            span = self.history + 2 * self.refit_every
            self._recent.drop_before(self._newest_ms - span.value // 1_000_000)
        self._recent.add_coded(keys, pair, ts_ms, values)
        newest = int(ts_ms.max())
        self._newest_ms = newest if self._newest_ms is None else max(self._newest_ms, newest)

    def grid_points(self, ts: pd.Series) -> pd.Series:
        """The refit grid point at or before each reading: when its model was fitted.

        Every ``refit_every`` of data time, the same instants for every sensor, so a
        fleet's refits share one bulk read and one grouped fit; it depends on the
        reading alone, never on how the stream was cut into batches.

        Examples
        --------
        >>> from iotlab.store import open_store
        >>> store = open_store("sqlite://")
        >>> cache = ForecastCache(store, refit_every="30min")
        >>> cache.grid_points(pd.Series(pd.to_datetime(["2026-01-01 00:40"], utc=True)))[0]
        Timestamp('2026-01-01 00:30:00+0000', tz='UTC')
        >>> store.close()
        """
        ms = ts.to_numpy("datetime64[ms]").astype(np.int64)
        return pd.Series(_as_utc(self._grid_ms(ms)), index=ts.index, name=ts.name)

    def _grid_ms(self, ts_ms: np.ndarray) -> np.ndarray:
        """:meth:`grid_points` of epoch milliseconds, as epoch milliseconds."""
        return ts_ms - ts_ms % self._refit_ms

    def _assemble(
        self,
        out: pd.DataFrame,
        expected: np.ndarray,
        scale: np.ndarray,
        width: np.ndarray,
        out_of_range: np.ndarray,
    ) -> pd.DataFrame:
        proto = self._prototype
        value = out["value"].to_numpy(dtype=float)
        residual = value - expected
        with np.errstate(divide="ignore", invalid="ignore"):
            z = residual / scale
        confidence = proto.calibration.confidence(z)
        is_anomaly = np.nan_to_num(confidence, nan=0.0) > proto.threshold
        half = proto.calibration.z_threshold(proto.threshold) * scale
        with np.errstate(divide="ignore", invalid="ignore"):
            share = np.abs(residual) / width
        severity = proto.severity.assign(share, confidence, is_anomaly, out_of_range)
        return out.assign(
            expected=expected,
            lower=expected - half,
            upper=expected + half,
            score=proto.calibration.score(z),
            confidence=confidence,
            is_anomaly=is_anomaly,
            severity=severity,
            detector=self._table_name,
        )

    def _out_of_range(
        self, keys: list[tuple[str, str]], pair: np.ndarray, out: pd.DataFrame
    ) -> np.ndarray:
        """Whether each reading (of sensor ``keys[pair]``) lies outside its declared range."""
        limits = np.array([self._sensor_range(key) or (-np.inf, np.inf) for key in keys])
        value = out["value"].to_numpy(dtype=float)
        return (value < limits[pair, 0]) | (value > limits[pair, 1])

    def forget_history(self) -> None:
        """Drop the memory of recent readings: the next refits read the store again
        (Prophet's training windows, which are its state, are kept)."""
        self._recent.forget()
        if self._fallback is not None:
            self._fallback.forget_history()

    def forget_sensor_ranges(self) -> None:
        """Re-read sensor ranges from the store at the next use (after new provisioning)."""
        self._ranges = None
        if self._fallback is not None:
            self._fallback.forget_sensor_ranges()


def _prophet_template(detector: object) -> ProphetResidualDetector | None:
    """The Prophet detector ``detector`` asks for, or ``None`` for another model."""
    if isinstance(detector, ProphetResidualDetector):
        return detector
    if detector == "prophet":
        return ProphetResidualDetector()
    return None


def _look_up(
    entries: list[_Entry | None], group: np.ndarray, ts_ms: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Expected value, scale and range width of each row from its group's forecast table.

    ``entries[g]`` is the table rows of group ``g`` (``group[row]``) are scored with. A
    row gets the table's values at the grid time nearest to it, if that lies within half
    a reading period; else NaN (never anomalous). The tables in use are laid end to end
    so every row is looked up at once.
    """
    n = len(group)
    expected, scale, width = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
    table: list[_Entry] = []
    position: dict[int, int] = {}  # id(entry) -> its place in ``table``
    of_group = np.full(len(entries), -1, dtype=np.int64)
    for g, entry in enumerate(entries):
        if entry is not None and len(entry.grid_ms):
            of_group[g] = position.setdefault(id(entry), len(table))
            if of_group[g] == len(table):
                table.append(entry)
    if not table:
        return expected, scale, width
    first = np.array([e.grid_ms[0] for e in table], dtype=np.int64)
    step = np.array([e.step_ms for e in table], dtype=np.int64)
    size = np.array([len(e.grid_ms) for e in table], dtype=np.int64)
    offset = np.cumsum(size) - size
    rows = np.flatnonzero(of_group[group] >= 0)
    at = of_group[group[rows]]
    k = np.rint((ts_ms[rows] - first[at]) / step[at]).astype(np.int64)
    ok = (k >= 0) & (k < size[at])
    ok &= np.abs(ts_ms[rows] - first[at] - k * step[at]) * 2 <= step[at]
    flat = offset[at[ok]] + k[ok]
    expected[rows[ok]] = np.concatenate([e.expected for e in table])[flat]
    scale[rows[ok]] = np.concatenate([e.scale for e in table])[flat]
    width[rows] = np.array([e.width for e in table])[at]
    return expected, scale, width


def _as_utc(ms: np.ndarray) -> pd.DatetimeIndex:
    """Epoch milliseconds as UTC timestamps."""
    return pd.DatetimeIndex(np.asarray(ms, dtype=np.int64).astype("datetime64[ms]")).tz_localize(
        "UTC"
    )
