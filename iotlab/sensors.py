"""The sensor catalogue: what a sensor id says about the sensor.

A sensor id is ``<prefix>_NN`` (``temp_01``); its prefix names the sensor type, unit and
physical range. Provisioning infers a sensor's spec from its id and the simulator draws
values within the range, so the table belongs to neither: both import it from here.

Examples
--------
>>> SENSOR_PREFIXES["temp"]
('temperature', '°C', -40.0, 125.0)
>>> sensor_prefix("humidity_02")
'humidity'
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType

from iotlab.errors import ValidationError

__all__ = ["SENSOR_PREFIXES", "sensor_prefix"]

_SENSOR_ID = re.compile(r"^([a-z][a-z0-9]*)_(\d{2})$")

#: Sensor id prefix -> (sensor_type, unit, min_value, max_value). Provisioning infers a
#: sensor's type from its id (``temp_01`` -> temperature), so this table is public.
SENSOR_PREFIXES: Mapping[str, tuple[str, str, float, float]] = MappingProxyType(
    {
        "temp": ("temperature", "°C", -40.0, 125.0),
        "humidity": ("humidity", "%RH", 0.0, 100.0),
        "vibration": ("vibration", "mm/s", 0.0, 50.0),
        "power": ("power", "kW", 0.0, 500.0),
        "voltage": ("voltage", "V", 0.0, 400.0),
        "current": ("current", "A", 0.0, 1000.0),
        "co2": ("co2", "ppm", 0.0, 5000.0),
        "pm25": ("pm25", "µg/m³", 0.0, 1000.0),
        "pressure": ("pressure", "hPa", 300.0, 1100.0),
        "light": ("light", "lx", 0.0, 100000.0),
    }
)


def sensor_prefix(sensor_id: str) -> str:
    """The prefix of a sensor id, validated against :data:`SENSOR_PREFIXES`.

    Examples
    --------
    >>> sensor_prefix("co2_01")
    'co2'
    >>> sensor_prefix("foo_01")
    Traceback (most recent call last):
    ...
    iotlab.errors.ValidationError: sensor_id: unknown prefix 'foo' in 'foo_01' (known: temp, ...)
    """
    match = _SENSOR_ID.match(sensor_id)
    if match is None:
        raise ValidationError(
            f"{sensor_id!r} is not of the form '<prefix>_NN', e.g. 'temp_01'", field="sensor_id"
        )
    prefix = match.group(1)
    if prefix not in SENSOR_PREFIXES:
        known = ", ".join(SENSOR_PREFIXES)
        raise ValidationError(
            f"unknown prefix {prefix!r} in {sensor_id!r} (known: {known})", field="sensor_id"
        )
    return prefix
