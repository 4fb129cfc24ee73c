"""Vectorised signal factors and the simulator's random streams.

Every random number the simulator draws comes from a generator keyed by
``(seed, stream, device_index, day)`` (see :func:`day_rng`): a device's data for one
UTC day is the same whether the day is generated alone, in a chunk or in one shot,
and the order devices are generated in does not matter. Times are int64 epoch
milliseconds throughout; a "day" is a UTC calendar day.

Examples
--------
>>> import numpy as np
>>> t = np.array([0, 6 * HOUR_MS, 12 * HOUR_MS])  # 1970-01-01 was a Thursday
>>> occupancy(t).round(2).tolist()
[0.0, 0.0, 0.9]
>>> shift(t).round(2).tolist()
[0.0, 0.5, 1.0]
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "DAY_MS",
    "HOUR_MS",
    "KNOT_MS",
    "STREAM_DEVICE",
    "STREAM_EVENTS",
    "STREAM_FAULT_NOISE",
    "STREAM_FAULTS",
    "STREAM_METRICS",
    "STREAM_READINGS",
    "day_rng",
    "daily",
    "hour_of_day",
    "occupancy",
    "shift",
    "weather",
    "weather_knots",
    "weekday",
]

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
KNOTS_PER_DAY = 8
KNOT_MS = DAY_MS // KNOTS_PER_DAY  # weather changes on a 3-hour scale

# Independent random streams; the numbers are part of the data's identity.
STREAM_DEVICE = 0  # fleet specs and per-device parameters (key: seed, stream, device)
STREAM_READINGS = 1  # weather knots, measurement noise, quality (per device-day)
STREAM_METRICS = 2  # heartbeat noise (per device-day)
STREAM_FAULTS = 3  # the fault plan of a simulation window (per device)
STREAM_FAULT_NOISE = 4  # noise of a noise burst (per device and fault)
STREAM_EVENTS = 5  # lifecycle events of a simulation window (per device)

# SeedSequence needs non-negative words: shift day numbers so dates before 1970 work.
_DAY_OFFSET = 1 << 20


def day_rng(seed: int, stream: int, device_index: int, day: int) -> np.random.Generator:
    """The generator of one device for one UTC day (``day`` = days since the epoch)."""
    return np.random.default_rng([seed, stream, device_index, day + _DAY_OFFSET])


def hour_of_day(t_ms: np.ndarray) -> np.ndarray:
    """Fractional UTC hour, 0 <= h < 24."""
    return (t_ms % DAY_MS) / HOUR_MS


def weekday(t_ms: np.ndarray) -> np.ndarray:
    """Day of the week, Monday = 0 (1970-01-01 was a Thursday)."""
    return (t_ms // DAY_MS + 3) % 7


def _ramp(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def daily(t_ms: np.ndarray, peak_hour: np.ndarray) -> np.ndarray:
    """Cosine daily cycle peaking at ``peak_hour``: shape ``(len(peak_hour), len(t_ms))``."""
    angle = (2 * np.pi / 24) * (hour_of_day(t_ms)[None, :] - np.asarray(peak_hour)[:, None])
    return np.cos(angle)


def occupancy(t_ms: np.ndarray) -> np.ndarray:
    """Share of people in an office: ~1 from 08:00 to 18:00 on weekdays, a lunch dip, 10 %
    of that at weekends, 0 at night."""
    hour = hour_of_day(t_ms)
    day_curve = _ramp((hour - 8.5) / 0.4) * _ramp((17.5 - hour) / 0.5)
    lunch = 1.0 - 0.2 * np.exp(-(((hour - 12.5) / 0.6) ** 2))
    weekend = weekday(t_ms) >= 5
    return day_curve * lunch * np.where(weekend, 0.1, 1.0)


def shift(t_ms: np.ndarray) -> np.ndarray:
    """Machine utilisation: two shifts 06:00-22:00 on weekdays, one until 14:00 on Saturday,
    idle on Sunday; a short dip at the 14:00 shift change."""
    hour = hour_of_day(t_ms)
    day = weekday(t_ms)
    start = _ramp((hour - 6.0) / 0.2)
    end_hour = np.where(day == 5, 14.0, 22.0)
    running = start * _ramp((end_hour - hour) / 0.2)
    handover = 1.0 - 0.15 * np.exp(-(((hour - 14.0) / 0.25) ** 2))
    return np.where(day == 6, 0.0, running * handover)


def weather_knots(seed: int, device_index: int, day: int) -> np.ndarray:
    """The weather knots of one device-day: the first draws of its readings stream."""
    return day_rng(seed, STREAM_READINGS, device_index, day).standard_normal(KNOTS_PER_DAY)


def weather(t_ms: np.ndarray, knots: np.ndarray, first_day: int) -> np.ndarray:
    """Smooth random process from knots every 3 hours (cosine interpolation).

    Parameters
    ----------
    t_ms
        Times, all on or after ``first_day``.
    knots
        ``(n_devices, n_knots)``, knot ``j`` at ``first_day * DAY_MS + j * KNOT_MS``;
        must reach past the last time.
    """
    position = (t_ms - first_day * DAY_MS) / KNOT_MS
    left = position.astype(np.int64)
    weight = (1.0 - np.cos(np.pi * (position - left))) / 2.0
    return knots[:, left] * (1.0 - weight) + knots[:, left + 1] * weight
