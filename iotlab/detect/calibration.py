"""From residuals to numbers a person can read: robust scale, score and confidence.

A residual ``r`` with out-of-sample scale ``s`` gives ``z = r / s``. Its *p-value*
``p`` is how often an error at least as large happens when nothing is wrong: the
two-sided normal tail of ``z``, or, when a detector knows the distribution of its own
out-of-sample errors (:mod:`iotlab.detect.reference`), the larger of that and the
empirical tail, so a detector whose errors are heavy-tailed (bursty counts, steps,
quantised values) is not surprised by errors it makes every day. Two numbers come out
of ``p``:

``score``
    ``-log10(p)``: 2 means "one clean reading in a hundred is this far off", 6 "one in a
    million". Unbounded and strictly increasing in ``|z|`` (ties are broken by ``|z|``),
    so it ranks anomalies however extreme; this is the number to sort by.
``confidence``
    The probability that the reading is anomalous, on a logistic calibration curve in
    log-score: ``log-odds = steepness * ln(score / midpoint)``. With the defaults a
    score of 4 (p = 1e-4) is a 50% case, the default flag threshold 0.8 is reached at a
    score of 5.7 (p = 2e-6, 4.7 sds under a normal tail) and 0.99 at 12.6. It
    approaches 1 only as fast as a power of the score, so strong anomalies stay apart
    from weaker ones instead of all reading 1.0.

Examples
--------
>>> import numpy as np
>>> cal = Calibration()
>>> cal.score(np.array([0.0, 2.5758, 40.0])).round(2).tolist()
[0.0, 2.0, 349.14]
>>> round(cal.z_threshold(0.8), 2)
4.73
>>> float(cal.confidence(np.array([cal.z_threshold(0.8)]))[0].round(6))
0.8
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

__all__ = [
    "MAD_TO_SIGMA",
    "Calibration",
    "gaussian_log10_p",
    "resolution",
    "robust_scale",
    "scale_floor",
]

#: 1 / Phi^-1(3/4): turns a median absolute deviation into a normal standard deviation.
MAD_TO_SIGMA = 1.4826

_LN10 = math.log(10.0)
#: Weight of ``|z|`` in the score's tie-break: far below any difference that matters.
_TIE_BREAK = 1e-9


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
    range (or of the data's robust range), never below a millionth of the level, and
    never below half the data's resolution (see :func:`resolution`): a sensor that
    reports whole numbers cannot be expected closer than that, and its usual one-step
    jumps are then two sds, not a million.

    Examples
    --------
    >>> float(f"{scale_floor(np.array([5.0, 5.0]), width=0.0):.3g}")
    5e-06
    >>> scale_floor(np.array([5.0, 6.0]), width=100.0)
    0.1
    >>> scale_floor(np.array([2.0, 2.0, 3.0, 2.0] * 10), width=1.0)  # steps of 1
    0.5
    """
    finite = np.asarray(values, dtype=float)
    finite = finite[np.isfinite(finite)]
    level = float(np.median(np.abs(finite))) if finite.size else 1.0
    return max(1e-3 * float(width), 1e-6 * max(level, 1.0), 0.5 * resolution(finite))


def resolution(values: np.ndarray) -> float:
    """The data's quantisation step: the smallest change between consecutive readings
    that happens at least 5 times and in 0.5% of them (0 when there is none).

    One jump of a constant sensor is not a resolution (it is what a detector is for);
    a count that moves by whole numbers every hour is.

    Examples
    --------
    >>> resolution(np.array([2.0, 2.0, 3.0, 2.0] * 10))
    1.0
    >>> resolution(np.array([7.0] * 99 + [8.0]))
    0.0
    """
    finite = np.asarray(values, dtype=float)
    finite = finite[np.isfinite(finite)]
    steps = np.abs(np.diff(finite))
    steps = np.round(steps[steps > 0], 9)
    if steps.size == 0:
        return 0.0
    sizes, counts = np.unique(steps, return_counts=True)
    common = sizes[counts >= max(5, 0.005 * finite.size)]
    return float(common.min()) if common.size else 0.0


_erfc = np.frompyfunc(math.erfc, 1, 1)


