"""What several benchmarks share: a 4-sensor fleet and the machine's load, printed with results.

The built-in device types carry two sensors each; the issues' benchmarks ask for four per
device, so each type gets a redundant second set of its sensors (``*_02``).
"""

from __future__ import annotations

import dataclasses
import os

from iotlab.simulate import DEFAULT_DEVICE_TYPES, DeviceType


def four_sensor_types() -> list[DeviceType]:
    """The built-in types, each with a second copy of its sensors: 4 sensors per device."""
    return [
        dataclasses.replace(
            kind,
            name=f"{kind.name}_x2",
            sensors={
                **kind.sensors,
                **{s.replace("_01", "_02"): m for s, m in kind.sensors.items()},
            },
        )
        for kind in DEFAULT_DEVICE_TYPES.values()
    ]


def load_average() -> str:
    """The 1/5/15-minute load averages, so numbers from a shared machine read in context."""
    return (
        "load average "
        + ", ".join(f"{v:.2f}" for v in os.getloadavg())
        + (f" ({os.cpu_count()} cores)")
    )
