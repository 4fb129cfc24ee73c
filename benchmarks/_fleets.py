"""What several benchmarks share: a 4-sensor fleet and the machine's load, printed with results.

The built-in device types carry two sensors each; the issues' benchmarks ask for four per
device, so each type gets a redundant second set of its sensors (``*_02``).
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import pandas as pd

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


def machine_busy_seconds() -> float:
    """CPU seconds every core of the machine has spent busy so far (Linux /proc/stat; NaN
    elsewhere): what a phase took of the whole machine, servers included."""
    try:
        with open("/proc/stat") as stat:
            fields = [int(f) for f in stat.readline().split()[1:]]
    except OSError:
        return float("nan")
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux /proc; NaN elsewhere)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


GRID_SENSORS = ["temperature", "humidity", "pressure", "co2"]


def grid_readings(
    n_rows: int,
    n_devices: int,
    rng: np.random.Generator,
    *,
    freq: str,
    prefix: str = "dev-",
    decimals: int | None = None,
) -> pd.DataFrame:
    """``n_rows`` readings of ``n_devices`` x 4 sensors (device ids ``prefix`` + number),
    one every ``freq`` per sensor from 2026-01-01, values ~ N(20, 5)."""
    series = n_devices * len(GRID_SENSORS)
    per_series = -(-n_rows // series)
    ts = pd.date_range("2026-01-01", periods=per_series, freq=freq, tz="UTC")
    values = rng.normal(20, 5, series * per_series)
    frame = pd.DataFrame(
        {
            "device_id": np.repeat(
                [f"{prefix}{i:04d}" for i in range(n_devices)], len(GRID_SENSORS) * per_series
            ),
            "sensor_id": np.tile(np.repeat(GRID_SENSORS, per_series), n_devices),
            "ts": np.tile(ts.astype("datetime64[ms, UTC]"), series),
            "value": values if decimals is None else values.round(decimals),
            "quality": np.full(series * per_series, 100, dtype="int64"),
            "status": "ok",
        }
    )
    return frame.iloc[:n_rows].reset_index(drop=True)
