"""What a detector's own out-of-sample errors look like: p-values that know their tails.

A forecast's errors on real series are not normal: a random walk wanders, counts
burst, a quantised sensor jumps by whole steps, a daily on/off step is off by a
reading or two. Judged by a normal tail, each of these is a one-in-a-million event
that happens every day. A :class:`TailReference` keeps the distribution of the
detector's recent out-of-sample ``|z|`` and gives each new ``|z|`` the largest of three
tail probabilities:

- the normal tail (nothing is ever *less* surprising than noise);
- an exponential tail fitted to the errors beyond their ``quantile`` (peaks over a
  threshold, with the mean excess as the scale), which extrapolates past the largest
  error seen, so a reading farther off than anything before still gets a small,
  finite, strictly decreasing p-value;
- the share of past errors at least as large, divided by ``allowance``: an error the
  detector made ``k`` times among ``n`` is given at least ``k / (allowance * n)``;
  beyond the largest error seen, the tail starts at ``1 / (allowance * n)`` and falls
  off at the fitted rate.

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> heavy = np.abs(rng.standard_t(2, 5000))  # heavy-tailed errors
>>> ref = TailReference.learn(heavy)
>>> p = 10 ** ref.log10_p(np.array([6.0, 500.0]))
>>> bool(p[0] > 1e-4)  # a normal tail would say 2e-9: these errors are common here
True
>>> bool(0.0 < p[1] < 1e-20)  # far beyond anything seen: tiny, yet finite
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from iotlab.detect.calibration import gaussian_log10_p

__all__ = ["References", "TailReference"]

_LN10 = math.log(10.0)


@dataclass(frozen=True)
class TailReference:
    """The distribution of a detector's out-of-sample ``|z|`` (see the module docstring)."""

    sorted_abs_z: np.ndarray
    threshold: float  # where the exponential tail starts
    tail_share: float  # share of errors beyond it
    tail_scale: float  # their mean excess
    allowance: float

    #: Fewest errors a reference is learned from; fewer and the normal tail is used alone.
    MIN_SIZE = 30

    @classmethod
    def learn(
        cls, abs_z: np.ndarray, *, quantile: float = 0.95, allowance: float = 10.0
    ) -> TailReference | None:
        """A reference from past ``|z|`` (NaN ignored), or ``None`` if there are too few."""
        values = np.abs(np.asarray(abs_z, dtype=float))
        values = np.sort(values[np.isfinite(values)])
        if values.size < cls.MIN_SIZE:
            return None
        threshold = float(values[int(quantile * (values.size - 1))])
        excess = values[values > threshold] - threshold
        share = excess.size / values.size
        # No error beyond the threshold (a quantised series): assume the tail falls off
        # within a tenth of the threshold, itself at least one noise sd.
        scale = float(excess.mean()) if excess.size else 0.1 * max(threshold, 1.0)
        return cls(values, threshold, max(share, 1.0 / values.size), max(scale, 1e-6), allowance)

    def log10_p(self, abs_z: np.ndarray) -> np.ndarray:
        """``log10`` of the tail probability of each ``|z|`` (see the module docstring)."""
        a = np.abs(np.asarray(abs_z, dtype=float))
        n = self.sorted_abs_z.size
        seen = n - np.searchsorted(self.sorted_abs_z, a, side="left")
        with np.errstate(divide="ignore"):
            empirical = np.log10(seen / (self.allowance * n))  # -inf beyond the largest
        tail = math.log10(self.tail_share) - (a - self.threshold) / (self.tail_scale * _LN10)
        fitted = np.where(a > self.threshold, tail, math.log10(self.tail_share))
        # Past the largest error seen, no more often than once in ``allowance * n``
        # readings, and less the farther past: a fitted tail made of a few repeated
        # sizes (a quantised sensor's one-step jumps) must not excuse a new level.
        largest = float(self.sorted_abs_z[-1])
        novel = math.log10(1.0 / (self.allowance * n)) - (a - largest) / (self.tail_scale * _LN10)
        fitted = np.where(a > largest, np.minimum(fitted, novel), fitted)
        out = np.maximum.reduce([gaussian_log10_p(a), fitted, empirical])
        out = np.minimum(out, 0.0)
        out[np.isnan(a)] = np.nan
        return out

    def abs_z_at(self, log10_p: float) -> float:
        """The smallest ``|z|`` whose :meth:`log10_p` is at most ``log10_p`` (bisection:
        the tail probability decreases with ``|z|``)."""
        low, high = 0.0, 1.0
        while self.log10_p(np.array([high]))[0] > log10_p and high < 1e12:
            low, high = high, 2.0 * high
        for _ in range(60):
            mid = 0.5 * (low + high)
            if self.log10_p(np.array([mid]))[0] > log10_p:
                low = mid
            else:
                high = mid
        return high


@dataclass(frozen=True)
class References:
    """The :class:`TailReference` each reading of a series is judged by.

    ``codes[i]`` indexes ``tables`` for reading ``i``; a code of -1, or a ``None`` table,
    means the normal tail alone (too little history to learn from).
    """

    codes: np.ndarray
    tables: tuple[TailReference | None, ...]

    def log10_p(self, abs_z: np.ndarray) -> np.ndarray:
        out = gaussian_log10_p(abs_z)
        for code, table in enumerate(self.tables):
            rows = self.codes == code
            if table is not None and rows.any():
                out[rows] = table.log10_p(np.asarray(abs_z)[rows])
        return out

    def abs_z_at(self, log10_p: float, gaussian: float) -> np.ndarray:
        """Per reading, the ``|z|`` at which its p-value reaches ``log10_p``
        (``gaussian``: the same under the normal tail alone)."""
        out = np.full(self.codes.shape, gaussian)
        for code, table in enumerate(self.tables):
            rows = self.codes == code
            if table is not None and rows.any():
                out[rows] = table.abs_z_at(log10_p)
        return out
