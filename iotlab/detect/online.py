"""Causal Prophet scoring, one reading batch at a time: the engine behind both
:meth:`ProphetResidualDetector.score_online` and the live scorer.

:class:`OnlineProphet` holds what scoring a series causally needs: the trailing
``window`` of readings (and which of them were flagged, so that a fault is not learned
as normal), the model fitted at the last refit point, and the out-of-sample errors of
the forecasts made so far (the residual scale and the tail reference of later
segments). :meth:`OnlineProphet.judge` scores readings in time order, refitting when a
reading is the first of a new segment. ``score_online`` feeds it a whole series at
once; ``iotlab serve`` feeds it each batch as it arrives. Both therefore give a
reading the same model, context and reference, however the stream is cut.

Which model judges a reading is :func:`judging_refit`: the last refit point at or
before it, refit points being the multiples of ``refit_every`` since the epoch (UTC
midnight for ``"1D"``), starting ``min_history`` after the series' first reading. They
depend on the reading's time alone, so a live scorer started at any time refits at the
same instants as the offline pass, and a whole fleet refits together.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import pandas as pd

from iotlab.detect.calibration import robust_scale
from iotlab.detect.profile import DAY_NS, day_of_week
from iotlab.detect.prophet import _MIN_TRAIN_POINTS, _staleness
from iotlab.detect.prophet_curve import _DAY_S, ProphetCurve
from iotlab.detect.reference import References, TailReference
from iotlab.detect.repeats import RepeatRule, run_positions, runs_log10_p

if TYPE_CHECKING:
    from iotlab.detect.prophet import ProphetResidualDetector, _Fitted

__all__ = [
    "NO_MODEL",
    "OnlineProphet",
    "SegmentModel",
    "SegmentReferences",
    "SegmentStack",
    "batch_points",
    "fresh_series",
    "judge_fresh",
    "judging_refit",
    "tail_log10_p",
]

#: :func:`judging_refit` of a reading no model judges (before ``min_history`` of data).
NO_MODEL = np.iinfo(np.int64).min
#: Fewest out-of-sample residuals a segment's scale is measured on (else a holdout).
_MIN_OOS_RESIDUALS = 50
#: Readings after a silence whose forecast error is widened (see ``_staleness``).
_STALE_READINGS = 3
#: Above this many cells a local-correction window matrix is computed with pandas.
_MATRIX_CELLS = 4_000_000
_LN10 = math.log(10.0)


def judging_refit(
    t_ns: np.ndarray, *, first_ns: int, refit_every: pd.Timedelta, min_history: pd.Timedelta
) -> np.ndarray:
    """The refit point (epoch ns) of the model that judges each reading at ``t_ns``.

    The last multiple of ``refit_every`` since the epoch at or before the reading, but
    not before ``first_ns + min_history`` (the first refit, when enough history has
    been seen); :data:`NO_MODEL` for readings before that.

    Examples
    --------
    >>> day = pd.Timedelta("1D").value
    >>> t = np.array([0, 2 * day + 5, 3 * day - 1, 3 * day + 7])
    >>> judging_refit(t, first_ns=3, refit_every=pd.Timedelta("1D"),
    ...               min_history=pd.Timedelta("2D")).tolist() == [NO_MODEL, 2 * day + 3,
    ...               2 * day + 3, 3 * day]
    True
    """
    t_ns = np.asarray(t_ns, dtype=np.int64)
    start = first_ns + min_history.value
    grid = t_ns - np.mod(t_ns, refit_every.value)
    return np.where(t_ns >= start, np.maximum(grid, start), NO_MODEL)


@dataclass(frozen=True)
class SegmentModel:
    """The cached forecast of one refit: all a reading's score needs besides its context.

    ``curve`` and ``fitted.profile`` give the expectation before the local level
    correction; ``scale`` is the out-of-sample residual scale, ``table`` the tail
    reference its ``|z|`` are judged by (``band_z``: the ``|z|`` at the flag threshold),
    ``local_window`` the local correction's window, ``width`` the range for severity,
    ``repeats`` how unlikely a run of repeated values is (:mod:`iotlab.detect.repeats`).
    """

    refit_at: int
    fitted: _Fitted
    curve: ProphetCurve
    scale: float
    width: float
    local_window: pd.Timedelta | None
    table: TailReference | None
    band_z: float
    repeats: RepeatRule

    def base(self, t_ns: np.ndarray) -> np.ndarray:
        """The expectation at ``t_ns`` before the local level correction."""
        base = self.curve.at(t_ns)
        profile = self.fitted.profile
        if profile is not None:
            base = base + profile.at(t_ns)
        return base


@dataclass(frozen=True)
class SegmentReferences(References):
    """:class:`References` whose thresholds were found once per refit (``bands``), and
    whose p-values are computed one table at a time over that table's readings only:
    a live batch is judged by hundreds of tables."""

    bands: tuple[float, ...] = ()

    def log10_p(self, abs_z: np.ndarray) -> np.ndarray:
        return tail_log10_p(self.codes, self.tables, abs_z)

    def abs_z_at(self, log10_p: float, gaussian: float) -> np.ndarray:
        bands = np.array([*self.bands, gaussian])
        return bands[np.where(self.codes >= 0, self.codes, len(self.bands))]


def tail_log10_p(
    codes: np.ndarray, tables: tuple[TailReference | None, ...], abs_z: np.ndarray
) -> np.ndarray:
    """:meth:`TailReference.log10_p` of each ``abs_z[i]`` by ``tables[codes[i]]`` (the
    normal tail where the code is -1 or the table ``None``), all tables in one pass.

    A live batch is judged by hundreds of tables: each costs one ``searchsorted`` here
    (the share of its past errors at least as large), the rest is computed for every
    reading at once with each table's constants gathered per reading. The arithmetic is
    :meth:`TailReference.log10_p`'s, operation for operation, so the result is the same
    to the last bit (a test pins it).
    """
    from iotlab.detect.calibration import gaussian_log10_p

    a = np.abs(np.asarray(abs_z, dtype=float))
    out = gaussian_log10_p(a)
    codes = np.asarray(codes, dtype=np.int64)
    usable = np.array([table is not None for table in tables] + [False])
    rows = np.flatnonzero(usable[codes])  # code -1 reads the trailing False
    if not rows.size:
        return out
    code, ar = codes[rows], a[rows]
    order = np.argsort(code, kind="stable")
    bounds = np.searchsorted(code[order], np.arange(len(tables) + 1)).tolist()
    seen_sorted = np.empty(rows.size, dtype=np.int64)
    ar_sorted = ar[order]
    constants = np.full((len(tables), 6), np.nan)
    for k, table in enumerate(tables):
        lo, hi = bounds[k], bounds[k + 1]
        if table is None or hi == lo:
            continue
        n = table.sorted_abs_z.size
        seen_sorted[lo:hi] = n - np.searchsorted(table.sorted_abs_z, ar_sorted[lo:hi], side="left")
        constants[k] = (
            table.allowance * n,
            math.log10(table.tail_share),
            table.threshold,
            table.tail_scale * _LN10,
            float(table.sorted_abs_z[-1]),
            math.log10(1.0 / (table.allowance * n)),
        )
    seen = np.empty(rows.size, dtype=np.int64)
    seen[order] = seen_sorted
    allowed, log_share, threshold, decay, largest, log_novel = constants[code].T
    with np.errstate(divide="ignore"):
        empirical = np.log10(seen / allowed)
    tail = log_share - (ar - threshold) / decay
    fitted = np.where(ar > threshold, tail, log_share)
    novel = log_novel - (ar - largest) / decay
    fitted = np.where(ar > largest, np.minimum(fitted, novel), fitted)
    judged = np.maximum.reduce([out[rows], fitted, empirical])
    judged = np.minimum(judged, 0.0)
    judged[np.isnan(ar)] = np.nan
    out[rows] = judged
    return out


class SegmentStack:
    """Many :class:`SegmentModel` expectations evaluated together: ``base(which, t)`` is
    ``models[which[i]].base(t[i])`` for every ``i`` in one vectorised pass.

    A live batch holds a few readings of each of hundreds of sensors, each judged by its
    own model; evaluating them model by model costs a few dozen small numpy calls per
    sensor. Here each model's constants (Prophet's trend and changepoints, Fourier
    coefficients, day profile) are gathered per reading instead, models that share a
    shape (changepoint count, seasonalities) in one group. The arithmetic is
    :meth:`SegmentModel.base`'s; only the Fourier dot products are summed by another
    routine, so results agree to floating-point rounding.
    """

    def __init__(self, models: list[SegmentModel]) -> None:
        self.models = models
        #: Where each model is, by ``id`` (the stack holds the models: ids stay theirs).
        self.slot = {id(m): i for i, m in enumerate(models)}
        curves = [m.curve for m in models]
        self.start = np.array([c.start_ns for c in curves], dtype=np.int64)
        self.hold = np.array([c.hold_ns for c in curves], dtype=np.int64)
        self.t_scale = np.array([c.t_scale_ns for c in curves], dtype=float)
        self.k = np.array([c.k for c in curves], dtype=float)
        self.m = np.array([c.m for c in curves], dtype=float)
        self.y_scale = np.array([c.y_scale for c in curves], dtype=float)
        self.floor = np.array([c.floor for c in curves], dtype=float)
        # Trend: models grouped by changepoint count, so each row sums as many terms
        # in the same order as the model's own evaluation.
        self.trend_group = np.array([len(c.changepoints_t) for c in curves], dtype=np.int64)
        self.changepoints: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        for count in np.unique(self.trend_group).tolist():
            members = np.flatnonzero(self.trend_group == count)
            slot = np.full(len(models), -1, dtype=np.int64)
            slot[members] = np.arange(len(members))
            cps = np.array([curves[i].changepoints_t for i in members], dtype=float)
            deltas = np.array([curves[i].deltas for i in members], dtype=float)
            self.changepoints[count] = (
                slot,
                cps.reshape(len(members), count),
                deltas.reshape(len(members), count),
            )
        # Seasonalities: models grouped by their (period, order) list.
        shapes: dict[tuple[tuple[float, int], ...], list[int]] = {}
        for i, curve in enumerate(curves):
            shapes.setdefault(curve.periods, []).append(i)
        self.season_group = np.empty(len(models), dtype=np.int64)
        self.seasons: list[tuple[tuple[tuple[float, int], ...], np.ndarray, np.ndarray]] = []
        for g, (periods, group) in enumerate(shapes.items()):
            self.season_group[group] = g
            slot = np.full(len(models), -1, dtype=np.int64)
            slot[group] = np.arange(len(group))
            columns = 2 * sum(order for _, order in periods)
            betas = np.array([curves[i].beta[:columns] for i in group], dtype=float)
            self.seasons.append((periods, slot, betas.reshape(len(group), columns)))
        # Day profiles: every model's week (with its wrap-around bins) laid end to end.
        profiles = [m.fitted.profile for m in models]
        self.has_profile = np.array([p is not None for p in profiles])
        self.phase = np.array([p.phase_ns if p else 0 for p in profiles], dtype=np.int64)
        self.bin = np.array([p.bin_ns if p else 1 for p in profiles], dtype=np.int64)
        self.n_bins = np.array([p.table.shape[1] if p else 0 for p in profiles], dtype=np.int64)
        weeks = [p.table.ravel() if p is not None else np.empty(0) for p in profiles]
        sizes = np.array([len(w) for w in weeks], dtype=np.int64)
        self.week_at = np.cumsum(sizes) - sizes
        self.weeks = np.concatenate(weeks) if weeks else np.empty(0)
        self.ahead = np.array([p.ahead if p else np.zeros(7) for p in profiles]).reshape(-1, 7)
        no_day = np.iinfo(np.int64).max
        self.last_day = np.array([p.last_day if p else no_day for p in profiles], dtype=np.int64)

    def base(self, which: np.ndarray, t_ns: np.ndarray) -> np.ndarray:
        """``models[which[i]].base(t_ns[i])`` for each reading ``i``."""
        t_ns = np.asarray(t_ns, dtype=np.int64)
        out = self._trend(which, np.minimum(t_ns, self.hold[which])) + self._seasonal(which, t_ns)
        with_profile = np.flatnonzero(self.has_profile[which])
        if with_profile.size:
            w, t = which[with_profile], t_ns[with_profile]
            # DayProfile.at, per reading's model: its own bin of its own day.
            t = t - self.phase[w] + self.bin[w] // 2
            slot = np.clip((t % DAY_NS) // self.bin[w], 0, self.n_bins[w] - 1)
            dow = day_of_week(t)
            profile = self.weeks[self.week_at[w] + dow * self.n_bins[w] + slot] + np.where(
                t // DAY_NS > self.last_day[w], self.ahead[w, dow], 0.0
            )
            out[with_profile] = out[with_profile] + profile
        return out

    def _trend(self, which: np.ndarray, t_ns: np.ndarray) -> np.ndarray:
        """:meth:`ProphetCurve.trend`, per reading's model."""
        t = (t_ns - self.start[which]) / self.t_scale[which]
        k_t, m_t = np.empty(len(t)), np.empty(len(t))
        groups = self.trend_group[which]
        for count, (slot, cps, deltas) in self.changepoints.items():
            rows = np.flatnonzero(groups == count) if len(self.changepoints) > 1 else slice(None)
            at = slot[which[rows]]
            cp = cps[at]
            deltas_t = (cp <= t[rows][:, None]) * deltas[at]
            k_t[rows] = deltas_t.sum(axis=1) + self.k[which[rows]]
            m_t[rows] = (deltas_t * -cp).sum(axis=1) + self.m[which[rows]]
        return (k_t * t + m_t) * self.y_scale[which] + self.floor[which]

    def _seasonal(self, which: np.ndarray, t_ns: np.ndarray) -> np.ndarray:
        """:meth:`ProphetCurve.seasonal`, per reading's model."""
        out = np.zeros(len(t_ns))
        x = 2.0 * np.pi * ((t_ns / 1e9) / _DAY_S)
        groups = self.season_group[which]
        for g, (periods, slot, betas) in enumerate(self.seasons):
            if not periods:
                continue
            rows = np.flatnonzero(groups == g) if len(self.seasons) > 1 else slice(None)
            beta = betas[slot[which[rows]]]
            xg = x[rows]
            part = np.zeros(len(xg))
            column = 0
            for period, order in periods:
                frequency = np.arange(1, order + 1) / period
                angle = frequency[None, :] * xg[:, None]
                features = np.empty((len(xg), 2 * order))
                features[:, 0::2] = np.sin(angle)
                features[:, 1::2] = np.cos(angle)
                part += np.einsum("ij,ij->i", features, beta[:, column : column + 2 * order])
                column += 2 * order
            out[rows] = part
        return out * self.y_scale[which]


