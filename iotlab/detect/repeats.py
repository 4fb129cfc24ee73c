"""A sensor repeating one value for far longer than it ever does: the *stuck* reading.

A forecast residual cannot see a stuck sensor. The repeated value is usually a
plausible one (the last reading before the fault), and the local level correction
soon follows it, so the residual stays small for as long as the fault lasts.
What gives it away is the run itself: a sensor whose readings are noisy floats
almost never repeats a value, let alone for an hour.

:class:`RepeatRule` learns two things from a series' history:

- ``log10_q``: how often a reading equals the one before it (``(repeats + 1) /
  (pairs + 2)``, so that a history without a single repeat still gives a finite
  chance);
- ``usual``: the longest run of identical readings the history holds, leaving out
  runs more than three times as long as a typical day's longest (the lower median
  over UTC days of each day's longest run). A quantised counter that sits at 0 all
  night, or a square wave that is flat between its steps, has long runs every day; a
  metric that now and then reports one value three times running has runs of three;
  a stuck fault in the history is far beyond either and does not count. Runs of three
  are always usual: two or three equal readings in a row happen by chance in a metric
  of a few significant digits, however rare they were in the history.

A series that repeats itself in more than one reading in twenty (a quantised
counter, a square wave, a load balancer idle at 0 most of the time) gets no rule: its
runs come and go in lengths no simple chance per repeat describes (a NAB load
balancer's runs of 0 of 87 and 155 readings would have been alerts), and a stuck fault
there is left to the residual.

A reading that is the ``k``-th of a run of identical readings has
``log10 p = (k - usual) * log10_q`` when ``k > usual`` (each repeat beyond the usual
run is one more at chance ``q``), and ``0`` otherwise. The detector adds it to the
residual's ``log10 p`` (the two are independent evidence), so a stuck sensor is
flagged a few readings into the fault. One alert per episode: once the run's own
``-log10 p`` has reached ``ALERT_SCORE`` (twice the default flag threshold's score),
its later readings carry no more of it, so a fault that lasts a day is not a day of
alerts (the fleet health report gives how long a sensor has been stuck).

Examples
--------
>>> import numpy as np
>>> run_positions(np.array([1.0, 2.0, 2.0, 2.0, 3.0])).tolist()
[1, 1, 2, 3, 1]
>>> run_positions(np.array([2.0, 2.0, 5.0]), previous=2.0, previous_run=4).tolist()
[5, 6, 1]
>>> day = 86_400 * 10**9
>>> t = np.arange(2000) * (day // 500)  # four days of readings that never repeat
>>> rule = RepeatRule.learn(t, np.arange(2000.0))
>>> rule.usual, round(rule.log10_q, 2)
(3, -3.3)
>>> rule.alert_readings  # 4 repeats beyond the usual run reach ALERT_SCORE
4
>>> (rule.log10_p(np.array([1, 3, 4, 5, 6, 7, 8])) / rule.log10_q + 0.0).tolist()
[0.0, 0.0, 1.0, 2.0, 3.0, 4.0, 0.0]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["ALERT_SCORE", "NO_RULE", "RepeatRule", "run_positions", "runs_log10_p"]

_DAY_NS = 86_400 * 10**9
#: Fewest consecutive pairs a repeat rate is learned from (else no rule).
_MIN_PAIRS = 100
#: Runs up to this many times a typical day's longest are part of a series' usual runs.
_USUAL_SPREAD = 3
#: Runs this long are usual in any series (chance repeats of a rounded metric).
_SHORTEST_USUAL = 3
#: Series that repeat a reading more often than this get no rule.
_MAX_REPEAT_RATE = 0.05
#: The run's ``-log10 p`` at which it has raised its alert; later readings add nothing.
ALERT_SCORE = 12.0


def run_positions(
    values: np.ndarray, *, previous: float = math.nan, previous_run: int = 0
) -> np.ndarray:
    """The position of each reading in its run of identical consecutive values (1: it
    differs from the reading before). ``previous``/``previous_run``: the value and run
    length the series had before ``values`` (a live stream's earlier batches)."""
    values = np.asarray(values, dtype=float)
    n = len(values)
    if not n:
        return np.empty(0, dtype=np.int64)
    starts = np.ones(n, dtype=bool)
    starts[1:] = values[1:] != values[:-1]
    index = np.arange(n)
    run_start = np.maximum.accumulate(np.where(starts, index, 0))
    positions = index - run_start + 1
    if previous_run > 0 and values[0] == previous:
        positions[run_start == 0] += previous_run
    return positions.astype(np.int64)


@dataclass(frozen=True)
class RepeatRule:
    """How unlikely a run of identical readings is for one series (module docstring)."""

    log10_q: float = 0.0
    usual: int = _SHORTEST_USUAL

    @classmethod
    def learn(cls, t_ns: np.ndarray, values: np.ndarray) -> RepeatRule:
        """The rule of a history of readings (sorted by time; NaN values ignored).

        Fewer than 100 consecutive pairs teach nothing: :data:`NO_RULE`.
        """
        t_ns = np.asarray(t_ns, dtype=np.int64)
        values = np.asarray(values, dtype=float)
        finite = np.isfinite(values)
        t_ns, values = t_ns[finite], values[finite]
        pairs = len(values) - 1
        if pairs < _MIN_PAIRS:
            return NO_RULE
        repeats = int(np.count_nonzero(values[1:] == values[:-1]))
        q = (repeats + 1) / (pairs + 2)
        if q > _MAX_REPEAT_RATE:
            return NO_RULE
        log10_q = math.log10(q)
        positions = run_positions(values)
        day = t_ns // _DAY_NS
        cuts = np.flatnonzero(np.diff(day)) + 1
        daily_longest = np.maximum.reduceat(positions, np.r_[0, cuts])
        typical = int(np.percentile(daily_longest, 50, method="lower"))
        usual = int(daily_longest[daily_longest <= _USUAL_SPREAD * typical].max())
        return cls(log10_q=log10_q, usual=max(usual, _SHORTEST_USUAL))

    @property
    def alert_readings(self) -> int:
        """How many readings beyond the usual run carry evidence (until the run's
        ``-log10 p`` reaches :data:`ALERT_SCORE`)."""
        if self.log10_q >= 0.0:
            return 0
        return math.ceil(ALERT_SCORE / -self.log10_q)

    def log10_p(self, positions: np.ndarray) -> np.ndarray:
        """``log10`` of the chance of runs this long at each position: 0 within the
        usual run and after the run's alert."""
        return runs_log10_p([self], np.zeros(len(positions), dtype=np.int64), positions)


def runs_log10_p(
    rules: Sequence[RepeatRule], which: np.ndarray, positions: np.ndarray
) -> np.ndarray:
    """:meth:`RepeatRule.log10_p` of many series' readings at once: reading ``i`` is at
    run position ``positions[i]`` of a series judged by ``rules[which[i]]``."""
    which = np.asarray(which, dtype=np.int64)
    log10_q = np.array([rule.log10_q for rule in rules])[which]
    usual = np.array([rule.usual for rule in rules])[which]
    alert_readings = np.array([rule.alert_readings for rule in rules])[which]
    beyond = np.asarray(positions, dtype=float) - usual
    alerting = (beyond > 0) & (beyond <= alert_readings)
    return np.where(alerting, beyond * log10_q, 0.0)


#: The rule of a series too short to learn one: no run is unlikely.
NO_RULE = RepeatRule()
