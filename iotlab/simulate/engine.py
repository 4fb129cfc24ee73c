"""Generate the readings and heartbeats of a set of devices for part of a window.

Work is vectorised per device type: a ``(devices, sensors, times)`` array of values is
built from the factors, noise is added, the planned faults are applied as slices,
and the arrays are flattened into rows in ``device_id, sensor_id, ts`` order.
Python loops run over devices and days (to key the random streams) and over planned
faults, never over readings.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from iotlab.simulate.faults import QUALITY_PENALTY
from iotlab.simulate.model import TypeGroup
from iotlab.simulate.plan import DevicePlan, Window
from iotlab.simulate.signals import (
    DAY_MS,
    HOUR_MS,
    KNOTS_PER_DAY,
    STREAM_FAULT_NOISE,
    STREAM_METRICS,
    STREAM_READINGS,
    daily,
    day_rng,
    occupancy,
    shift,
    weather,
    weather_knots,
)

__all__ = ["generate_metrics", "generate_readings"]

READING_COLUMNS = ("device_id", "sensor_id", "ts", "value", "quality", "status")
METRIC_COLUMNS = ("device_id", "ts", "cpu", "memory", "battery", "signal")


def _day_bounds(t_ms: np.ndarray) -> tuple[int, np.ndarray]:
    """First UTC day of ``t_ms`` and the index where each day's times start (plus the end)."""
    days = t_ms // DAY_MS
    first, last = int(days[0]), int(days[-1])
    return first, np.searchsorted(days, np.arange(first, last + 2))