class Judged(NamedTuple):
    """What :meth:`OnlineProphet.judge` found for each reading it was given."""

    expected: np.ndarray
    scale: np.ndarray
    width: np.ndarray
    model: np.ndarray  # index into ``models`` of the model that judged it; -1: none
    models: list[SegmentModel]
    repeat_log10_p: np.ndarray  # log10 p of each reading's run of repeats (0: none)


class _Buffer:
    """The trailing readings of a series (time, value, flagged), appended in amortised
    constant time; sorted by time. ``run_value``/``run_length``: the newest value and
    how many readings in a row have had it (a run may be older than what is held)."""

    def __init__(self) -> None:
        self.t = np.empty(0, dtype=np.int64)
        self.v = np.empty(0)
        self.flagged = np.empty(0, dtype=bool)
        self.lo = self.hi = 0
        self.run_value, self.run_length = math.nan, 0

    def positions(self, v: np.ndarray) -> np.ndarray:
        """:func:`run_positions` of finite values that would come next."""
        return run_positions(v, previous=self.run_value, previous_run=self.run_length)

    def view(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        held = slice(self.lo, self.hi)
        return self.t[held], self.v[held], self.flagged[held]

    def newest(self) -> int | None:
        return int(self.t[self.hi - 1]) if self.hi > self.lo else None

    def append(
        self,
        t: np.ndarray,
        v: np.ndarray,
        flagged: np.ndarray,
        *,
        positions: np.ndarray | None = None,
    ) -> None:
        """Append readings newer than those held (``positions``: their
        :meth:`positions`, when already known)."""
        k = len(t)
        if not k:
            return
        if self.hi + k > len(self.t):
            t0, v0, f0 = self.view()
            capacity = max(2 * (len(t0) + k), 64)
            self.t = np.empty(capacity, dtype=np.int64)
            self.v, self.flagged = np.empty(capacity), np.empty(capacity, dtype=bool)
            self.t[: len(t0)], self.v[: len(t0)], self.flagged[: len(t0)] = t0, v0, f0
            self.lo, self.hi = 0, len(t0)
        self.t[self.hi : self.hi + k], self.v[self.hi : self.hi + k] = t, v
        self.flagged[self.hi : self.hi + k] = flagged
        self.hi += k
        if positions is None:
            positions = self.positions(v)
        self.run_value, self.run_length = float(v[-1]), int(positions[-1])

    def insert(self, t: np.ndarray, v: np.ndarray, flagged: np.ndarray) -> None:
        """Merge out-of-order readings in; a reading at a time already held replaces it
        (a redelivered or corrected reading, as the store upserts it)."""
        t0, v0, f0 = self.view()
        keep = ~np.isin(t0, t)
        t1 = np.concatenate([t0[keep], t])
        order = np.argsort(t1, kind="stable")
        v1 = np.concatenate([v0[keep], v])[order]
        f1 = np.concatenate([f0[keep], flagged])[order]
        self.t, self.v, self.flagged = t1[order], v1, f1
        self.lo, self.hi = 0, len(t1)
        if len(t1) and self.t[-1] in t:  # the newest reading changed: count its run anew
            self.run_value, self.run_length = float(v1[-1]), int(run_positions(v1)[-1])

    def drop_before(self, t_ns: int, keep_last: int) -> None:
        t, _, _ = self.view()
        cut = min(int(np.searchsorted(t, t_ns, side="left")), max(len(t) - keep_last, 0))
        self.lo += cut


def trailing_median(
    t_ns: np.ndarray, values: np.ndarray, window_ns: int, *, rows: np.ndarray, min_count: int = 3
) -> np.ndarray:
    """Median of the finite ``values`` in ``[t - window, t)`` for the readings ``rows``
    (``t_ns`` sorted); 0 where fewer than ``min_count``. Equals pandas' time-based
    ``rolling(window, closed="left", min_periods=min_count).median()``."""
    ok = np.isfinite(values)
    t, v = t_ns[ok], values[ok]
    at = t_ns[rows]
    lo = np.searchsorted(t, at - window_ns, side="left")
    hi = np.searchsorted(t, at, side="left")
    count = hi - lo
    width = int(count.max()) if len(at) else 0
    if width >= min_count and width * len(at) > _MATRIX_CELLS:
        median = (
            pd.Series(values, index=pd.DatetimeIndex(t_ns))
            .rolling(pd.Timedelta(window_ns), closed="left", min_periods=min_count)
            .median()
            .to_numpy()[rows]
        )
        return np.nan_to_num(median, nan=0.0)
    return _medians_between(v, lo, hi, min_count)


def _medians_between(v: np.ndarray, lo: np.ndarray, hi: np.ndarray, min_count: int) -> np.ndarray:
    """The median of ``v[lo[i]:hi[i]]`` for each ``i``; 0 where fewer than ``min_count``.

    One sorted matrix of the windows, padded with ``inf``: no Python loop per window."""
    count = hi - lo
    out = np.zeros(len(lo))
    width = int(count.max()) if len(lo) else 0
    if width < min_count:
        return out
    cells = lo[:, None] + np.arange(width)[None, :]
    inside = cells < hi[:, None]
    matrix = np.where(inside, v[np.minimum(cells, max(len(v) - 1, 0))], np.inf)
    matrix.sort(axis=1)
    enough = count >= min_count
    c = count[enough]
    m = matrix[enough]
    upper = m[np.arange(len(c)), c // 2]
    lower = m[np.arange(len(c)), (c - 1) // 2]
    out[enough] = (upper + lower) / 2.0
    return out


class OnlineProphet:
    """The causal scoring state of one series (see the module docstring).

    Parameters
    ----------
    detector
        The detector whose model, scale floor and flag rule are used.
    refit_every, window, min_history
        As in :meth:`~iotlab.detect.base.Detector.score_online`.
    first_ns
        When the series started (epoch ns), if known; else its first finite reading.
    """

    def __init__(
        self,
        detector: ProphetResidualDetector,
        *,
        refit_every: pd.Timedelta,
        window: pd.Timedelta,
        min_history: pd.Timedelta,
        first_ns: int | None = None,
    ) -> None:
        self.detector = detector
        self.refit_every, self.window, self.min_history = refit_every, window, min_history
        self.first_ns = first_ns
        self.model: SegmentModel | None = None
        self.attempted = NO_MODEL  # the refit point last fitted (or tried) for
        self.previous: _Fitted | None = None
        self.oos: list[tuple[int, np.ndarray]] = []  # (refit point, residuals)
        self.buffer = _Buffer()
        self.refits = 0
        # (model, times, expectations) of the last batch's tail, for the next's context.
        self._bases: tuple[SegmentModel, np.ndarray, np.ndarray] | None = None

    # -- history --------------------------------------------------------------------------
    def remember(self, t_ns: np.ndarray, values: np.ndarray) -> None:
        """Take earlier readings (sorted, before any judged one) as history, unflagged."""
        ok = np.isfinite(values)
        t_ns, values = np.asarray(t_ns, dtype=np.int64)[ok], np.asarray(values, dtype=float)[ok]
        if len(t_ns) and self.first_ns is None:
            self.first_ns = int(t_ns[0])
        self.buffer.append(t_ns, values, np.zeros(len(t_ns), dtype=bool))

    def points(self, t_ns: np.ndarray) -> np.ndarray:
        """:func:`judging_refit` of readings at ``t_ns`` for this series."""
        if self.first_ns is None:
            return np.full(len(t_ns), NO_MODEL, dtype=np.int64)
        return judging_refit(
            t_ns,
            first_ns=self.first_ns,
            refit_every=self.refit_every,
            min_history=self.min_history,
        )

    def needs_refit(self, t_ns: np.ndarray) -> bool:
        """Whether judging readings at ``t_ns`` (sorted) would fit a model."""
        if not len(t_ns):
            return False
        # Refit points grow with time: the newest reading's is the largest.
        return int(self.points(np.asarray(t_ns[-1:], dtype=np.int64))[0]) > self.attempted

    # -- refits ---------------------------------------------------------------------------
    def refit(self, point: int) -> SegmentModel | None:
        """Fit the model that judges readings from refit point ``point`` on: trained on
        the unflagged readings of ``[point - window, point)``, its scale and tail from
        the out-of-sample errors of that window (or a holdout until there are enough)."""
        det = self.detector
        self.attempted = point
        self.model = None
        t, v, flagged = self.buffer.view()
        inside = (t >= point - self.window.value) & (t < point) & ~flagged
        if inside.sum() < _MIN_TRAIN_POINTS:
            return None  # a long outage: nothing to forecast from
        train = pd.DataFrame({"ts": _as_utc(t[inside]), "value": v[inside]})
        train_values = train["value"].to_numpy()
        floor = det._floor(train_values)
        oldest = point - self.window.value
        self.oos = [entry for entry in self.oos if entry[0] >= oldest]
        residuals = np.concatenate([r for _, r in self.oos] or [np.empty(0)])
        # The tail is judged in units of the new scale: errors measured against an older
        # scale (a quantised series' floor can change by a factor of 500 from one day
        # to the next) would make an ordinary error look like a new extreme.
        if residuals.size >= _MIN_OOS_RESIDUALS:
            self.previous, _ = det._learn(train, train["ts"].iloc[:0], self.previous)
            scale = max(robust_scale(residuals), floor)
            reference_z = [residuals / scale]
        else:
            self.previous, scale, held_z = det._fit_with_holdout(train, floor, self.previous)
            reference_z = [residuals / scale, held_z]
        table = TailReference.learn(np.concatenate(reference_z))
        at_threshold = -det.calibration.score_threshold(det.threshold)
        band = (
            table.abs_z_at(at_threshold)
            if table is not None
            else det.calibration.z_threshold(det.threshold)
        )
        self.model = SegmentModel(
            refit_at=point,
            fitted=self.previous,
            curve=det._curve(self.previous.model),
            scale=scale,
            width=det._width(train_values),
            local_window=det._local_window(train["ts"]),
            table=table,
            band_z=float(band),
            repeats=RepeatRule.learn(t[inside], v[inside]),
        )
        self.refits += 1
        self.buffer.drop_before(oldest, keep_last=_STALE_READINGS)
        return self.model

    # -- scoring --------------------------------------------------------------------------
    def judge(self, t_ns: np.ndarray, values: np.ndarray, *, refit: bool = True) -> Judged:
        """Score readings (sorted by time) and remember them.

        Readings newer than everything seen are judged in time order, each by the
        model of its :func:`judging_refit` point (fitted on the way when ``refit``;
        without it the model in hand judges, however old, and the refit waits for a
        later call). A reading not newer than the newest one seen (late, redelivered)
        is judged by the model in hand and merged into the history. ``model == -1``:
        no model (too early, or nothing to fit on): NaN expectation.
        """
        t_ns = np.asarray(t_ns, dtype=np.int64)
        values = np.asarray(values, dtype=float)
        n = len(t_ns)
        expected, scale, width = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
        repeat = np.zeros(n)
        out = (expected, scale, width, repeat)
        used = np.full(n, -1, dtype=np.int64)
        models: list[SegmentModel] = []
        newest = self.buffer.newest()
        late = t_ns <= newest if newest is not None else np.zeros(n, dtype=bool)
        if self.first_ns is None and np.isfinite(values).any():
            self.first_ns = int(t_ns[np.isfinite(values)][0])
        if late.any() and self.model is not None:
            rows = np.flatnonzero(late)
            models.append(self.model)
            self._score(self.model, rows, t_ns, values, out, insert=True)
            used[rows] = 0
        fresh = np.flatnonzero(~late)
        points = self.points(t_ns[fresh])
        cuts = np.flatnonzero(np.diff(points)) + 1
        starts: np.ndarray | list[int] = points[np.r_[0, cuts]] if len(fresh) else []
        for group, point in zip(np.split(fresh, cuts), starts):
            point = int(point)
            model = None
            if point != NO_MODEL:
                if refit and point > self.attempted:
                    self.refit(point)
                model = self.model
            if model is None:
                self._keep(group, t_ns, values, np.zeros(len(group), dtype=bool))
                continue
            if not models or models[-1] is not model:
                models.append(model)
            self._score(model, group, t_ns, values, out, point=point)
            used[group] = len(models) - 1
        return Judged(expected, scale, width, used, models, repeat)

    def _score(
        self,
        model: SegmentModel,
        rows: np.ndarray,
        t_ns: np.ndarray,
        values: np.ndarray,
        out: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
        *,
        point: int | None = None,
        insert: bool = False,
    ) -> None:
        """Judge ``rows`` (one group, sorted) with ``model``; remember them. ``out``:
        the expectation, scale, width and repeat ``log10 p`` arrays to fill at ``rows``."""
        expected, scale, width, repeat = out
        bt, bv, _ = self.buffer.view()
        window = model.local_window
        lookback = window.value if window is not None else 0
        t, v = t_ns[rows], values[rows]
        # The local correction looks back over earlier readings, whose residuals are
        # taken against this model too (another model's level would leak in).
        first = int(np.searchsorted(bt, t[0] - lookback, side="left"))
        span_t = np.concatenate([bt[first:], t])
        span_v = np.concatenate([bv[first:], v])
        own = np.arange(len(bt) - first, len(span_t))
        if insert:  # late readings interleave with what was seen: sort them in
            # A reading seen before at the same time is replaced, not counted twice.
            seen = np.flatnonzero(~np.isin(bt[first:], t))
            span_t = np.concatenate([bt[first:][seen], t])
            span_v = np.concatenate([bv[first:][seen], v])
            order = np.argsort(span_t, kind="stable")
            span_t, span_v = span_t[order], span_v[order]
            own = np.flatnonzero(order >= len(seen))
            own = own[np.argsort(order[own], kind="stable")]
            base = model.base(span_t)
            self._bases = None
        else:
            base = np.concatenate([self._context_base(model, bt[first:]), model.base(t)])
            # The next batch's context is this one's tail: keep its expectation.
            keep = int(np.searchsorted(span_t, span_t[-1] - lookback, side="left"))
            self._bases = (model, span_t[keep:], base[keep:])
        correction = np.zeros(len(own))
        if window is not None:
            correction = trailing_median(span_t, span_v - base, window.value, rows=own)
        exp = base[own] + correction
        finite = np.isfinite(v)
        stale = np.ones(len(rows))
        if not insert and finite.any():
            prior = bt[max(len(bt) - _STALE_READINGS, 0) :]
            both = np.concatenate([prior, t[finite]])
            factor = _staleness(both, np.ones(len(both), dtype=bool), window, _STALE_READINGS)
            stale[finite] = factor[len(prior) :]
        expected[rows], scale[rows], width[rows] = exp, model.scale * stale, model.width
        residual = v - exp
        z = residual[finite] / scale[rows][finite]
        # A late reading's place in a run is not known: only fresh ones are judged on it.
        runs = np.zeros(int(finite.sum()))
        if not insert:
            runs = model.repeats.log10_p(self.buffer.positions(v[finite]))
        repeat[rows[finite]] = runs
        flagged = np.zeros(len(rows), dtype=bool)
        flagged[finite] = self.detector._is_anomaly(z, model.table, runs)
        if point is not None:  # a late reading's error is not a forecast's: not a reference
            self.oos.append((point, residual[finite]))
        if insert:
            self.buffer.insert(t[finite], v[finite], flagged[finite])
        else:
            self._keep(rows, t_ns, values, flagged)

    def _context_base(self, model: SegmentModel, t: np.ndarray) -> np.ndarray:
        """``model.base(t)`` for readings of the previous batch's tail, from the values
        computed then when the same model judged them (else computed now)."""
        held = self._held_base(model, t)
        return held if held is not None else model.base(t)

    def _held_base(self, model: SegmentModel, t: np.ndarray) -> np.ndarray | None:
        """``model.base(t)`` as kept from the previous batch, or ``None`` if not kept."""
        if self._bases is not None and self._bases[0] is model and len(t):
            _, held_t, held = self._bases
            at = np.minimum(np.searchsorted(held_t, t), max(len(held_t) - 1, 0))
            if len(held_t) and (held_t[at] == t).all():
                return held[at]
        return None

    def keep_unjudged(self, t_ns: np.ndarray, values: np.ndarray) -> bool:
        """Remember readings that no model can judge yet, if that is all :meth:`judge`
        would do with them: the series has begun, has no model, none of the readings is
        old enough for one (:func:`judging_refit` is ``NO_MODEL``) and all are newer than
        what was seen. Returns whether it did (else call :meth:`judge`).

        A sensor in its first ``min_history`` is judged by the rolling z-score alone;
        this spares it the whole of :meth:`judge` at every batch.
        """
        t_ns = np.asarray(t_ns, dtype=np.int64)
        newest = self.buffer.newest()
        if (
            self.model is not None
            or self.first_ns is None
            or not len(t_ns)
            or (newest is not None and int(t_ns[0]) <= newest)
            or int(self.points(t_ns[-1:])[0]) != NO_MODEL  # points grow with time
        ):
            return False
        values = np.asarray(values, dtype=float)
        self._keep(np.arange(len(t_ns)), t_ns, values, np.zeros(len(t_ns), dtype=bool))
        return True

    def _keep(self, rows: np.ndarray, t_ns: np.ndarray, values: np.ndarray, flagged) -> None:
        ok = np.isfinite(values[rows])
        self.buffer.append(t_ns[rows][ok], values[rows][ok], np.asarray(flagged)[ok])
        self._trim()

    def _trim(self) -> None:
        if self.attempted != NO_MODEL and self.buffer.hi - self.buffer.lo > 4096:
            # Beyond the window no refit looks: keep memory to what the next one reads.
            self.buffer.drop_before(self.attempted - self.window.value, keep_last=_STALE_READINGS)

    def references(self, judged: Judged) -> SegmentReferences:
        """The tail references ``judged`` readings are scored by."""
        tables = tuple(m.table for m in judged.models)
        return SegmentReferences(judged.model, tables, tuple(m.band_z for m in judged.models))


def batch_points(engines: list[OnlineProphet], counts: np.ndarray, t_ns: np.ndarray) -> np.ndarray:
    """:meth:`OnlineProphet.points` of a batch sorted by series: ``engines[i]``'s
    readings are the next ``counts[i]`` of ``t_ns``. The engines share ``refit_every``
    and ``min_history`` (those of the live scorer)."""
    if not engines:
        return np.empty(0, dtype=np.int64)
    known = np.array([e.first_ns is not None for e in engines])
    first = np.array([e.first_ns if e.first_ns is not None else 0 for e in engines], np.int64)
    points = judging_refit(
        t_ns,
        first_ns=np.repeat(first, counts),  # type: ignore[arg-type]
        refit_every=engines[0].refit_every,
        min_history=engines[0].min_history,
    )
    return np.where(np.repeat(known, counts), points, NO_MODEL)


def fresh_series(
    engines: list[OnlineProphet],
    counts: np.ndarray,
    t_ns: np.ndarray,
    values: np.ndarray,
    points: np.ndarray,
    refit: np.ndarray,
) -> np.ndarray:
    """Which series :func:`judge_fresh` judges as :meth:`OnlineProphet.judge` would
    (batch as in :func:`batch_points`; ``refit[i]``: whether ``engines[i]`` may refit).

    Those whose readings all are finite and newer than everything the engine has seen,
    that a model in hand judges (no refit due, or none allowed), none of them after a
    silence longer than the local window (whose wider scale :meth:`OnlineProphet._score`
    works out): the usual case for every live sensor between its refits.
    """
    n = len(engines)
    ok = np.zeros(n, dtype=bool)
    if not n:
        return ok
    starts = np.cumsum(counts) - counts
    ends = starts + counts - 1
    newest = np.zeros(n, dtype=np.int64)
    window = np.full(n, -1, dtype=np.int64)  # -1: no local window, no silence to mind
    for i, engine in enumerate(engines):
        model, buffer = engine.model, engine.buffer
        if model is None or engine.first_ns is None or buffer.hi == buffer.lo:
            continue
        prior = buffer.t[max(buffer.hi - _STALE_READINGS, buffer.lo) : buffer.hi].tolist()
        newest[i] = prior[-1]
        if model.local_window is not None:
            window[i] = model.local_window.value
            if any(b - a > window[i] for a, b in zip(prior, prior[1:])):
                continue
        ok[i] = True
    first_t = t_ns[starts]
    ok &= first_t > newest
    ok &= points[starts] != NO_MODEL
    ok &= ~(refit & (points[ends] > np.array([e.attempted for e in engines], dtype=np.int64)))
    ok &= np.add.reduceat(~np.isfinite(values), starts) == 0
    # A silence before the first reading, or between two of them.
    series = np.repeat(np.arange(n), counts)
    gap = np.diff(t_ns, prepend=0)
    gap[starts] = first_t - newest
    silent = (window[series] >= 0) & (gap > window[series])
    ok &= np.bincount(series[silent], minlength=n) == 0
    return ok


def judge_fresh(
    engines: list[OnlineProphet],
    spans: list[tuple[int, int]],
    t_ns: np.ndarray,
    values: np.ndarray,
    points: list[int | np.ndarray],
    stack: SegmentStack,
    slots: np.ndarray,
) -> Judged:
    """:meth:`OnlineProphet.judge` of many series' readings at once, each
    ``engines[i]`` judging ``t_ns[lo:hi]`` for ``(lo, hi) = spans[i]`` (sorted; each
    accepted by :meth:`OnlineProphet.fresh_model`; ``points[i]``: the refit point of
    its readings, or one per reading where they span several).

    Every step of :meth:`OnlineProphet._score` runs once over all the readings instead
    of once per series: the expectations (``stack``, where ``stack.models[slots[i]]`` is
    ``engines[i].model``), the local level corrections (one window matrix over all the
    series, keyed by series then time), the tail p-values and flags; then each engine
    remembers its readings, errors and expectations as :meth:`judge` would. The result
    covers the readings of ``spans`` in their order; ``model`` indexes ``engines``.
    """
    detector = engines[0].detector  # the live scorer's engines share one calibration
    models = [engine.model for engine in engines]
    lookback = np.array(
        [m.local_window.value if m.local_window is not None else 0 for m in models],  # type: ignore[union-attr]
        dtype=np.int64,
    )
    span_t: list[np.ndarray] = []
    span_v: list[np.ndarray] = []
    span_base: list[np.ndarray] = []
    context = np.empty(len(engines), dtype=np.int64)
    held = np.zeros(len(engines), dtype=bool)
    run_parts: list[np.ndarray] = []  # each reading's place in its run of repeats
    for i, (engine, (lo, hi)) in enumerate(zip(engines, spans)):
        run_parts.append(engine.buffer.positions(values[lo:hi]))
        bt, bv, _ = engine.buffer.view()
        # The local correction looks back over earlier readings (see _score).
        first = int(np.searchsorted(bt, t_ns[lo] - lookback[i], side="left"))
        kept = engine._held_base(models[i], bt[first:])  # type: ignore[arg-type]
        context[i] = len(bt) - first
        held[i] = kept is not None or context[i] == 0
        span_t += [bt[first:], t_ns[lo:hi]]
        span_v += [bv[first:], values[lo:hi]]
        span_base += [kept if kept is not None else np.empty(context[i]), np.empty(hi - lo)]
    sizes = np.array([hi - lo for lo, hi in spans], dtype=np.int64)
    t_all, v_all, base = np.concatenate(span_t), np.concatenate(span_v), np.concatenate(span_base)
    length = context + sizes
    starts = np.cumsum(length) - length
    series = np.repeat(np.arange(len(engines)), length)
    own = np.arange(len(t_all)) - starts[series] >= context[series]
    todo = own | ~held[series]
    base[todo] = stack.base(slots[series[todo]], t_all[todo])
    residual_all = v_all - base
    # Local corrections: windows of each series' own earlier readings, found in one
    # search over (series, time) keys.
    rows = np.flatnonzero(own)
    at = series[rows]
    t0 = int(t_all.min())
    stride = int(t_all.max()) - t0 + int(lookback.max()) + 1
    # (A non-finite expectation, never expected, leaves its reading out of the windows,
    # as trailing_median does: series by series then.)
    if len(engines) * stride < 2**62 and np.isfinite(residual_all).all():
        key = (t_all - t0) + series * stride
        since = np.searchsorted(key, key[rows] - lookback[at], side="left")
        until = np.searchsorted(key, key[rows], side="left")
        correction = np.zeros(len(rows))
        width = int((until - since).max()) if len(rows) else 0
        chunk = max(1, _MATRIX_CELLS // max(width, 1))
        for c in range(0, len(rows), chunk):
            part = slice(c, c + chunk)
            correction[part] = _medians_between(residual_all, since[part], until[part], 3)
        ends = starts + length - 1
        keep = np.searchsorted(key, key[ends] - lookback, side="left")
    else:  # a span too wide for one key space: series by series
        correction = np.concatenate(
            [
                trailing_median(t_all[a : a + n], residual_all[a : a + n], w, rows=np.arange(c, n))
                for a, n, c, w in zip(starts, length, context, lookback)
            ]
        )
        keep = np.array(
            [
                a + int(np.searchsorted(t_all[a : a + n], t_all[a + n - 1] - w, side="left"))
                for a, n, w in zip(starts, length, lookback)
            ],
            dtype=np.int64,
        )
    expected = base[rows] + correction
    scale = np.array([m.scale for m in models])[at]  # type: ignore[union-attr]
    width_all = np.array([m.width for m in models])[at]  # type: ignore[union-attr]
    value = v_all[rows]
    residual = value - expected
    z = residual / scale
    abs_z = np.abs(z)
    log10_p = tail_log10_p(at, tuple(m.table for m in models), abs_z)  # type: ignore[union-attr]
    run_at = np.concatenate(run_parts)
    repeat = runs_log10_p([m.repeats for m in models], at, run_at)  # type: ignore[union-attr]
    log10_p = log10_p + repeat
    score = detector.calibration.score_from_log10_p(log10_p, abs_z)
    flagged = detector.calibration.confidence_from_score(score) > detector.threshold
    # Each engine remembers, as _score and _keep do.
    own_at = np.cumsum(sizes) - sizes
    for i, engine in enumerate(engines):
        a, b = int(own_at[i]), int(own_at[i] + sizes[i])
        group = points[i]
        if isinstance(group, int):
            engine.oos.append((group, residual[a:b]))
        else:  # a batch across refit points judged by the model in hand (no refit allowed)
            cuts = (np.flatnonzero(np.diff(group)) + 1).tolist()
            for c0, c1 in zip([0, *cuts], [*cuts, b - a]):
                engine.oos.append((int(group[c0]), residual[a + c0 : a + c1]))
        end = int(starts[i] + length[i])
        engine._bases = (models[i], t_all[keep[i] : end], base[keep[i] : end])  # type: ignore[assignment]
        engine.buffer.append(
            t_all[end - sizes[i] : end], value[a:b], flagged[a:b], positions=run_at[a:b]
        )
        engine._trim()
    codes = np.repeat(np.arange(len(engines)), sizes)
    return Judged(expected, scale, width_all, codes, models, repeat)  # type: ignore[arg-type]


def _as_utc(t_ns: np.ndarray) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(np.asarray(t_ns, dtype=np.int64).astype("datetime64[ns]")).tz_localize(
        "UTC"
    )
