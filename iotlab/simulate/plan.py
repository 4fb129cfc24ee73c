"""Plan, once per simulation window, what happens to each device: faults and lifecycle.

Planning up front (rather than while generating) is what lets a chunk of the window
be generated alone and still agree with the one-shot result: a chunk applies the
part of each planned interval that falls inside it. Intervals are in steps of the
reading grid ``start + k * freq``. Faults and maintenance of one device never
overlap and keep ``GUARD`` steps apart, so every fault has a clean neighbourhood to
stand out of.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from iotlab.simulate.faults import DRAINED_OFFLINE, SENSOR_FAULTS, SPECS, FaultConfig, FaultSpec
from iotlab.simulate.signals import DAY_MS, HOUR_MS, STREAM_FAULTS

__all__ = ["GUARD", "DevicePlan", "Fault", "Window", "plan_device"]

GUARD = 12  # steps of clean data kept on each side of a fault
#: Lifecycle changes, expected per device per day.
LIFECYCLE_RATES = {
    "maintenance": 0.02,
    "relocation": 0.01,
    "firmware": 0.015,
    "decommission": 0.002,
}
MAINTENANCE_MINUTES = (60, 240)
MAINTENANCE_REASONS = ("scheduled calibration", "sensor cleaning", "battery check", "inspection")
DECOMMISSION_REASONS = ("end of life", "replaced by newer model", "site closed")


@dataclass(frozen=True)
class Window:
    """The reading grid ``start_ms + k * step_ms`` for ``0 <= k < n_steps`` (< ``end_ms``)."""

    start_ms: int
    end_ms: int
    step_ms: int

    @property
    def n_steps(self) -> int:
        return -(-(self.end_ms - self.start_ms) // self.step_ms)

    def time(self, k: int) -> int:
        return min(self.start_ms + k * self.step_ms, self.end_ms)

    def steps_between(self, a_ms: int, b_ms: int) -> tuple[int, int]:
        """Grid steps whose time lies in ``[a_ms, b_ms)``."""
        lo = -(-(a_ms - self.start_ms) // self.step_ms)
        hi = -(-(b_ms - self.start_ms) // self.step_ms)
        return max(lo, 0), min(hi, self.n_steps)


@dataclass(frozen=True)
class Fault:
    """One planned fault: ``kind`` on sensor ``sensor`` (-1: the whole device) for steps
    ``[k0, k1)``. ``value`` is the signed offset (spike, dip, level_shift, final drift),
    the noise sd (noise_burst) or the repeated value (stuck)."""

    kind: str
    sensor: int
    k0: int
    k1: int
    value: float = 0.0
    number: int = 0


@dataclass(frozen=True)
class DevicePlan:
    """Everything planned for one device in one window."""

    faults: tuple[Fault, ...]
    maintenance: tuple[tuple[int, int, str], ...]
    relocations: tuple[tuple[int, dict[str, object]], ...]
    firmware_updates: tuple[tuple[int, str], ...]
    decommission: tuple[int, str] | None
    drain: tuple[int, int, int] | None  # steps: drain starts, battery flat, battery replaced
    provisioned_ms: int
    activated_ms: int

    def offline(self) -> list[tuple[int, int]]:
        """Step intervals without readings or heartbeats (before decommissioning)."""
        return [(f.k0, f.k1) for f in self.faults if f.kind == "offline"]


class _Slots:
    """Occupied step intervals of one device, kept ``GUARD`` apart."""

    def __init__(self) -> None:
        self.taken: list[tuple[int, int]] = []

    def free(self, k0: int, k1: int) -> bool:
        return all(k1 + GUARD <= lo or k0 >= hi + GUARD for lo, hi in self.taken)

    def inside(self, k: int) -> bool:
        return any(lo <= k <= hi for lo, hi in self.taken)

    def place(self, rng: np.random.Generator, length: int, lo: int, hi: int) -> int | None:
        """A start in ``[lo, hi - length]`` whose interval is free, or None (10 tries)."""
        if hi - length < lo:
            return None
        for _ in range(10):
            k0 = int(rng.integers(lo, hi - length + 1))
            if self.free(k0, k0 + length):
                self.taken.append((k0, k0 + length))
                return k0
        return None


def _length(rng: np.random.Generator, spec: FaultSpec, step_ms: int) -> int:
    minutes = rng.uniform(*spec.minutes)
    return max(spec.min_steps, round(minutes * 60_000 / step_ms))


def _count(rng: np.random.Generator, rate: float, days: float) -> int:
    return int(rng.poisson(rate * days)) if rate > 0 else 0


def plan_device(
    *,
    seed: int,
    device_index: int,
    window: Window,
    config: FaultConfig,
    n_sensors: int,
    battery_powered: bool,
    firmware_versions: tuple[str, ...],
    firmware_version: str,
    scale: Callable[[int, int], float],
    value_at: Callable[[int, int], float],
    limits: tuple[np.ndarray, np.ndarray],
) -> DevicePlan:
    """Plan faults and lifecycle changes of one device.

    ``scale(sensor, k)`` is the local scale of a sensor around step ``k`` and
    ``value_at(sensor, k)`` its noise-free value there (see :mod:`.faults`);
    ``limits`` the sensors' (min_value, max_value) arrays. A level shift or drift goes
    the way that keeps the sensor inside its range, and a dip that would hit the floor
    is dropped, so no fault is hidden by saturation.
    """
    rng = np.random.default_rng([seed, STREAM_FAULTS, device_index])
    n = window.n_steps
    days = (window.end_ms - window.start_ms) / DAY_MS
    lead_ms = int(rng.integers(DAY_MS // 1000, 60 * DAY_MS // 1000)) * 1000
    provisioned = window.start_ms - lead_ms
    activated = provisioned + int(rng.uniform(0.1, 0.9) * lead_ms) // 1000 * 1000
    slots = _Slots()

    decommission = None
    if rng.random() < 1 - math.exp(-LIFECYCLE_RATES["decommission"] * days) and n > 4:
        k = int(rng.integers(n // 4, n))
        decommission = (k, DECOMMISSION_REASONS[int(rng.integers(len(DECOMMISSION_REASONS)))])
    limit = decommission[0] if decommission else n  # nothing happens from here on

    maintenance = []
    for _ in range(_count(rng, LIFECYCLE_RATES["maintenance"], days)):
        length = max(1, round(rng.uniform(*MAINTENANCE_MINUTES) * 60_000 / window.step_ms))
        k0 = slots.place(rng, length, 1, limit - 1)
        reason = MAINTENANCE_REASONS[int(rng.integers(len(MAINTENANCE_REASONS)))]
        if k0 is not None:
            maintenance.append((k0, k0 + length, reason))

    faults: list[Fault] = []
    drain = None
    if battery_powered and _count(rng, config.rate("battery_drain"), days):
        falling = _length(rng, SPECS["battery_drain"], window.step_ms)
        flat = _length(rng, DRAINED_OFFLINE, window.step_ms)
        k0 = slots.place(rng, falling + flat, GUARD, limit - GUARD)
        if k0 is not None:
            drain = (k0, k0 + falling, k0 + falling + flat)
            faults.append(Fault("battery_drain", -1, k0, k0 + falling))
            faults.append(Fault("offline", -1, k0 + falling, k0 + falling + flat))
    for _ in range(_count(rng, config.rate("offline"), days)):
        length = _length(rng, SPECS["offline"], window.step_ms)
        k0 = slots.place(rng, length, GUARD, limit - GUARD)
        if k0 is not None:
            faults.append(Fault("offline", -1, k0, k0 + length))

    for kind in SENSOR_FAULTS:
        spec = SPECS[kind]
        for _ in range(_count(rng, config.rate(kind), days)):
            sensor = int(rng.integers(n_sensors))
            length = _length(rng, spec, window.step_ms)
            size = rng.uniform(*spec.scales) * config.magnitude
            sign = 1.0 if rng.random() < 0.5 else -1.0
            k0 = slots.place(rng, length, GUARD, limit - GUARD)
            if k0 is None:
                continue
            k1 = k0 + length
            if kind == "spike":
                value = size * scale(sensor, k0)
            elif kind == "dip":
                local = scale(sensor, k0)
                value = -size * local
                if value_at(sensor, k0) + value < limits[0][sensor] + local:
                    slots.taken.pop()  # it would saturate at the floor and hide: skip it
                    continue
            elif kind in ("level_shift", "drift"):
                k = k0 if kind == "level_shift" else k1 - 1
                value = sign * size * scale(sensor, k)
                if not limits[0][sensor] < value_at(sensor, k) + value < limits[1][sensor]:
                    value = -value
            elif kind == "noise_burst":
                value = size * scale(sensor, k0)
                ends = (value_at(sensor, k0), value_at(sensor, k1 - 1))
                if any(not limits[0][sensor] < v + d * value < limits[1][sensor]
                       for v in ends for d in (-1.5, 1.5)):  # fmt: skip
                    slots.taken.pop()  # mostly saturated noise would look flat: skip it
                    continue
            elif kind == "stuck":
                value = value_at(sensor, k0)
            else:  # dropout
                value = 0.0
            faults.append(Fault(kind, sensor, k0, k1, float(value)))

    relocations = []
    for _ in range(_count(rng, LIFECYCLE_RATES["relocation"], days)):
        k = int(rng.integers(1, max(limit, 2)))
        floor = int(rng.integers(8))
        where = {
            "building": f"B{int(rng.integers(1, 6))}",
            "floor": floor,
            "room": f"R{floor}{int(rng.integers(1, 40)):02d}",
        }
        if k < limit and not slots.inside(k):
            relocations.append((k, where))
    firmware = []
    version = firmware_version
    for k in sorted(
        int(rng.integers(1, max(limit, 2)))
        for _ in range(_count(rng, LIFECYCLE_RATES["firmware"], days))
    ):
        if k >= limit or slots.inside(k) or any(k == r for r, _ in relocations):
            continue
        version = _next_version(version, firmware_versions)
        firmware.append((k, version))

    faults.sort(key=lambda f: f.k0)
    numbered = tuple(
        Fault(f.kind, f.sensor, f.k0, f.k1, f.value, number) for number, f in enumerate(faults)
    )
    return DevicePlan(
        faults=numbered,
        maintenance=tuple(sorted(maintenance)),
        relocations=tuple(sorted(relocations, key=lambda r: r[0])),
        firmware_updates=tuple(firmware),
        decommission=decommission,
        drain=drain,
        provisioned_ms=provisioned,
        activated_ms=activated,
    )


def _next_version(current: str, versions: tuple[str, ...]) -> str:
    """The next version in the catalogue, or a patch bump past the newest."""
    if current in versions and versions.index(current) + 1 < len(versions):
        return versions[versions.index(current) + 1]
    major, minor, patch = (current.split(".") + ["0", "0"])[:3]
    return f"{major}.{minor}.{int(patch) + 1 if patch.isdigit() else 1}"


def local_window_hours(window: Window) -> float:
    """Length of the ``GUARD`` neighbourhood in hours (weather matters more when long)."""
    return GUARD * window.step_ms / HOUR_MS
