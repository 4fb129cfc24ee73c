"""The Prophet detector on the live path: the same causal engine as ``score_online``.

Each (device, sensor) gets an :class:`~iotlab.detect.online.OnlineProphet`: the model
fitted at the sensor's last refit point (Prophet's trend and seasonalities as arrays,
the day profile, the out-of-sample residual scale and the tail reference), the local
level correction's context (the readings of the last local window) and the readings of
the training window. A batch is scored against that cached model, with numpy only;
a sensor is refitted when a reading crosses into a new segment (at most ``max_refits``
per batch: a sensor over the budget is judged by the model in hand and refitted in a
later batch). Refit points are the multiples of ``refit_every`` since the epoch
(:func:`~iotlab.detect.online.judging_refit`), so the same stream gets the same scores
as ``score_online`` however it is cut into batches.

A sensor with less than ``min_history`` of history (and a reading no model can judge,
after a silence longer than the window) is scored by the rolling z-score instead; its
rows say ``detector='rolling_zscore'``, and the log says why once per sensor.

A sensor first seen by a running service (or warmed) reads its training window from the
store; its earlier flags and out-of-sample errors are not known then, so its first
segment measures its scale on a holdout, as ``score_online`` does at a series' start.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable

import numpy as np
import pandas as pd

from iotlab.detect.base import Forecast
from iotlab.detect.online import NO_MODEL, OnlineProphet, SegmentModel, SegmentReferences
from iotlab.detect.prophet import ProphetResidualDetector
from iotlab.store.base import Store

__all__ = ["LiveProphet"]

logger = logging.getLogger("iotlab.ingest.scoring")

Key = tuple[str, str]


class LiveProphet:
    """Per-sensor :class:`OnlineProphet` engines fed by live batches.

    Parameters
    ----------
    store
        Where a sensor first seen reads its training window.
    template
        The detector (its options, threshold and calibration) every sensor uses; each
        sensor gets a copy with its declared range.
    sensor_range
        ``sensor_range(key)``: the declared ``(min, max)`` of a sensor, or ``None``.
    refit_every, window, min_history
        As in :meth:`~iotlab.detect.base.Detector.score_online` (its defaults: ``1D``,
        ``14D``, the detector's ``max(min_span, 2D)``).
    max_refits
        Most sensors refitted per batch.
    """

    def __init__(
        self,
        store: Store,
        template: ProphetResidualDetector,
        sensor_range: Callable[[Key], tuple[float, float] | None],
        *,
        refit_every: pd.Timedelta,
        window: pd.Timedelta,
        min_history: pd.Timedelta | None,
        max_refits: int,
    ) -> None:
        self.store = store
        self.template = template
        self._sensor_range = sensor_range
        self.refit_every, self.window = refit_every, window
        self.min_history = (
            min_history if min_history is not None else max(template.min_span, pd.Timedelta("2D"))
        )
        self.max_refits = max_refits
        self.engines: dict[Key, OnlineProphet] = {}
        self._noted: set[tuple[Key, str]] = set()

    @property
    def refits(self) -> int:
        return sum(engine.refits for engine in self.engines.values())

    # -- engines --------------------------------------------------------------------------
    def _new_engines(self, first_ns: dict[Key, int]) -> None:
        """An engine for each new sensor, its history read from the store: the training
        window before the sensor's first reading here (one read per sensor id)."""
        by_sensor: dict[str, list[str]] = {}
        for device_id, sensor_id in first_ns:
            by_sensor.setdefault(sensor_id, []).append(device_id)
        for sensor_id, devices in by_sensor.items():
            firsts = [first_ns[(d, sensor_id)] for d in devices]
            rows = self.store.read_rows(
                "readings",
                {"device_id": devices, "sensor_id": sensor_id},
                start=pd.Timestamp(min(firsts) - self.window.value, unit="ns", tz="UTC"),
                end=pd.Timestamp(max(firsts), unit="ns", tz="UTC"),
                columns=["device_id", "ts", "value"],
            )
            t_all = rows["ts"].to_numpy("datetime64[ns]").astype(np.int64)
            order = np.lexsort((t_all, rows["device_id"].to_numpy(dtype=object).astype(str)))
            device_all = rows["device_id"].to_numpy(dtype=object)[order]
            t_all, v_all = t_all[order], rows["value"].to_numpy(dtype=float)[order]
            for device_id, first in zip(devices, firsts):
                key = (device_id, sensor_id)
                detector = copy.copy(self.template)
                detector.sensor_range = self._sensor_range(key)
                engine = OnlineProphet(
                    detector,
                    refit_every=self.refit_every,
                    window=self.window,
                    min_history=self.min_history,
                )
                own = (
                    (device_all == device_id)
                    & (t_all < first)
                    & (t_all >= first - self.window.value)
                )
                engine.remember(t_all[own], v_all[own])
                self.engines[key] = engine

    def warm(self, keys: list[Key], at_ns: int) -> set[Key]:
        """Read the history of ``keys`` before ``at_ns`` and fit each sensor's model for
        the refit point at ``at_ns``; return the sensors that got a Prophet model."""
        self._new_engines({key: at_ns for key in keys if key not in self.engines})
        fitted = set()
        for key in keys:
            engine = self.engines[key]
            point = int(engine.points(np.array([at_ns]))[0])
            if point != NO_MODEL and point > engine.attempted:
                engine.refit(point)
            if engine.model is not None:
                fitted.add(key)
        return fitted

    # -- scoring --------------------------------------------------------------------------
    def overlay(self, scored: pd.DataFrame, keys: list[Key], pair: np.ndarray) -> pd.DataFrame:
        """``scored`` (the rolling z-score's scores of a batch, whose rows are of sensor
        ``keys[pair]``) with Prophet's scores wherever a Prophet model judged the row."""
        n = len(scored)
        t_ns = scored["ts"].to_numpy("datetime64[ns]").astype(np.int64)
        values = scored["value"].to_numpy(dtype=float)
        order = np.lexsort((t_ns, pair))
        bounds = np.searchsorted(pair[order], np.arange(len(keys) + 1))
        new = {
            keys[k]: int(t_ns[order[bounds[k]]])
            for k in range(len(keys))
            if bounds[k + 1] > bounds[k] and keys[k] not in self.engines
        }
        if new:
            self._new_engines(new)
        expected, scale, width = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
        codes = np.full(n, -1, dtype=np.int64)
        models: list[SegmentModel] = []
        budget = self.max_refits
        for k, key in enumerate(keys):
            rows = order[bounds[k] : bounds[k + 1]]
            if not len(rows):
                continue
            engine = self.engines[key]
            had_model = engine.model is not None
            refit = budget > 0
            if refit and engine.needs_refit(t_ns[rows]):
                budget -= 1
            judged = engine.judge(t_ns[rows], values[rows], refit=refit)
            expected[rows], scale[rows], width[rows] = judged.expected, judged.scale, judged.width
            codes[rows] = np.where(judged.model >= 0, judged.model + len(models), -1)
            models.extend(judged.models)
            self._note(key, engine, judged.model, t_ns[rows], had_model, refit)
        prophet = codes >= 0
        detector = np.where(prophet, self.template.name, scored["detector"].to_numpy(dtype=object))
        out = scored.assign(detector=detector)
        if not prophet.any():
            return out
        rows = np.flatnonzero(prophet)
        references = SegmentReferences(
            codes[rows], tuple(m.table for m in models), tuple(m.band_z for m in models)
        )
        frame = pd.DataFrame({"ts": scored["ts"].to_numpy()[rows], "value": values[rows]})
        proto = self.template
        assembled = proto._assemble(
            frame, Forecast(expected[rows], scale[rows], width[rows], references)
        )
        limits = np.array(
            [self._sensor_range(key) or (-np.inf, np.inf) for key in keys], dtype=float
        ).reshape(-1, 2)
        at = pair[rows]
        out_of_range = (values[rows] < limits[at, 0]) | (values[rows] > limits[at, 1])
        with np.errstate(divide="ignore", invalid="ignore"):
            share = np.abs(values[rows] - expected[rows]) / width[rows]
        severity = proto.severity.assign(
            share,
            assembled["confidence"].to_numpy(),
            assembled["is_anomaly"].to_numpy(),
            out_of_range,
        )
        for column in ("expected", "lower", "upper", "score", "confidence"):
            values_out = out[column].to_numpy(dtype=float).copy()
            values_out[rows] = assembled[column].to_numpy(dtype=float)
            out[column] = values_out
        flags = out["is_anomaly"].to_numpy(dtype=bool).copy()
        flags[rows] = assembled["is_anomaly"].to_numpy(dtype=bool)
        out["is_anomaly"] = flags
        severities = out["severity"].copy()
        severities.iloc[rows] = severity
        out["severity"] = severities
        return out

    def _note(
        self,
        key: Key,
        engine: OnlineProphet,
        used: np.ndarray,
        t_ns: np.ndarray,
        had_model: bool,
        refit: bool,
    ) -> None:
        """Say once per sensor (and reason) why the rolling z-score scores its rows."""
        if (used >= 0).any() and not had_model and (key, "prophet") not in self._noted:
            self._noted.add((key, "prophet"))
            logger.info("%s/%s: now scored by %s", *key, self.template.name)
        if (used >= 0).all():
            return
        t = int(t_ns[np.flatnonzero(used < 0)[0]])
        if engine.first_ns is None or int(engine.points(np.array([t]))[0]) == NO_MODEL:
            reason, why = (
                "short",
                (
                    f"less than min_history={self.min_history} of history"
                    + (
                        f" (since {pd.Timestamp(engine.first_ns, tz='UTC')})"
                        if engine.first_ns is not None
                        else ""
                    )
                ),
            )
        elif not refit and engine.model is None:
            reason, why = (
                "budget",
                f"waiting for its first fit (at most {self.max_refits} per batch)",
            )
        else:
            reason, why = (
                "outage",
                (
                    f"fewer than 10 readings in the {self.window} before its refit point "
                    "to fit a model"
                ),
            )
        if (key, reason) not in self._noted:
            self._noted.add((key, reason))
            logger.info(
                "%s/%s: %s; scored by the rolling z-score (detector='rolling_zscore') until then",
                *key,
                why,
            )
