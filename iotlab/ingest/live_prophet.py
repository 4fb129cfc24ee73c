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
from iotlab.detect.online import (
    NO_MODEL,
    Judged,
    OnlineProphet,
    SegmentModel,
    SegmentReferences,
    SegmentStack,
    batch_points,
    fresh_series,
    judge_fresh,
)
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
        self._last_stack: SegmentStack | None = None

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
    def judge(
        self, keys: list[Key], pair: np.ndarray, t_ns: np.ndarray, values: np.ndarray
    ) -> Judged:
        """Judge a batch whose row ``i`` is a reading of sensor ``keys[pair[i]]`` at
        ``t_ns[i]``; ``model[i] == -1`` where no Prophet model judged it (the rolling
        z-score's rows). Each sensor's engine remembers its readings.

        Sensors whose readings simply continue their stream with the model in hand (the
        usual case) are judged together (:func:`~iotlab.detect.online.judge_fresh`):
        the batch costs a few numpy passes, not a few dozen calls per sensor. The rest
        (a refit due, late readings, no model yet, after a silence) go through their
        engine's :meth:`~iotlab.detect.online.OnlineProphet.judge` one by one.
        """
        n = len(t_ns)
        order = np.lexsort((t_ns, pair))
        bounds = np.searchsorted(pair[order], np.arange(len(keys) + 1))
        present = np.flatnonzero(bounds[1:] > bounds[:-1])
        t_sorted, v_sorted = t_ns[order], values[order]
        new = {
            keys[k]: int(t_sorted[bounds[k]])
            for k in present.tolist()
            if keys[k] not in self.engines
        }
        if new:
            self._new_engines(new)
        engines = [self.engines[keys[k]] for k in present.tolist()]
        counts = bounds[present + 1] - bounds[present]
        points = batch_points(engines, counts, t_sorted)
        # At most max_refits sensors refit per batch, in key order: a sensor may refit
        # if fewer than that of the sensors before it are due.
        attempted = np.array([e.attempted for e in engines], dtype=np.int64)
        due = points[np.cumsum(counts) - 1] > attempted
        refit = np.cumsum(due) - due < self.max_refits
        fast = fresh_series(engines, counts, t_sorted, v_sorted, points, refit)
        expected, scale, width = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
        repeat = np.zeros(n)
        codes = np.full(n, -1, dtype=np.int64)
        models: list[SegmentModel] = []
        for i in np.flatnonzero(~fast).tolist():
            k, engine = int(present[i]), engines[i]
            lo, hi = int(bounds[k]), int(bounds[k + 1])
            t, v = t_sorted[lo:hi], v_sorted[lo:hi]
            if engine.keep_unjudged(t, v):  # too early for a model: the z-score's rows
                if (keys[k], "short") not in self._noted:
                    self._note(keys[k], engine, codes[lo:hi], t, False, bool(refit[i]))
                continue
            had_model = engine.model is not None
            judged = engine.judge(t, v, refit=bool(refit[i]))
            expected[lo:hi], scale[lo:hi], width[lo:hi], repeat[lo:hi] = (
                judged.expected,
                judged.scale,
                judged.width,
                judged.repeat_log10_p,
            )
            codes[lo:hi] = np.where(judged.model >= 0, judged.model + len(models), -1)
            models.extend(judged.models)
            self._note(keys[k], engine, judged.model, t, had_model, bool(refit[i]))
        if fast.any():
            chosen = np.flatnonzero(fast)
            firsts = bounds[present[chosen]]
            sizes = counts[chosen]
            spans = list(zip(firsts.tolist(), (firsts + sizes).tolist()))
            groups: list[int | np.ndarray] = [
                int(points[a]) if points[a] == points[b - 1] else points[a:b] for a, b in spans
            ]
            stack, slots = self._stack([engines[i].model for i in chosen.tolist()])  # type: ignore[misc]
            judged = judge_fresh(
                [engines[i] for i in chosen.tolist()],
                spans,
                t_sorted,
                v_sorted,
                groups,
                stack,
                slots,
            )
            rows = np.arange(int(sizes.sum())) + np.repeat(
                firsts - (np.cumsum(sizes) - sizes), sizes
            )
            expected[rows], scale[rows], width[rows] = judged.expected, judged.scale, judged.width
            repeat[rows] = judged.repeat_log10_p
            codes[rows] = judged.model + len(models)
            models.extend(judged.models)
        out = Judged(
            np.empty(n), np.empty(n), np.empty(n), np.empty(n, dtype=np.int64), models, np.empty(n)
        )
        out.expected[order], out.scale[order], out.width[order] = expected, scale, width
        out.repeat_log10_p[order] = repeat
        out.model[order] = codes
        return out

    def _stack(self, models: list[SegmentModel]) -> tuple[SegmentStack, np.ndarray]:
        """A :class:`SegmentStack` holding ``models``, and where each one is in it: the
        last one built while every model is in it (a fleet's models change once per
        ``refit_every``), else a new one."""
        stack = self._last_stack
        if stack is not None:
            slot = stack.slot
            try:
                return stack, np.array([slot[id(m)] for m in models], dtype=np.int64)
            except KeyError:
                pass
        stack = self._last_stack = SegmentStack(models)
        return stack, np.arange(len(models), dtype=np.int64)

    def score(
        self, frame: pd.DataFrame, keys: list[Key], pair: np.ndarray, judged: Judged
    ) -> pd.DataFrame:
        """The score columns of the rows of ``frame`` (``ts``, ``value``; sensor
        ``keys[pair]``) that a Prophet model judged (``judged.model >= 0``), in order."""
        rows = np.flatnonzero(judged.model >= 0)
        values = frame["value"].to_numpy(dtype=float)[rows]
        tables = tuple(m.table for m in judged.models)
        references = SegmentReferences(
            judged.model[rows], tables, tuple(m.band_z for m in judged.models)
        )
        expected, width = judged.expected[rows], judged.width[rows]
        proto = self.template
        assembled = proto._assemble(
            pd.DataFrame({"ts": frame["ts"].array[rows], "value": values}),
            Forecast(expected, judged.scale[rows], width, references, judged.repeat_log10_p[rows]),
        )
        limits = np.array(
            [self._sensor_range(key) or (-np.inf, np.inf) for key in keys], dtype=float
        ).reshape(-1, 2)
        at = pair[rows]
        out_of_range = (values < limits[at, 0]) | (values > limits[at, 1])
        with np.errstate(divide="ignore", invalid="ignore"):
            share = np.abs(values - expected) / width
        assembled["severity"] = proto.severity.assign(
            share,
            assembled["confidence"].to_numpy(),
            assembled["is_anomaly"].to_numpy(),
            out_of_range,
        )
        return assembled

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
