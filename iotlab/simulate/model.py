"""Per-device parameters, drawn once per fleet, and the noise-free signal they make.

Device ``i`` draws everything from its own generator ``(seed, STREAM_DEVICE, i)``, so
the first ten devices of ``Fleet(20, seed)`` are the devices of ``Fleet(10, seed)``.
Devices of one type are kept together in a :class:`TypeGroup` of arrays, so the
signal of a whole group is computed in a few numpy operations.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, cast

import numpy as np
import pandas as pd

from iotlab.simulate.catalogue import FACTORS, SENSOR_PREFIXES, DeviceType, sensor_prefix
from iotlab.simulate.signals import DAY_MS, STREAM_DEVICE, daily, occupancy, shift

__all__ = ["TypeGroup", "build_fleet"]

#: Sensors are calibrated in the year before this date (a fleet has no clock of its own).
CALIBRATION_REFERENCE = pd.Timestamp("2025-12-01", tz="UTC")
BUILDINGS = 5
FLOORS = 8


@dataclass(frozen=True)
class TypeGroup:
    """The devices of one type, as arrays (rows in ``fleet.devices`` order)."""

    device_type: DeviceType
    positions: np.ndarray  # row of each device in fleet.devices (sorted by device_id)
    device_index: np.ndarray  # creation index: the key of the device's random streams
    level: np.ndarray  # (n, sensors)
    loadings: np.ndarray  # (n, sensors, factors)
    trend: np.ndarray  # (n, sensors), unit per day
    peak_hour: np.ndarray  # (n,)
    cpu_base: np.ndarray
    memory_base: np.ndarray
    battery_start: np.ndarray
    battery_rate: np.ndarray  # % per day
    signal_base: np.ndarray  # dBm
    noise_sd: np.ndarray  # (sensors,)
    lower: np.ndarray  # (sensors,) sensor min_value
    upper: np.ndarray  # (sensors,) sensor max_value

    @property
    def sensor_ids(self) -> tuple[str, ...]:
        return self.device_type.sensor_ids

    def subset(self, rows: np.ndarray) -> TypeGroup:
        """The group restricted to ``rows`` (positions within this group)."""
        per_device = (
            "positions", "device_index", "level", "loadings", "trend", "peak_hour",
            "cpu_base", "memory_base", "battery_start", "battery_rate", "signal_base",
        )  # fmt: skip
        return replace(self, **{name: getattr(self, name)[rows] for name in per_device})

    def signal(self, t_ms: np.ndarray, weather: np.ndarray, origin_ms: int) -> np.ndarray:
        """Noise-free values, shape ``(devices, sensors, len(t_ms))``.

        ``weather`` is ``(devices, len(t_ms))``; the trend counts days from ``origin_ms``.
        """
        days = (t_ms - origin_ms) / DAY_MS
        out = self.level[:, :, None] + self.trend[:, :, None] * days[None, None, :]
        factors = {
            "daily": lambda: daily(t_ms, self.peak_hour),
            "occupancy": lambda: occupancy(t_ms)[None, :],
            "shift": lambda: shift(t_ms)[None, :],
            "weather": lambda: weather,
        }
        for f, name in enumerate(FACTORS):
            weights = self.loadings[:, :, f]
            if not weights.any():
                continue  # most types load on two or three factors: skip the rest
            values = factors[name]()
            for s in range(weights.shape[1]):
                if weights[:, s].any():
                    out[:, s, :] += weights[:, s, None] * values
        return out


def _uuid(rng: np.random.Generator) -> str:
    high, low = (int(x) for x in rng.integers(0, 2**64, size=2, dtype=np.uint64))
    return str(uuid.UUID(int=(high << 64) | low, version=4))


def build_fleet(
    n_devices: int, seed: int, types: Sequence[DeviceType]
) -> tuple[pd.DataFrame, pd.DataFrame, list[TypeGroup]]:
    """Draw ``n_devices`` devices: the devices and sensors frames and the type groups."""
    rows: list[dict[str, object]] = []
    sensor_rows: list[dict[str, object]] = []
    params: list[dict[str, Any]] = []  # per device: its DeviceType and drawn numbers
    for i in range(n_devices):
        rng = np.random.default_rng([seed, STREAM_DEVICE, i])
        device_id = _uuid(rng)
        kind = types[i % len(types)]  # round robin: even small fleets show every type
        floor = int(rng.integers(FLOORS))
        location = {
            "building": f"B{int(rng.integers(1, BUILDINGS + 1))}",
            "floor": floor,
            "room": f"R{floor}{int(rng.integers(1, 40)):02d}",
        }
        rows.append(
            {
                "device_id": device_id,
                "device_type": kind.name,
                "location": location,
                "manufacturer": kind.manufacturer,
                "model": kind.models[int(rng.integers(len(kind.models)))],
                "firmware_version": kind.firmware_versions[
                    int(rng.integers(len(kind.firmware_versions)))
                ],
                "heartbeat_interval": kind.heartbeat_interval,
            }
        )
        levels, loadings, trends = [], [], []
        for sensor_id in kind.sensor_ids:
            model = kind.sensors[sensor_id]
            levels.append(model.level + model.level_sd * rng.standard_normal())
            spread = np.clip(1 + model.loading_sd * rng.standard_normal(len(FACTORS)), 0.3, 1.7)
            loadings.append(
                [model.loadings.get(f, 0.0) * spread[j] for j, f in enumerate(FACTORS)]
            )
            trends.append(model.trend_sd * rng.standard_normal())
            sensor_type, unit, lower, upper = SENSOR_PREFIXES[sensor_prefix(sensor_id)]
            calibrated = CALIBRATION_REFERENCE - pd.Timedelta(
                seconds=int(rng.integers(0, 365 * 86400))
            )
            sensor_rows.append(
                {
                    "device_id": device_id,
                    "sensor_id": sensor_id,
                    "sensor_type": sensor_type,
                    "unit": unit,
                    "min_value": lower,
                    "max_value": upper,
                    "calibration_date": calibrated,
                }
            )
        params.append(
            {
                "type": kind,
                "index": i,
                "level": levels,
                "loadings": loadings,
                "trend": trends,
                "peak_hour": kind.peak_hour + 0.75 * rng.standard_normal(),
                "cpu_base": rng.uniform(5, 25),
                "memory_base": rng.uniform(25, 55),
                "battery_start": rng.uniform(60, 100),
                "battery_rate": rng.uniform(0.2, 1.0),
                "signal_base": rng.uniform(-85, -55),
            }
        )
    devices = pd.DataFrame(rows).sort_values("device_id", ignore_index=False)
    order = devices.index.to_numpy()  # creation index of each row in id order
    devices = devices.reset_index(drop=True)
    sensors = pd.DataFrame(sensor_rows).sort_values(["device_id", "sensor_id"], ignore_index=True)
    sensors["calibration_date"] = sensors["calibration_date"].astype("datetime64[ms, UTC]")
    sensors["min_value"] = sensors["min_value"].astype("float64")
    sensors["max_value"] = sensors["max_value"].astype("float64")
    return devices, sensors, _groups(params, order)


def _groups(params: list[dict[str, Any]], order: np.ndarray) -> list[TypeGroup]:
    groups = []
    kinds = [cast(DeviceType, p["type"]) for p in params]
    names = sorted({k.name for k in kinds})
    for name in names:
        positions = np.array(
            [pos for pos, i in enumerate(order) if kinds[i].name == name], dtype=np.int64
        )
        members = [params[order[pos]] for pos in positions]
        kind = kinds[order[positions[0]]]
        models = [kind.sensors[s] for s in kind.sensor_ids]

        def column(key: str, members: list[dict[str, Any]] = members) -> np.ndarray:
            return np.array([m[key] for m in members], dtype=np.float64)

        bounds = np.array([SENSOR_PREFIXES[sensor_prefix(s)][2:] for s in kind.sensor_ids])
        groups.append(
            TypeGroup(
                device_type=kind,
                positions=positions,
                device_index=np.array([m["index"] for m in members], dtype=np.int64),
                level=column("level"),
                loadings=column("loadings"),
                trend=column("trend"),
                peak_hour=column("peak_hour"),
                cpu_base=column("cpu_base"),
                memory_base=column("memory_base"),
                battery_start=column("battery_start"),
                battery_rate=column("battery_rate"),
                signal_base=column("signal_base"),
                noise_sd=np.array([m.noise_sd for m in models]),
                lower=bounds[:, 0].astype(np.float64),
                upper=bounds[:, 1].astype(np.float64),
            )
        )
    return groups
