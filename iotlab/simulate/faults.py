"""Fault kinds, their configuration, and how a planned fault changes the data.

A fault is planned once for the whole simulation window (see
:mod:`iotlab.simulate.plan`) as a range of reading-grid steps ``[k0, k1)``, so any
chunk of the window applies exactly its part of it. Magnitudes are multiples of a
*local scale*: the sensor's noise plus the spread of its deterministic signal
around the fault, so a fault stands out of its neighbourhood (robust z > 5) on a
quiet night sensor and on a busy office one alike.

Kinds (``FAULT_KINDS``), with how each one shows in the data:

- ``spike`` / ``dip``: one reading raised / lowered by 10-15 local scales (robust z > 5);
  a dip that would saturate at the sensor's minimum is not planned.
- ``level_shift``: a constant offset of 8-12 scales for 1-6 h (median jump).
- ``drift``: an offset growing linearly to 10-15 scales over 6-24 h, then recalibrated.
- ``stuck``: the sensor repeats one value for 1-6 h (zero spread).
- ``noise_burst``: extra noise of 6-10 scales for 30 min-3 h; quality drops by 30.
- ``dropout``: one sensor's readings are missing for 10 min-4 h.
- ``offline``: no readings and no heartbeats from the device for 30 min-12 h.
- ``battery_drain``: a battery device's charge falls to 0 over 4-24 h; then it goes
  offline (a separate ``offline`` label) until the battery is replaced.

Examples
--------
>>> FaultConfig().rate("spike")
0.4
>>> FaultConfig(kinds=["dropout"]).rate("spike")
0.0
>>> FaultConfig(rates={"spikes": 1.0})
Traceback (most recent call last):
...
iotlab.errors.ValidationError: rates: unknown fault kind(s) ['spikes']; known: spike, ...
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from iotlab.errors import ValidationError

__all__ = [
    "DEFAULT_RATES",
    "DEVICE_FAULTS",
    "FAULT_KINDS",
    "SENSOR_FAULTS",
    "FaultConfig",
    "FaultSpec",
]


@dataclass(frozen=True)
class FaultSpec:
    """Shape of one fault kind: duration range (minutes), minimum length in steps and the
    range of its magnitude in local scales."""

    minutes: tuple[float, float]
    min_steps: int
    scales: tuple[float, float] = (0.0, 0.0)


SPECS: Mapping[str, FaultSpec] = MappingProxyType(
    {
        "spike": FaultSpec((0, 0), 1, (10.0, 15.0)),
        "dip": FaultSpec((0, 0), 1, (10.0, 15.0)),
        "level_shift": FaultSpec((60, 360), 3, (8.0, 12.0)),
        "drift": FaultSpec((360, 1440), 6, (10.0, 15.0)),
        "stuck": FaultSpec((60, 360), 4),
        "noise_burst": FaultSpec((30, 180), 6, (6.0, 10.0)),
        "dropout": FaultSpec((10, 240), 2),
        "offline": FaultSpec((30, 720), 2),
        "battery_drain": FaultSpec((240, 1440), 4),
    }
)
#: Offline time after a battery ran flat, before someone replaces it.
DRAINED_OFFLINE = FaultSpec((60, 1440), 2)

SENSOR_FAULTS: tuple[str, ...] = (
    "spike",
    "dip",
    "level_shift",
    "drift",
    "stuck",
    "noise_burst",
    "dropout",
)
DEVICE_FAULTS: tuple[str, ...] = ("offline", "battery_drain")
FAULT_KINDS: tuple[str, ...] = SENSOR_FAULTS + DEVICE_FAULTS

#: Expected faults per device per day.
DEFAULT_RATES: Mapping[str, float] = MappingProxyType(
    {
        "spike": 0.4,
        "dip": 0.2,
        "level_shift": 0.05,
        "drift": 0.03,
        "stuck": 0.05,
        "noise_burst": 0.05,
        "dropout": 0.1,
        "offline": 0.04,
        "battery_drain": 0.01,
    }
)

#: Quality (0..100) lost while a device notices something is wrong.
QUALITY_PENALTY = MappingProxyType({"noise_burst": 30, "maintenance": 40})


@dataclass(frozen=True)
class FaultConfig:
    """Which faults to inject and how often.

    Parameters
    ----------
    rates
        Fault kind -> expected occurrences per device per day; kinds not named keep
        their :data:`DEFAULT_RATES`.
    kinds
        If given, only these kinds are injected (the others get rate 0).
    magnitude
        Multiplies every fault's size (1.0 keeps each fault clearly visible).

    Examples
    --------
    >>> FaultConfig.none().rate("offline")
    0.0
    """

    rates: Mapping[str, float] = field(default_factory=dict)
    kinds: Iterable[str] | None = None
    magnitude: float = 1.0

    def __post_init__(self) -> None:
        unknown = sorted(set(self.rates) - set(FAULT_KINDS))
        if unknown:
            raise ValidationError(
                f"unknown fault kind(s) {unknown}; known: {', '.join(FAULT_KINDS)}",
                field="rates",
            )
        for kind, rate in self.rates.items():
            if not (isinstance(rate, int | float) and math.isfinite(rate) and rate >= 0):
                raise ValidationError(f"rate of {kind!r} must be a number >= 0", field="rates")
        if self.kinds is not None:
            kinds = tuple(self.kinds)
            unknown = sorted(set(kinds) - set(FAULT_KINDS))
            if unknown:
                raise ValidationError(
                    f"unknown fault kind(s) {unknown}; known: {', '.join(FAULT_KINDS)}",
                    field="kinds",
                )
            object.__setattr__(self, "kinds", kinds)
        if not (math.isfinite(self.magnitude) and self.magnitude > 0):
            raise ValidationError("must be > 0", field="magnitude")

    @classmethod
    def none(cls) -> FaultConfig:
        """A configuration that injects no faults."""
        return cls(kinds=())

    def rate(self, kind: str) -> float:
        """Expected occurrences of ``kind`` per device per day."""
        if self.kinds is not None and kind not in self.kinds:
            return 0.0
        return float(self.rates.get(kind, DEFAULT_RATES[kind]))
