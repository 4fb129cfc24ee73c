"""From residuals to numbers a person can read: robust scale, score and confidence.

Two numbers come out of a residual ``r`` and its out-of-sample scale ``s``
(``z = r / s``):

``score``
    The two-sided tail probability ``P(|Z| < |z|)`` of a clean residual, with ``Z``
    standard normal: how unusual the reading is. On clean data it is uniform, so
    about 1% of clean readings score above 0.99 and 10% above 0.9. Useful for
    ranking, but a threshold on it flags a fixed share of *clean* readings
    (``score > 0.8`` would flag one clean reading in five).
``confidence``
    The probability that the reading is anomalous given its residual, under a
    two-component model: clean residuals ``N(0, s^2)`` with prior weight
    ``1 - prior``, anomalous ones ``N(0, (anomaly_scale * s)^2)`` with prior weight
    ``prior``. This is the number the flag rule ``confidence > threshold`` uses, so
    a threshold of 0.8 means "at least 80% sure", and with the defaults it flags a
    clean reading only beyond about 4.6 robust standard deviations.

Examples
--------
>>> import numpy as np
>>> cal = Calibration()
>>> cal.score(np.array([0.0, 2.5758])).round(3).tolist()
[0.0, 0.99]
>>> round(cal.z_threshold(0.8), 2)
4.63
>>> bool(cal.confidence(np.array([cal.z_threshold(0.8)]))[0].round(6) == 0.8)
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["MAD_TO_SIGMA", "Calibration", "robust_scale", "scale_floor"]

#: 1 / Phi^-1(3/4): turns a median absolute deviation into a normal standard deviation.
MAD_TO_SIGMA = 1.4826

_erf = np.frompyfunc(math.erf, 1, 1)


def robust_scale(residuals: np.ndarray) -> float:
    """``1.4826 * MAD`` of the finite ``residuals`` (NaN if there are none).

    Examples
    --------
    >>> robust_scale(np.array([-1.0, 0.0, 1.0, 100.0]))
    1.4826
    """
    finite = np.asarray(residuals, dtype=float)
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        return float("nan")
    return float(MAD_TO_SIGMA * np.median(np.abs(finite - np.median(finite))))


def scale_floor(values: np.ndarray, width: float) -> float:
    """The smallest residual scale a detector will use.

    A constant or quantised signal has a zero MAD, which would turn every change
    into an infinitely improbable one; the floor is a thousandth of the sensor's
    range (or of the data's robust range), and never below a millionth of the level.

    Examples
    --------
    >>> float(f"{scale_floor(np.array([5.0, 5.0]), width=0.0):.3g}")
    5e-06
    >>> scale_floor(np.array([5.0, 6.0]), width=100.0)
    0.1
    """
    finite = np.asarray(values, dtype=float)
    finite = finite[np.isfinite(finite)]
    level = float(np.median(np.abs(finite))) if finite.size else 1.0
    return max(1e-3 * float(width), 1e-6 * max(level, 1.0))


@dataclass(frozen=True)
class Calibration:
    """How robust z-scores become ``score`` and ``confidence`` (see the module docstring).

    Parameters
    ----------
    prior
        Prior share of anomalous readings. Lower means fewer, surer alerts.
    anomaly_scale
        Typical size of an anomalous residual, in robust standard deviations.
    """

    prior: float = 1e-3
    anomaly_scale: float = 10.0

    def __post_init__(self) -> None:
        if not 0.0 < self.prior < 1.0:
            raise ValueError(f"prior must be in (0, 1), got {self.prior}")
        if self.anomaly_scale <= 1.0:
            raise ValueError(f"anomaly_scale must be > 1, got {self.anomaly_scale}")

    def score(self, z: np.ndarray) -> np.ndarray:
        """Two-sided normal tail probability ``P(|Z| < |z|)``; NaN stays NaN."""
        z = np.asarray(z, dtype=float)
        out = np.full(z.shape, np.nan)
        ok = np.isfinite(z)
        out[ok] = _erf(np.abs(z[ok]) / math.sqrt(2.0)).astype(float)
        out[np.isinf(z)] = 1.0
        return out

    def _log_prior_odds(self) -> float:
        return math.log(self.prior / (1.0 - self.prior)) - math.log(self.anomaly_scale)

    def confidence(self, z: np.ndarray) -> np.ndarray:
        """Posterior probability of "anomalous" given the robust z-score; NaN stays NaN."""
        z = np.asarray(z, dtype=float)
        shrink = 1.0 - 1.0 / self.anomaly_scale**2
        with np.errstate(over="ignore", invalid="ignore"):
            log_odds = self._log_prior_odds() + 0.5 * shrink * np.square(z)
            out = 1.0 / (1.0 + np.exp(-log_odds))
        out[np.isinf(z)] = 1.0
        return out

    def z_threshold(self, threshold: float) -> float:
        """The ``|z|`` at which ``confidence`` equals ``threshold``."""
        if not 0.0 < threshold < 1.0:
            raise ValueError(f"threshold must be in (0, 1), got {threshold}")
        shrink = 1.0 - 1.0 / self.anomaly_scale**2
        need = math.log(threshold / (1.0 - threshold)) - self._log_prior_odds()
        return math.sqrt(max(need, 0.0) * 2.0 / shrink)
