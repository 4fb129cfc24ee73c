"""Value objects carried by lifecycle events: a device's ``Location`` and a ``SensorSpec``.

Both are immutable so that events and states built from them are too. ``sensor_spec``
turns what a person types (``"temp_01"``, a dict, a spec) into a ``SensorSpec``; a bare
id takes its type, unit and range from the catalogue, :data:`iotlab.sensors.SENSOR_PREFIXES`.

Examples
--------
>>> loc = Location.parse("HQ/2/201")
>>> loc
Location(building='HQ', floor=2, room='201')
>>> loc == {"building": "HQ", "floor": 2, "room": "201"}
True
>>> sensor_spec({"sensor_id": "t1", "sensor_type": "temperature", "unit": "C",
...              "min_value": -40, "max_value": 85}).unit
'C'
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd

from iotlab._time import utc_timestamp
from iotlab.errors import ValidationError
from iotlab.sensors import SENSOR_PREFIXES

__all__ = ["Location", "SensorSpec", "sensor_spec"]

_SCALARS = (str, int, float, bool, type(None))


class Location(Mapping[str, Any]):
    """Where a device is: an immutable mapping such as ``building``, ``floor``, ``room``.

    Any string keys with scalar values are kept (the simulator uses building/floor/room);
    it compares equal to a plain dict with the same items and prints as ``HQ/2/201``.
    """

    __slots__ = ("_items",)

    def __init__(self, items: Mapping[str, Any]) -> None:
        if not isinstance(items, Mapping) or not items:
            raise ValidationError(
                f"must be a non-empty mapping such as {{'building': ..., 'floor': ..., "
                f"'room': ...}} or 'building/floor/room', got {items!r}",
                field="location",
            )
        bad = [
            k for k, v in items.items() if not isinstance(k, str) or not isinstance(v, _SCALARS)
        ]
        if bad:
            raise ValidationError(
                f"keys must be text and values scalars; bad keys {bad}", field="location"
            )
        self._items = tuple(items.items())

    @classmethod
    def parse(cls, value: Location | Mapping[str, Any] | str) -> Location:
        """A ``Location`` from a mapping, another ``Location`` or ``"building/floor/room"``."""
        if isinstance(value, Location):
            return value
        if isinstance(value, str):
            parts = [p.strip() for p in value.split("/")]
            if not all(parts) or len(parts) > 3:
                raise ValidationError(
                    f"cannot read {value!r}: expected 'building', 'building/floor' or "
                    "'building/floor/room'",
                    field="location",
                )
            names = ("building", "floor", "room")[: len(parts)]
            return cls(
                {n: int(p) if n == "floor" and p.isdigit() else p for n, p in zip(names, parts)}
            )
        return cls(value)

    def __getitem__(self, key: str) -> Any:
        for k, v in self._items:
            if k == key:
                return v
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return (k for k, _ in self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return hash(frozenset(self._items))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mapping):
            return dict(self._items) == dict(other.items())
        return NotImplemented

    def __repr__(self) -> str:
        return "Location(" + ", ".join(f"{k}={v!r}" for k, v in self._items) + ")"

    def __str__(self) -> str:
        return "/".join(str(v) for _, v in self._items)

    def to_dict(self) -> dict[str, Any]:
        """A plain dict (for JSON and for users)."""
        return dict(self._items)


@dataclass(frozen=True)
class SensorSpec:
    """What a sensor measures: type, unit, valid range and last calibration."""

    sensor_id: str
    sensor_type: str
    unit: str
    min_value: float
    max_value: float
    calibration_date: pd.Timestamp | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.sensor_id, str) or not self.sensor_id:
            raise ValidationError("must be a non-empty string", field="sensor_id")
        for name in ("min_value", "max_value"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
                raise ValidationError(
                    f"sensor {self.sensor_id}: must be a number, got {value!r}", field=name
                )
            object.__setattr__(self, name, float(value))
        if self.min_value > self.max_value:
            raise ValidationError(
                f"sensor {self.sensor_id}: min_value {self.min_value} > max_value "
                f"{self.max_value}",
                field="min_value",
            )
        if self.calibration_date is not None:
            ts = utc_timestamp(self.calibration_date, field="calibration_date").floor("ms")
            object.__setattr__(self, "calibration_date", ts)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (calibration date as ISO text)."""
        out = asdict(self)
        out["calibration_date"] = (
            None if self.calibration_date is None else self.calibration_date.isoformat()
        )
        return out


_SPEC_FIELDS = ("sensor_id", "sensor_type", "unit", "min_value", "max_value")


def sensor_spec(value: SensorSpec | Mapping[str, Any] | str) -> SensorSpec:
    """A ``SensorSpec`` from a spec, a dict with the full spec, or a bare id like ``"temp_01"``.

    A bare id's type, unit and range come from the prefix before the last ``_`` looked up
    in :data:`iotlab.sensors.SENSOR_PREFIXES`; a missing field or unknown prefix raises
    ``ValidationError`` naming it.
    """
    if isinstance(value, SensorSpec):
        return value
    if isinstance(value, str):
        return _infer_spec(value)
    if not isinstance(value, Mapping):
        raise ValidationError(f"expected a sensor id or a dict, got {value!r}", field="sensors")
    data = dict(value)
    if set(data) == {"sensor_id"}:
        return _infer_spec(str(data["sensor_id"]))
    missing = [f for f in _SPEC_FIELDS if f not in data]
    if missing:
        raise ValidationError(f"sensor {data.get('sensor_id')!r} lacks {missing}", field="sensors")
    unexpected = sorted(set(data) - {*_SPEC_FIELDS, "calibration_date"})
    if unexpected:
        raise ValidationError(
            f"sensor {data['sensor_id']!r}: unexpected fields {unexpected}", field="sensors"
        )
    return SensorSpec(**data)


def _infer_spec(sensor_id: str) -> SensorSpec:
    prefix = sensor_id.rsplit("_", 1)[0] if "_" in sensor_id else sensor_id
    if prefix not in SENSOR_PREFIXES:
        raise ValidationError(
            f"cannot infer the type of sensor {sensor_id!r}: prefix {prefix!r} is not one of "
            f"{sorted(SENSOR_PREFIXES)}; pass a dict with sensor_type, unit, min_value, "
            "max_value",
            field="sensors",
        )
    sensor_type, unit, low, high = SENSOR_PREFIXES[prefix]
    return SensorSpec(sensor_id, sensor_type, unit, low, high)