def gaussian_log10_p(abs_z: np.ndarray) -> np.ndarray:
    """``log10`` of the two-sided normal tail ``P(|Z| >= |z|)``, exact far into the tail.

    ``erfc`` underflows past ``|z|`` of about 38; beyond 20 its asymptotic series is
    used instead, so the score keeps growing rather than becoming infinite.

    Examples
    --------
    >>> gaussian_log10_p(np.array([0.0, 1.959964, 50.0])).round(3).tolist()
    [0.0, -1.301, -544.665]
    """
    a = np.abs(np.asarray(abs_z, dtype=float))
    out = np.full(a.shape, np.nan)
    near = np.isfinite(a) & (a <= 20.0)
    with np.errstate(divide="ignore"):
        out[near] = np.log10(_erfc(a[near] / math.sqrt(2.0)).astype(float))
    far = np.isfinite(a) & (a > 20.0)
    x = a[far] / math.sqrt(2.0)
    # erfc(x) ~ exp(-x^2) / (x sqrt(pi)) * (1 - 1/(2 x^2)) for large x
    out[far] = (-np.square(x) - np.log(x * math.sqrt(math.pi)) + np.log1p(-0.5 / x**2)) / _LN10
    out[np.isposinf(a)] = -np.inf
    return out


@dataclass(frozen=True)
class Calibration:
    """How p-values become ``score`` and ``confidence`` (see the module docstring).

    Parameters
    ----------
    midpoint
        The score at which ``confidence`` is 0.5.
    steepness
        How fast ``confidence`` rises with the score around the midpoint.
    """

    midpoint: float = 4.0
    steepness: float = 4.0

    def __post_init__(self) -> None:
        if not self.midpoint > 0.0:
            raise ValueError(f"midpoint must be > 0, got {self.midpoint}")
        if not self.steepness > 0.0:
            raise ValueError(f"steepness must be > 0, got {self.steepness}")

    def score_from_log10_p(self, log10_p: np.ndarray, abs_z: np.ndarray) -> np.ndarray:
        """``-log10(p)``, ties broken by ``|z|``; NaN stays NaN."""
        abs_z = np.abs(np.asarray(abs_z, dtype=float))
        with np.errstate(invalid="ignore"):
            tie = _TIE_BREAK * abs_z / (1.0 + abs_z)
            out = np.maximum(-np.asarray(log10_p, dtype=float), 0.0) + tie
        out[np.isposinf(abs_z)] = np.inf
        return out

    def score(self, z: np.ndarray) -> np.ndarray:
        """The score of robust z-scores under the normal tail alone; NaN stays NaN."""
        z = np.asarray(z, dtype=float)
        return self.score_from_log10_p(gaussian_log10_p(z), z)

    def confidence_from_score(self, score: np.ndarray) -> np.ndarray:
        """Probability of "anomalous" given the score; NaN stays NaN."""
        score = np.asarray(score, dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.power(self.midpoint / score, self.steepness)
            out = 1.0 / (1.0 + ratio)
        out[score == 0.0] = 0.0
        out[np.isposinf(score)] = 1.0
        return out

    def confidence(self, z: np.ndarray) -> np.ndarray:
        """Probability of "anomalous" given a robust z-score (normal tail); NaN stays NaN."""
        return self.confidence_from_score(self.score(z))

    def score_threshold(self, threshold: float) -> float:
        """The score at which ``confidence`` equals ``threshold``."""
        if not 0.0 < threshold < 1.0:
            raise ValueError(f"threshold must be in (0, 1), got {threshold}")
        return self.midpoint * (threshold / (1.0 - threshold)) ** (1.0 / self.steepness)

    def z_threshold(self, threshold: float) -> float:
        """The ``|z|`` at which ``confidence`` equals ``threshold`` under the normal tail."""
        return _z_at_score(self.score_threshold(threshold))


@functools.lru_cache(maxsize=64)  # a few thresholds, asked for by every scored batch
def _z_at_score(score: float) -> float:
    """The ``|z|`` whose normal-tail score is ``score`` (bisection: the tail is monotone,
    80 halvings reach 1e-22)."""
    low, high = 0.0, 100.0
    for _ in range(80):
        mid = 0.5 * (low + high)
        if gaussian_log10_p(np.array([mid]))[0] > -score:
            low = mid
        else:
            high = mid
    return high