def _noise(
    seed: int, group: TypeGroup, t_ms: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weather, measurement noise and quality draws, each device-day from its own stream."""
    n, s, nt = len(group.positions), len(group.sensor_ids), len(t_ms)
    first, bounds = _day_bounds(t_ms)
    n_days = len(bounds) - 1
    knots = np.empty((n, KNOTS_PER_DAY * (n_days + 1)))
    noise = np.empty((n, s, nt))
    draws = np.empty((n, s, nt), dtype=np.float32)
    for r, device_index in enumerate(group.device_index.tolist()):
        for j in range(n_days):
            rng = day_rng(seed, STREAM_READINGS, device_index, first + j)
            knots[r, j * KNOTS_PER_DAY : (j + 1) * KNOTS_PER_DAY] = rng.standard_normal(
                KNOTS_PER_DAY
            )
            a, b = bounds[j], bounds[j + 1]
            noise[r, :, a:b] = rng.standard_normal((s, b - a))
            draws[r, :, a:b] = rng.random((s, b - a), dtype=np.float32)
        knots[r, -KNOTS_PER_DAY:] = weather_knots(seed, device_index, first + n_days)
    return weather(t_ms, knots, first), noise, draws


def generate_readings(
    seed: int, group: TypeGroup, plans: list[DevicePlan], window: Window, k_lo: int, k_hi: int
) -> dict[str, np.ndarray]:
    """Arrays ``value``, ``quality`` (int8), ``keep`` and ``maintenance`` (bool), each
    ``(devices, sensors, k_hi - k_lo)``, for grid steps ``[k_lo, k_hi)`` (whole UTC days
    of the window). ``plans[r]`` is the plan of the group's device ``r``."""
    t_ms = window.start_ms + np.arange(k_lo, k_hi, dtype=np.int64) * window.step_ms
    weather_values, noise, draws = _noise(seed, group, t_ms)
    values = group.signal(t_ms, weather_values, window.start_ms)
    values += group.noise_sd[None, :, None] * noise
    # Mostly 100 %, now and then a few points less: the device's own confidence.
    draws **= 8  # in place, float32: cheap
    draws *= 8.0
    quality = 100 - draws.astype(np.int8)  # int8 until the frame is built
    keep = np.ones(values.shape, dtype=bool)
    maintenance = np.zeros((values.shape[0], values.shape[2]), dtype=bool)
    for r, plan in enumerate(plans):
        device_index = int(group.device_index[r])
        for fault in plan.faults:
            lo, hi = max(fault.k0, k_lo), min(fault.k1, k_hi)
            if lo >= hi:
                continue
            a, b, s = lo - k_lo, hi - k_lo, fault.sensor
            kind = fault.kind
            if kind == "offline":
                keep[r, :, a:b] = False
            elif kind == "dropout":
                keep[r, s, a:b] = False
            elif kind in ("spike", "dip", "level_shift"):
                values[r, s, a:b] += fault.value
            elif kind == "drift":
                done = (np.arange(lo, hi) - fault.k0 + 1) / (fault.k1 - fault.k0)
                values[r, s, a:b] += fault.value * done
            elif kind == "stuck":
                values[r, s, a:b] = fault.value
            elif kind == "noise_burst":
                rng = np.random.default_rng([seed, STREAM_FAULT_NOISE, device_index, fault.number])
                burst = rng.standard_normal(fault.k1 - fault.k0)[lo - fault.k0 : hi - fault.k0]
                values[r, s, a:b] += fault.value * burst
                quality[r, s, a:b] -= QUALITY_PENALTY["noise_burst"]
        for m0, m1, _ in plan.maintenance:
            lo, hi = max(m0, k_lo), min(m1, k_hi)
            if lo < hi:
                maintenance[r, lo - k_lo : hi - k_lo] = True
        if plan.decommission is not None:
            keep[r, :, max(plan.decommission[0] - k_lo, 0) :] = False
    # A sensor cannot report past its range: faults saturate at the limits.
    np.clip(values, group.lower[None, :, None], group.upper[None, :, None], out=values)
    quality -= QUALITY_PENALTY["maintenance"] * maintenance[:, None, :]
    np.clip(quality, 0, 100, out=quality)
    maintenance = np.broadcast_to(maintenance[:, None, :], values.shape)
    return {"value": values, "quality": quality, "keep": keep, "maintenance": maintenance}


def heartbeat_times(group: TypeGroup, a_ms: int, b_ms: int) -> np.ndarray:
    """Heartbeats fall on multiples of the interval since the epoch, in ``[a_ms, b_ms)``."""
    interval = int(pd.Timedelta(group.device_type.heartbeat_interval) / pd.Timedelta("1ms"))
    first = -(-a_ms // interval) * interval
    return np.arange(first, b_ms, interval, dtype=np.int64)


def _activity(group: TypeGroup, t_ms: np.ndarray) -> np.ndarray:
    name = group.device_type.activity
    if name == "shift":
        return shift(t_ms)[None, :]
    if name == "daily":
        return (daily(t_ms, group.peak_hour) + 1) / 2
    if name == "weather":
        return np.full((1, len(t_ms)), 0.5)
    return occupancy(t_ms)[None, :]


def generate_metrics(
    seed: int, group: TypeGroup, plans: list[DevicePlan], window: Window, a_ms: int, b_ms: int
) -> dict[str, np.ndarray]:
    """Heartbeat arrays ``(devices, heartbeats)`` for ``[a_ms, b_ms)`` plus ``t_ms``."""
    t_ms = heartbeat_times(group, max(a_ms, window.start_ms), min(b_ms, window.end_ms))
    n, nt = len(group.positions), len(t_ms)
    z = np.empty((n, 3, nt))
    if nt:
        first, bounds = _day_bounds(t_ms)
        for r, device_index in enumerate(group.device_index.tolist()):
            for j in range(len(bounds) - 1):
                rng = day_rng(seed, STREAM_METRICS, device_index, first + j)
                z[r, :, bounds[j] : bounds[j + 1]] = rng.standard_normal(
                    (3, bounds[j + 1] - bounds[j])
                )
    cpu = np.clip(group.cpu_base[:, None] + 25.0 * _activity(group, t_ms) + 3.0 * z[:, 0], 0, 100)
    # Memory creeps up through the day and drops at the nightly 03:00 restart.
    since_restart = ((t_ms - 3 * HOUR_MS) % DAY_MS) / DAY_MS
    memory = np.clip(group.memory_base[:, None] + 12.0 * since_restart + z[:, 1], 0, 100)
    signal = np.clip(group.signal_base[:, None] + 2.0 * z[:, 2], -120, -30)
    days = (t_ms - window.start_ms) / DAY_MS
    if group.device_type.battery_powered:
        battery = np.clip(
            group.battery_start[:, None] - group.battery_rate[:, None] * days, 5, 100
        )
    else:
        battery = np.full((n, nt), 100.0)
    keep = np.ones((n, nt), dtype=bool)
    for r, plan in enumerate(plans):
        if plan.drain is not None:
            d0, d1, d2 = (window.start_ms + k * window.step_ms for k in plan.drain)
            at_start = float(
                np.clip(group.battery_start[r] - group.battery_rate[r] * (d0 - window.start_ms)
                        / DAY_MS, 5, 100)
            )  # fmt: skip
            falling = (t_ms >= d0) & (t_ms < d1)
            battery[r, falling] = at_start * (d1 - t_ms[falling]) / (d1 - d0)
            after = t_ms >= d2  # a fresh battery
            battery[r, after] = np.clip(
                100.0 - group.battery_rate[r] * (t_ms[after] - d2) / DAY_MS, 5, 100
            )
        for k0, k1 in plan.offline():
            keep[r, (t_ms >= window.time(k0)) & (t_ms < window.time(k1))] = False
        if plan.decommission is not None:
            keep[r, t_ms >= window.time(plan.decommission[0])] = False
    return {
        "t_ms": t_ms,
        "cpu": cpu,
        "memory": memory,
        "battery": battery,
        "signal": signal,
        "keep": keep,
    }
