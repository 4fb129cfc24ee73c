"""Day-of-week x time-of-day residual profiles: the steps a Fourier seasonality smooths.

Prophet's seasonalities are sums of sines, so a machine that starts at 06:00 sharp or an
office that empties at 18:00 leaves a ringing, hour-wide error around every step, and a
weekday profile is wrong on Saturdays and Sundays. :class:`DayProfile` learns what the
forecast still gets wrong at each time of day, for each day of the week: the median
residual in bins of ``bin`` (5 min), linearly interpolated between bin centres so a ramp
is followed within a bin. One profile per day of the week (not per day type) because
Prophet's smooth weekly term leaves a different error on a Monday than on a Thursday.

A day of the week seen on fewer than ``min_days`` distinct days borrows the profile of
its day type (weekday, Saturday, Sunday), and a day type seen too rarely borrows the
profile pooled over all days: one odd Saturday is not a pattern, and a median over one
day would absorb its faults.

Examples
--------
>>> import numpy as np, pandas as pd
>>> ts = pd.date_range("2026-01-05", periods=21 * 288, freq="5min", tz="UTC")
>>> step = np.where((ts.hour >= 6) & (ts.day_of_week < 5), 10.0, 0.0)  # a weekday shift
>>> profile = DayProfile.learn(ts_ns(ts), step)
>>> at = pd.to_datetime(["2026-01-26 07:00", "2026-01-31 07:00"], utc=True)  # Mon, Sat
>>> profile.at(ts_ns(at)).tolist()
[10.0, 0.0]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["DAY_TYPES", "DayProfile", "day_of_week", "day_type", "ts_ns"]

DAY_NS = 86_400 * 10**9
#: Day types, in the order of :attr:`DayProfile.table`'s rows.
DAY_TYPES = ("weekday", "saturday", "sunday")


def ts_ns(ts: pd.Series | pd.DatetimeIndex) -> np.ndarray:
    """Timestamps as int64 nanoseconds since the epoch (UTC)."""
    return pd.DatetimeIndex(ts).as_unit("ns").asi8


def day_of_week(t_ns: np.ndarray) -> np.ndarray:
    """Monday = 0 ... Sunday = 6, of the UTC day (1970-01-01 was a Thursday)."""
    return (t_ns // DAY_NS + 3) % 7


def day_type(t_ns: np.ndarray) -> np.ndarray:
    """0 for Monday-Friday, 1 for Saturday, 2 for Sunday (UTC days)."""
    return np.clip(day_of_week(t_ns) - 4, 0, 2)


@dataclass(frozen=True)
class DayProfile:
    """Median residual per (day type, time-of-day bin); see the module docstring."""

    table: np.ndarray  # (7, bins), Monday first
    bin_ns: int
    #: Where in a bin the sensor reports (ns past the bin's start). Bins are laid out
    #: centred on it, so a reading on the sensor's own schedule is looked up at its bin's
    #: centre: interpolating a reading at xx:04 between the bins of xx:00 and xx:05 would
    #: smear a job that runs every hour at xx:59 into the readings next to it.
    phase_ns: int = 0

    @classmethod
    def learn(
        cls,
        t_ns: np.ndarray,
        residual: np.ndarray,
        *,
        bin: str | pd.Timedelta = "5min",
        min_days: int = 2,
    ) -> DayProfile:
        """Learn from readings at ``t_ns`` with forecast residuals ``residual`` (NaN
        ignored)."""
        bin_ns = int(pd.Timedelta(bin).value)
        n_bins = max(1, -(-DAY_NS // bin_ns))
        ok = np.isfinite(residual)
        t, r = t_ns[ok], residual[ok]
        table = np.zeros((7, n_bins))
        if r.size == 0:
            return cls(table, bin_ns, bin_ns // 2)
        phase = _phase(t, bin_ns)
        t = _centred(t, bin_ns, phase)
        slot = (t % DAY_NS) // bin_ns
        day = t // DAY_NS
        dow, kind = day_of_week(t), day_type(t)
        # Each (day of week, bin) needs ``min_days`` distinct days, else it borrows the
        # bin of its day type if that has them, else the bin pooled over all days: a bin
        # seen on one Monday only (the others offline, or left out as anomalous) would
        # copy that Monday, faults and all, and so would a Sunday seen once.
        pooled, _ = _binned_median(slot, day, r, n_bins)
        by_type = {}
        for k in range(len(DAY_TYPES)):
            own = kind == k
            median, days = _binned_median(slot[own], day[own], r[own], n_bins)
            by_type[k] = (np.where(days > 0, median, pooled), days)
        for d in range(7):
            own = dow == d
            median, days = _binned_median(slot[own], day[own], r[own], n_bins)
            type_median, type_days = by_type[_DOW_TYPE[d]]
            few = days < min_days
            borrowed = np.where(type_days >= min_days, type_median, pooled)
            table[d] = np.where(few, borrowed, median)
        return cls(table, bin_ns, phase)

    def at(self, t_ns: np.ndarray) -> np.ndarray:
        """The profile at ``t_ns``, interpolated linearly between bin centres (across
        midnight into the next day's profile, so a day's edges do not jump)."""
        n_bins = self.table.shape[1]
        t_ns = _centred(np.asarray(t_ns), self.bin_ns, self.phase_ns)
        position = day_of_week(t_ns) * n_bins + (t_ns % DAY_NS) / self.bin_ns - 0.5
        week = self.table.ravel()
        return np.interp(position, np.arange(week.size, dtype=float), week, period=week.size)


_DOW_TYPE = (0, 0, 0, 0, 0, 1, 2)


def _phase(t_ns: np.ndarray, bin_ns: int) -> int:
    """The circular mean of the readings' offsets within a bin (robust to offsets that
    straddle a bin's edge, such as 4:59.9 and 5:00.1)."""
    angle = 2 * np.pi * (t_ns % bin_ns) / bin_ns
    mean = np.arctan2(np.sin(angle).mean(), np.cos(angle).mean())
    return int(round((mean % (2 * np.pi)) / (2 * np.pi) * bin_ns)) % bin_ns


def _centred(t_ns: np.ndarray, bin_ns: int, phase_ns: int) -> np.ndarray:
    """Times shifted so that ``phase_ns`` falls at the centre of a bin."""
    return t_ns - phase_ns + bin_ns // 2


def _binned_median(
    slot: np.ndarray, day: np.ndarray, values: np.ndarray, n_bins: int
) -> tuple[np.ndarray, np.ndarray]:
    """Median of ``values`` per slot (empty slots interpolated from their neighbours)
    and the number of distinct days behind each slot."""
    out, days = np.full(n_bins, np.nan), np.zeros(n_bins, dtype=np.int64)
    if values.size:
        grouped = pd.DataFrame({"slot": slot, "day": day, "value": values}).groupby("slot")
        medians = grouped["value"].median()
        out[medians.index.to_numpy()] = medians.to_numpy()
        counts = grouped["day"].nunique()
        days[counts.index.to_numpy()] = counts.to_numpy()
    filled = np.isfinite(out)
    if not filled.any():
        return np.zeros(n_bins), days
    if not filled.all():
        idx = np.arange(n_bins)
        out = np.interp(idx, idx[filled], out[filled], period=n_bins)
    return out, days
