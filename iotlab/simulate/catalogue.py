"""Device types the simulator knows: their sensors and the signal model of each.

A sensor's value is a linear *factor model* on a few device-level factors that are
functions of time (see :mod:`iotlab.simulate.signals`)::

    value(t) = level + sum_f loading_f * factor_f(t) + trend * days + noise_sd * eps(t)

Sensors of one device share the factors, so loadings of opposite sign make them
anti-correlated (temperature up, relative humidity down) and loadings of the same
sign make them move together (CO2 and PM2.5 with occupancy). Each device draws its
own level and loadings around the type's values, so no two devices look alike.

Examples
--------
>>> SENSOR_PREFIXES["temp"]
('temperature', '°C', -40.0, 125.0)
>>> sorted(DEFAULT_DEVICE_TYPES)
['air_quality', 'environmental', 'machine_monitor', 'power_meter']
>>> DEFAULT_DEVICE_TYPES["environmental"].sensor_ids
('humidity_01', 'temp_01')
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import pandas as pd

from iotlab.errors import ValidationError
from iotlab.sensors import SENSOR_PREFIXES, sensor_prefix

__all__ = [
    "DEFAULT_DEVICE_TYPES",
    "FACTORS",
    "SENSOR_PREFIXES",
    "DeviceType",
    "SignalModel",
    "sensor_prefix",
]

#: Factors a signal can load on. ``daily``: cosine peaking at the type's ``peak_hour``
#: (-1..1); ``occupancy``: office hours on weekdays (0..1, low at weekends);
#: ``shift``: two industrial shifts 06-22 on weekdays, one on Saturday (0..1);
#: ``weather``: a smooth random process per device (mean 0, sd 1).
FACTORS: tuple[str, ...] = ("daily", "occupancy", "shift", "weather")


@dataclass(frozen=True)
class SignalModel:
    """How one sensor's value is made from the device's factors.

    Parameters
    ----------
    level
        Mean value, in the sensor's unit.
    loadings
        Factor name (see :data:`FACTORS`) -> weight, in the sensor's unit.
    noise_sd
        Standard deviation of the white measurement noise; must be > 0 (a sensor
        that repeats a value exactly is a *stuck* fault).
    level_sd
        Device-to-device standard deviation of ``level``.
    loading_sd
        Device-to-device relative standard deviation of every loading.
    trend_sd
        Device-to-device standard deviation of a slow linear trend, per day.
    """

    level: float
    loadings: Mapping[str, float] = field(default_factory=dict)
    noise_sd: float = 0.1
    level_sd: float = 0.0
    loading_sd: float = 0.1
    trend_sd: float = 0.0

    def __post_init__(self) -> None:
        unknown = sorted(set(self.loadings) - set(FACTORS))
        if unknown:
            raise ValidationError(
                f"unknown factor(s) {unknown}; known: {list(FACTORS)}", field="loadings"
            )
        if not self.noise_sd > 0:
            raise ValidationError("must be > 0", field="noise_sd")
        for name in ("level_sd", "loading_sd", "trend_sd"):
            if not getattr(self, name) >= 0:
                raise ValidationError("must be >= 0", field=name)


@dataclass(frozen=True)
class DeviceType:
    """A kind of device: its sensors, their signals, and how it reports.

    Parameters
    ----------
    name
        Identifier, e.g. ``"environmental"``.
    sensors
        Sensor id (``"temp_01"``; the prefix must be in :data:`SENSOR_PREFIXES`) ->
        :class:`SignalModel`.
    manufacturer, models, firmware_versions
        Catalogue facts; each device picks one model and one firmware version, and a
        firmware update moves to the next version in the list.
    heartbeat_interval
        Period of the device's heartbeats (``device_metrics`` rows), a pandas
        Timedelta string.
    battery_powered
        Battery devices discharge slowly and can suffer ``battery_drain`` faults;
        mains devices report a constant 100 %.
    peak_hour
        UTC hour at which the ``daily`` factor peaks.
    activity
        The factor that drives the device's CPU load (``"occupancy"`` or ``"shift"``).

    Examples
    --------
    >>> greenhouse = DeviceType(
    ...     "greenhouse",
    ...     {"temp_01": SignalModel(26.0, {"daily": 6.0}, noise_sd=0.1),
    ...      "light_01": SignalModel(20000.0, {"daily": 18000.0}, noise_sd=200.0)},
    ...     heartbeat_interval="10min",
    ... )
    >>> greenhouse.sensor_ids
    ('light_01', 'temp_01')
    """

    name: str
    sensors: Mapping[str, SignalModel]
    manufacturer: str = "Generic"
    models: tuple[str, ...] = ("G1",)
    firmware_versions: tuple[str, ...] = ("1.0.0",)
    heartbeat_interval: str = "5min"
    battery_powered: bool = True
    peak_hour: float = 15.0
    activity: str = "occupancy"

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValidationError("must be a non-empty string", field="name")
        if not self.sensors:
            raise ValidationError(f"device type {self.name!r} has no sensors", field="sensors")
        for sensor_id, model in self.sensors.items():
            sensor_prefix(sensor_id)
            if not isinstance(model, SignalModel):
                raise ValidationError(f"{sensor_id!r} must map to a SignalModel", field="sensors")
        if not self.models or not self.firmware_versions:
            raise ValidationError("needs at least one model and firmware version", field="models")
        try:
            interval = pd.Timedelta(self.heartbeat_interval)
        except (TypeError, ValueError) as exc:
            raise ValidationError(
                f"cannot parse {self.heartbeat_interval!r}", field="heartbeat_interval"
            ) from exc
        if interval < pd.Timedelta("1s"):
            raise ValidationError("must be at least 1s", field="heartbeat_interval")
        if self.activity not in FACTORS:
            raise ValidationError(f"must be one of {list(FACTORS)}", field="activity")

    @property
    def sensor_ids(self) -> tuple[str, ...]:
        """Sensor ids in sorted order (the order rows come out in)."""
        return tuple(sorted(self.sensors))


def _default_types() -> dict[str, DeviceType]:
    environmental = DeviceType(
        "environmental",
        {
            # Indoor air: warmer in the afternoon and when occupied; humidity falls
            # as temperature rises, so the two are anti-correlated.
            "temp_01": SignalModel(
                21.5,
                {"daily": 1.8, "occupancy": 1.0, "weather": 0.5},
                noise_sd=0.08,
                level_sd=1.0,
                trend_sd=0.03,
            ),
            "humidity_01": SignalModel(
                45.0,
                {"daily": -5.0, "occupancy": -2.0, "weather": -2.5},
                noise_sd=0.4,
                level_sd=4.0,
                trend_sd=0.1,
            ),
        },
        manufacturer="Nordic Sense",
        models=("ES-200", "ES-300"),
        firmware_versions=("2.1.0", "2.2.0", "2.3.1"),
        heartbeat_interval="5min",
        battery_powered=True,
        peak_hour=15.0,
    )
    machine = DeviceType(
        "machine_monitor",
        {
            # Bearing temperature and vibration rise together while the machine runs.
            "temp_01": SignalModel(
                38.0,
                {"shift": 16.0, "daily": 1.0, "weather": 0.6},
                noise_sd=0.2,
                level_sd=3.0,
                trend_sd=0.05,
            ),
            "vibration_01": SignalModel(
                1.5,
                {"shift": 3.5, "weather": 0.1},
                noise_sd=0.1,
                level_sd=0.2,
                trend_sd=0.01,
            ),
        },
        manufacturer="Hallberg Industrial",
        models=("VM-10", "VM-20X"),
        firmware_versions=("4.0.2", "4.1.0"),
        heartbeat_interval="1min",
        battery_powered=False,
        peak_hour=14.0,
        activity="shift",
    )
    power = DeviceType(
        "power_meter",
        {
            # Building load follows office hours; the supply voltage sags under load.
            "power_01": SignalModel(
                14.0,
                {"occupancy": 40.0, "daily": 3.0, "weather": 2.0},
                noise_sd=0.8,
                level_sd=4.0,
                loading_sd=0.25,
                trend_sd=0.05,
            ),
            "voltage_01": SignalModel(
                231.0,
                {"occupancy": -3.0, "daily": -0.5},
                noise_sd=0.3,
                level_sd=1.5,
            ),
        },
        manufacturer="Voltaris",
        models=("PM-3P", "PM-1P"),
        firmware_versions=("1.8.0", "1.9.2", "2.0.0"),
        heartbeat_interval="1min",
        battery_powered=False,
        peak_hour=13.0,
    )
    air = DeviceType(
        "air_quality",
        {
            # CO2 builds up with people in the room; particles follow outdoor air
            # (traffic peaks in the day, weather) and indoor activity.
            "co2_01": SignalModel(
                430.0,
                {"occupancy": 520.0, "weather": 15.0},
                noise_sd=10.0,
                level_sd=15.0,
                loading_sd=0.2,
            ),
            "pm25_01": SignalModel(
                14.0,
                {"daily": 3.0, "weather": 1.5, "occupancy": 4.0},
                noise_sd=0.7,
                level_sd=2.0,
            ),
        },
        manufacturer="Clearbreath",
        models=("AQ-5",),
        firmware_versions=("0.9.4", "1.0.0"),
        heartbeat_interval="5min",
        battery_powered=True,
        peak_hour=15.0,
    )
    return {t.name: t for t in (environmental, machine, power, air)}


#: The built-in device types, by name.
DEFAULT_DEVICE_TYPES: Mapping[str, DeviceType] = MappingProxyType(_default_types())
