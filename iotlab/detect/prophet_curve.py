"""A fitted Prophet model's forecast as plain arrays, evaluated without pandas.

``Prophet.predict`` builds a DataFrame, its seasonal feature matrix and every component
column for each call: a few milliseconds however few the timestamps. The live scorer
asks for the forecast of a handful of readings per sensor per batch, for hundreds of
sensors, so it evaluates the same sums directly: Prophet's piecewise-linear trend (held
flat beyond a horizon after the training data, see
:meth:`ProphetResidualDetector._forecast`) plus its additive Fourier seasonalities.
:meth:`ProphetCurve.at` equals ``predict(...)["yhat"]`` to floating-point rounding (a
test pins it), so offline and live scoring share one forecast.

Examples
--------
>>> import numpy as np, pandas as pd
>>> from iotlab.detect._quiet import fit_quietly, import_prophet
>>> ds = pd.date_range("2026-01-01", periods=96, freq="1h")
>>> y = np.sin(2 * np.pi * ds.hour / 24) + 0.01 * np.arange(96)
>>> history = pd.DataFrame({"ds": ds, "y": y})
>>> model = fit_quietly(import_prophet()(daily_seasonality=3, weekly_seasonality=False,
...     yearly_seasonality=False, uncertainty_samples=0), history)
>>> at = pd.date_range("2026-01-05", periods=5, freq="7h")
>>> curve = ProphetCurve.from_model(model, hold_after=pd.Timedelta("10D"))
>>> want = model.predict(pd.DataFrame({"ds": at}))["yhat"].to_numpy()
>>> bool(np.allclose(curve.at(at.as_unit("ns").asi8), want, rtol=1e-9, atol=1e-12))
True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["ProphetCurve"]

_DAY_S = 86_400.0


@dataclass(frozen=True)
class ProphetCurve:
    """Trend and additive seasonalities of one fitted Prophet model (see the module
    docstring). Times are epoch nanoseconds, UTC (Prophet's naive ``ds`` are UTC here)."""

    start_ns: int
    t_scale_ns: float
    k: float
    m: float
    deltas: np.ndarray
    changepoints_t: np.ndarray
    y_scale: float
    floor: float
    periods: tuple[tuple[float, int], ...]  # (period in days, Fourier order) per seasonality
    beta: np.ndarray  # their coefficients, in Prophet's column order
    hold_ns: int  # the trend is held flat after this time

    @classmethod
    def from_model(cls, model: Any, *, hold_after: pd.Timedelta) -> ProphetCurve:
        """The curve of a fitted linear-growth model with additive seasonalities only;
        its trend is held at its value ``hold_after`` past the last training time."""
        if model.growth != "linear" or model.extra_regressors or model.holidays is not None:
            raise ValueError("only linear growth without regressors or holidays is supported")
        periods = []
        for props in model.seasonalities.values():
            if props["mode"] != "additive" or props["condition_name"] is not None:
                raise ValueError("only unconditional additive seasonalities are supported")
            periods.append((float(props["period"]), int(props["fourier_order"])))
        params = model.params
        last = pd.Timestamp(model.history["ds"].max()) + hold_after
        return cls(
            start_ns=int(pd.Timestamp(model.start).as_unit("ns").value),
            t_scale_ns=float(pd.Timedelta(model.t_scale).value),
            k=float(np.nanmean(params["k"])),
            m=float(np.nanmean(params["m"])),
            deltas=np.nanmean(params["delta"], axis=0),
            changepoints_t=np.asarray(model.changepoints_t, dtype=float),
            y_scale=float(model.y_scale),
            floor=float(model.y_min) if model.scaling == "minmax" else 0.0,
            periods=tuple(periods),
            beta=np.nanmean(params["beta"], axis=0)[: 2 * sum(order for _, order in periods)],
            hold_ns=int(last.as_unit("ns").value),
        )

    def trend(self, t_ns: np.ndarray) -> np.ndarray:
        """Prophet's trend at ``t_ns`` (``piecewise_linear``, unscaled)."""
        t = (np.asarray(t_ns, dtype=np.int64) - self.start_ns) / self.t_scale_ns
        deltas_t = (self.changepoints_t[None, :] <= t[:, None]) * self.deltas
        k_t = deltas_t.sum(axis=1) + self.k
        m_t = (deltas_t * -self.changepoints_t).sum(axis=1) + self.m
        return (k_t * t + m_t) * self.y_scale + self.floor

    def seasonal(self, t_ns: np.ndarray) -> np.ndarray:
        """The additive seasonal terms at ``t_ns`` (``fourier_series`` times ``beta``)."""
        t_ns = np.asarray(t_ns, dtype=np.int64)
        out = np.zeros(t_ns.size)
        if not self.periods:
            return out
        x = 2.0 * np.pi * ((t_ns / 1e9) / _DAY_S)
        column = 0
        for period, order in self.periods:
            frequency = np.arange(1, order + 1) / period
            angle = frequency[None, :] * x[:, None]
            features = np.empty((t_ns.size, 2 * order))
            features[:, 0::2] = np.sin(angle)
            features[:, 1::2] = np.cos(angle)
            out += features @ self.beta[column : column + 2 * order]
            column += 2 * order
        return out * self.y_scale

    def at(self, t_ns: np.ndarray) -> np.ndarray:
        """``yhat`` at ``t_ns``, the trend held flat after ``hold_ns``."""
        t_ns = np.asarray(t_ns, dtype=np.int64)
        return self.trend(np.minimum(t_ns, self.hold_ns)) + self.seasonal(t_ns)
