"""Day-of-week x time-of-day residual profiles: the steps a Fourier seasonality smooths.

Prophet's seasonalities are sums of sines, so a machine that starts at 06:00 sharp or an
office that empties at 18:00 leaves a ringing, hour-wide error around every step, and a
weekday profile is wrong on Saturdays and Sundays. :class:`DayProfile` learns what the
forecast still gets wrong at each time of day, for each day of the week: the median
residual in bins of ``bin`` (5 min), each reading looked up in its own bin (bins are
centred on the sensor's reporting phase, so a sensor that reports every 5 minutes or
less often meets each bin at its centre; one that reports every minute sees a step at
08:00 sharp as a step, where interpolating between bin centres smeared it over the
minutes either side). One profile per day of the week (not per day type) because
Prophet's smooth weekly term leaves a different error on a Monday than on a Thursday.

A day of the week seen on fewer than ``min_days`` distinct days borrows the profile of
its day type (weekday, Saturday, Sunday). A day type seen too rarely for that (the one
Saturday of a week's history) gets a *coarse* profile of its own: the median per hour,
which follows a weekend without the weekday's office hours or shifts but is too coarse
to copy a fault of minutes; a median per 5 minutes over one day would absorb its
faults. A day type never seen borrows the profile pooled over all days.

Readings left out (``keep=False``: found far off in a first pass) do not vote in the
medians, but still count as days seen: a bin whose readings on most days were left out
keeps its own day's shape from the readings that remain, rather than falling back to
another day's.

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

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

__all__ = ["DAY_TYPES", "DayProfile", "day_of_week", "day_type", "ts_ns"]

DAY_NS = 86_400 * 10**9
HOUR_NS = 3_600 * 10**9
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
    #: Offsets per day of the week (Monday first) for the days after the newest one
    #: learned from (``last_day``, days since the epoch of the centred times): where a
    #: future day meets the day before at a midnight the data never crossed (see
    #: :func:`_join_midnights`).
    ahead: np.ndarray = field(default_factory=lambda: np.zeros(7))
    last_day: int = np.iinfo(np.int64).max

    @classmethod
    def learn(
        cls,
        t_ns: np.ndarray,
        residual: np.ndarray,
        *,
        bin: str | pd.Timedelta = "5min",
        min_days: int = 2,
        keep: np.ndarray | None = None,
        coarse_bin: str | pd.Timedelta = "1h",
        forecast: np.ndarray | None = None,
    ) -> DayProfile:
        """Learn from readings at ``t_ns`` with forecast residuals ``residual`` (NaN
        ignored); readings with ``keep`` False count as seen but do not vote.
        ``forecast`` (what the residuals are from) lets a day type seen once follow
        its own readings where the forecast has steps that day lacks."""
        bin_ns = int(pd.Timedelta(bin).value)
        n_bins = max(1, -(-DAY_NS // bin_ns))
        ok = np.isfinite(residual)
        t, r = t_ns[ok], residual[ok]
        f = np.zeros(r.size) if forecast is None else np.asarray(forecast, float)[ok]
        kept = np.ones(r.size, dtype=bool) if keep is None else np.asarray(keep, bool)[ok]
        table = np.zeros((7, n_bins))
        if not kept.any():
            return cls(table, bin_ns, bin_ns // 2)
        phase = _phase(t[kept], bin_ns)
        t = _centred(t, bin_ns, phase)
        slot = (t % DAY_NS) // bin_ns
        day = t // DAY_NS
        dow, kind = day_of_week(t), day_type(t)
        coarse = max(1, int(pd.Timedelta(coarse_bin).value) // bin_ns)
        # Each (day of week, bin) needs ``min_days`` distinct days, else it borrows the
        # bin of its day type if that has them, else a coarse profile of the day type's
        # own, else the bin pooled over all days: a bin seen on one Monday only (the
        # others offline) would copy that Monday, faults and all.
        pooled, _ = _binned_median(slot, day, r, kept, n_bins)
        by_type = {}
        for k in range(len(DAY_TYPES)):
            own = kind == k
            median, days = _binned_median(slot[own], day[own], r[own], kept[own], n_bins)
            fallback = _coarse(slot[own], day[own], r[own], f[own], kept[own], pooled, coarse)
            by_type[k] = (np.where(days >= min_days, median, fallback), days)
        for d in range(7):
            own = dow == d
            median, days = _binned_median(slot[own], day[own], r[own], kept[own], n_bins)
            type_median, _ = by_type[_DOW_TYPE[d]]
            table[d] = np.where(days < min_days, type_median, median)
        ahead = _join_midnights(table, slot[kept], day[kept], r[kept], bin_ns)
        return cls(table, bin_ns, phase, ahead, int(day.max()))

    def at(self, t_ns: np.ndarray) -> np.ndarray:
        """The profile at ``t_ns``: the value of each reading's own bin and day.

        Never a blend across midnight with the next day's row: two rows need not meet
        there (the forecast's trend may have moved between the days they were learned
        from, as it does over a week's wrap from Sunday to Monday), and a reading is
        better judged by its own day's profile.
        """
        n_bins = self.table.shape[1]
        t_ns = _centred(np.asarray(t_ns), self.bin_ns, self.phase_ns)
        slot = np.clip((t_ns % DAY_NS) // self.bin_ns, 0, n_bins - 1)
        dow = day_of_week(t_ns)
        return self.table[dow, slot] + np.where(
            t_ns // DAY_NS > self.last_day, self.ahead[dow], 0.0
        )


_DOW_TYPE = (0, 0, 0, 0, 0, 1, 2)


def _phase(t_ns: np.ndarray, bin_ns: int) -> int:
    """The circular mean of the readings' offsets within a bin (robust to offsets that
    straddle a bin's edge, such as 4:59.9 and 5:00.1), or the bin's middle (no shift)
    when the offsets have no clear mean.

    Readings denser than the bins (every minute in 5-minute bins) are spread over the
    whole bin: their mean offset is noise, and shifting by it would move a midnight
    reading into the day before.
    """
    angle = 2 * np.pi * (t_ns % bin_ns) / bin_ns
    sin, cos = np.sin(angle).mean(), np.cos(angle).mean()
    if np.hypot(sin, cos) < 0.5:
        return bin_ns // 2
    mean = np.arctan2(sin, cos)
    return int(round((mean % (2 * np.pi)) / (2 * np.pi) * bin_ns)) % bin_ns


def _centred(t_ns: np.ndarray, bin_ns: int, phase_ns: int) -> np.ndarray:
    """Times shifted so that ``phase_ns`` falls at the centre of a bin."""
    return t_ns - phase_ns + bin_ns // 2


def _coarse(
    slot: np.ndarray,
    day: np.ndarray,
    r: np.ndarray,
    forecast: np.ndarray,
    kept: np.ndarray,
    pooled: np.ndarray,
    coarse: int,
) -> np.ndarray:
    """A day type's coarse profile, from hourly medians of its own readings: whichever
    of three fits them best.

    - an hourly offset from the pooled profile keeps the steps and the forecast's own
      wiggles that every day shares (a machine that starts at 06:00 on Saturdays too,
      only stops earlier);
    - hourly medians of the residuals alone, or of the readings themselves (less the
      forecast's median per fine bin), follow a day without the others' steps (an
      office empty all weekend), which an hourly offset could only smear around each
      step of the pooled profile or of the forecast.
    """
    n_bins = pooled.size
    n_coarse = -(-n_bins // coarse)
    # The forecast's shape in every bin, from every reading (the forecast does not
    # depend on which readings were left out), bins without one interpolated: a bin
    # left at 0 beside an hour of readings would take the readings' level as profile.
    shape, _ = _binned_median(slot, day, forecast, np.ones(slot.size, dtype=bool), n_bins)
    candidates = []
    for base, sign in ((pooled, 1.0), (np.zeros(n_bins), 1.0), (shape, -1.0)):
        # residual + shape are (about) the readings: their hourly medians, less the
        # forecast's fine shape, are the profile that brings the forecast to them.
        rough, rough_days = _binned_median(
            slot // coarse, day, r - sign * base[slot], kept, n_coarse
        )
        seen = rough_days[np.arange(n_bins) // coarse] > 0
        candidates.append(np.where(seen, sign * base + _upsample(rough, coarse, n_bins), pooled))
    if not kept.any():
        return candidates[0]
    misfit = [np.median(np.abs(r[kept] - c[slot[kept]])) for c in candidates]
    return candidates[int(np.argmin(misfit))]


def _join_midnights(
    table: np.ndarray, slot: np.ndarray, day: np.ndarray, r: np.ndarray, bin_ns: int
) -> np.ndarray:
    """Make each observed midnight's step in ``table`` the step the data takes there;
    return the offsets of the days ahead (:attr:`DayProfile.ahead`).

    A row's first and last bins are medians over different nights: with a few days
    whose levels wander (a warm Wednesday, a cool Thursday), they can disagree by a
    noise sd or more although no reading jumps at midnight. The difference between the
    table's step and the data's (the median over nights of the first bin minus the
    day before's last bin) is spread half and half over the hour either side, so a
    job that really runs at midnight keeps its step.

    The days after the newest one are what a forecast judges next. Where such a day
    meets the day before at a midnight the data never crossed (the Monday after a
    history of Friday to Sunday, or after one week's history: its wrap from Sunday to
    Monday), its row was learned against another day's trend and where it starts is a
    guess: a weekday row learned when the trend was higher than it is after a quiet
    weekend starts Monday far off. Going forward from the newest day, each such day
    is offset as a whole to start where the day before ends, by the usual midnight step
    of the data (a night goes on at night); the days after it keep the offset. Days
    the data saw keep their rows: offline scores of the history do not change.
    """
    ahead = np.zeros(7)
    if not day.size:
        return ahead
    n_bins = table.shape[1]
    taper = np.linspace(1.0, 0.0, max(1, min(n_bins // 2, HOUR_NS // bin_ns)), endpoint=False)
    first = pd.Series(r[slot == 0]).groupby(day[slot == 0]).median()
    last = pd.Series(r[slot == n_bins - 1]).groupby(day[slot == n_bins - 1]).median()
    steps = (first - last.rename(lambda d: d + 1)).dropna()  # day D's start - day D-1's end
    if not steps.empty:
        _match_steps(table, steps, taper)
    # A midnight is crossed when the data has readings on the days either side of it.
    # Data too sparse to show a step at midnight (hourly readings meet neither the
    # first nor the last 5-minute bin) gives no usual step to join by: only the days of
    # the week it never saw are joined then.
    days = np.unique(day)
    crossed = set(day_of_week(days[np.isin(days - 1, days) | steps.empty] * DAY_NS).tolist())
    usual = float(steps.median()) if not steps.empty else 0.0
    d = int(day_of_week(np.array([day.max() * DAY_NS]))[0])
    for _ in range(7):
        d, before = (d + 1) % 7, d
        ahead[d] = ahead[before]
        if d not in crossed:
            ahead[d] = table[before, -1] + ahead[before] + usual - table[d, 0]
    return ahead


def _match_steps(table: np.ndarray, steps: pd.Series, taper: np.ndarray) -> None:
    """Spread the difference between the table's step and the data's at each observed
    midnight (``steps``: day D's start - day D-1's end, by day) over the hour either side."""
    n_bins = table.shape[1]
    dows = day_of_week(steps.index.to_numpy() * DAY_NS)
    corrections = {}
    for d in np.unique(dows):
        previous = (d - 1) % 7
        spurious = table[d, 0] - table[previous, -1] - float(steps[dows == d].median())
        corrections[d] = (previous, spurious / 2)
    for d, (previous, half) in corrections.items():
        table[d, : taper.size] -= half * taper
        table[previous, n_bins - taper.size :] += half * taper[::-1]


def _binned_median(
    slot: np.ndarray, day: np.ndarray, values: np.ndarray, kept: np.ndarray, n_bins: int
) -> tuple[np.ndarray, np.ndarray]:
    """Median of the kept ``values`` per slot (slots with none interpolated from their
    neighbours) and the number of distinct days seen in each slot, kept or not."""
    out, days = np.full(n_bins, np.nan), np.zeros(n_bins, dtype=np.int64)
    if values.size:
        frame = pd.DataFrame({"slot": slot, "day": day, "value": values})
        medians = frame[kept].groupby("slot")["value"].median()
        out[medians.index.to_numpy()] = medians.to_numpy()
        counts = frame.groupby("slot")["day"].nunique()
        days[counts.index.to_numpy()] = counts.to_numpy()
    filled = np.isfinite(out)
    if not filled.any():
        return np.zeros(n_bins), days
    if not filled.all():
        idx = np.arange(n_bins)
        out = np.interp(idx, idx[filled], out[filled], period=n_bins)
    return out, days


def _upsample(coarse: np.ndarray, factor: int, n_bins: int) -> np.ndarray:
    """A profile of ``factor``-times wider bins at the fine bins' centres: linear
    between the coarse bins' centres, flat in the half bins at either end of the day
    (its neighbours across midnight belong to other days)."""
    centres = (np.arange(n_bins) + 0.5) / factor - 0.5
    return np.interp(centres, np.arange(coarse.size, dtype=float), coarse)
