"""Lifecycle events: frozen dataclasses named in the past tense, and their table rows.

Every event carries ``device_id``, ``version`` (its position in the device's stream,
from 1), ``occurred_at`` (tz-aware UTC, millisecond precision, as stored) and
``event_id``. The id is derived from device id and version (uuid5), so replaying the
same history yields the same ids. Payload field names match the simulator's
``sim.events["data"]`` dicts.

Examples
--------
>>> e = DeviceActivated(device_id="d1", version=2, occurred_at="2026-01-01T00:00Z")
>>> e.occurred_at
Timestamp('2026-01-01 00:00:00+0000', tz='UTC')
>>> frame = events_to_frame([e])
>>> frame.loc[0, ["event_type", "data"]].tolist()
['DeviceActivated', '{}']
>>> events_from_frame(frame) == [e]
True
>>> event_from_payload("DeviceRebooted", {}, device_id="d1", version=1,
...                    occurred_at="2026-01-01")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
iotlab.errors.UnknownEventError: unknown event type 'DeviceRebooted' (device d1, version 1); ...
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import MISSING, dataclass, fields
from types import MappingProxyType
from typing import Any

import pandas as pd

from iotlab._time import utc_timestamp
from iotlab.errors import UnknownEventError, ValidationError
from iotlab.history.specs import Location, SensorSpec

__all__ = [
    "EVENT_TYPES",
    "DeviceActivated",
    "DeviceCameOnline",
    "DeviceDecommissioned",
    "DeviceLocationUpdated",
    "DeviceProvisioned",
    "DeviceWentOffline",
    "Event",
    "FirmwareUpdated",
    "MaintenanceEnded",
    "MaintenanceStarted",
    "SensorAdded",
    "SensorRemoved",
    "event_from_payload",
    "events_from_frame",
    "events_to_frame",
]

#: Namespace of the deterministic event ids (uuid5 of "device_id:version").
EVENT_ID_NAMESPACE = uuid.UUID("6f3c1d2e-5b7a-4c1e-9a0f-2d8e4b6a9c10")
_ENVELOPE = ("device_id", "version", "occurred_at", "event_id")


def _utc_ms(value: Any, field: str) -> pd.Timestamp:
    # Fast path for what the store hands back: already UTC, already whole milliseconds.
    if (
        isinstance(value, pd.Timestamp)
        and str(value.tz) == "UTC"
        and value.nanosecond == 0
        and (value.microsecond % 1000 == 0)
    ):
        return value
    return utc_timestamp(value, field=field).floor("ms")


@dataclass(frozen=True, kw_only=True)
class Event:
    """Base of all lifecycle events (the envelope); not stored itself."""

    device_id: str
    version: int
    occurred_at: pd.Timestamp
    event_id: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.device_id, str) or not self.device_id:
            raise ValidationError("must be a non-empty string", field="device_id")
        if isinstance(self.version, bool) or not isinstance(self.version, int) or self.version < 1:
            raise ValidationError(
                f"must be an integer >= 1, got {self.version!r}", field="version"
            )
        object.__setattr__(self, "occurred_at", _utc_ms(self.occurred_at, "occurred_at"))
        if not self.event_id:
            key = f"{self.device_id}:{self.version}"
            object.__setattr__(self, "event_id", str(uuid.uuid5(EVENT_ID_NAMESPACE, key)))

    @property
    def event_type(self) -> str:
        """The stored type name (the class name)."""
        return type(self).__name__

    def payload(self) -> dict[str, Any]:
        """The event's own fields as JSON-ready values (no envelope)."""
        return {
            f.name: _encode(getattr(self, f.name)) for f in fields(self) if f.name not in _ENVELOPE
        }

    def describe(self) -> str:
        """One line for people, used by ``DeviceRepository.history``."""
        return ", ".join(f"{k}={v}" for k, v in self.payload().items())


@dataclass(frozen=True, kw_only=True)
class DeviceProvisioned(Event):
    """A device was registered with its type, place, hardware and sensors (status inactive)."""

    device_type: str
    location: Location
    manufacturer: str = ""
    model: str = ""
    firmware_version: str = ""
    sensors: tuple[SensorSpec, ...] = ()

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "location", Location.parse(self.location))
        specs = tuple(s if isinstance(s, SensorSpec) else SensorSpec(**s) for s in self.sensors)
        ids = [s.sensor_id for s in specs]
        if len(set(ids)) != len(ids):
            raise ValidationError(f"duplicate sensor ids in {ids}", field="sensors")
        object.__setattr__(self, "sensors", specs)

    def describe(self) -> str:
        return (
            f"{self.device_type} at {self.location}, firmware {self.firmware_version or '-'}"
            f", sensors {', '.join(s.sensor_id for s in self.sensors) or '-'}"
        )


@dataclass(frozen=True, kw_only=True)
class DeviceActivated(Event):
    """The device started operating (inactive -> active)."""

    def describe(self) -> str:
        return "activated"


@dataclass(frozen=True, kw_only=True)
class DeviceLocationUpdated(Event):
    """The device was moved."""

    old_location: Location
    new_location: Location

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "old_location", Location.parse(self.old_location))
        object.__setattr__(self, "new_location", Location.parse(self.new_location))

    def describe(self) -> str:
        return f"location {self.old_location} -> {self.new_location}"


@dataclass(frozen=True, kw_only=True)
class SensorAdded(Event):
    """A sensor was fitted to the device."""

    sensor_id: str
    sensor_type: str
    unit: str
    min_value: float
    max_value: float
    calibration_date: pd.Timestamp | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        spec = self.spec  # validates and normalises the sensor fields
        for name in ("min_value", "max_value", "calibration_date"):
            object.__setattr__(self, name, getattr(spec, name))

    @property
    def spec(self) -> SensorSpec:
        return SensorSpec(
            self.sensor_id,
            self.sensor_type,
            self.unit,
            self.min_value,
            self.max_value,
            self.calibration_date,
        )

    @classmethod
    def from_spec(cls, spec: SensorSpec, **envelope: Any) -> SensorAdded:
        return cls(**envelope, **{f.name: getattr(spec, f.name) for f in fields(spec)})

    def describe(self) -> str:
        return (
            f"sensor {self.sensor_id} added ({self.sensor_type}, {self.unit}, "
            f"{self.min_value:g}..{self.max_value:g})"
        )


@dataclass(frozen=True, kw_only=True)
class SensorRemoved(Event):
    """A sensor was taken off the device."""

    sensor_id: str

    def describe(self) -> str:
        return f"sensor {self.sensor_id} removed"


@dataclass(frozen=True, kw_only=True)
class FirmwareUpdated(Event):
    """New firmware was installed."""

    old_version: str
    new_version: str

    def describe(self) -> str:
        return f"firmware {self.old_version or '-'} -> {self.new_version}"


@dataclass(frozen=True, kw_only=True)
class MaintenanceStarted(Event):
    """The device was taken out of service for maintenance (active -> maintenance)."""

    reason: str = ""

    def describe(self) -> str:
        return f"maintenance started: {self.reason or '-'}"


@dataclass(frozen=True, kw_only=True)
class MaintenanceEnded(Event):
    """Maintenance finished (maintenance -> active)."""

    def describe(self) -> str:
        return "maintenance ended"


@dataclass(frozen=True, kw_only=True)
class DeviceWentOffline(Event):
    """No heartbeat for longer than the timeout (active -> offline)."""

    last_seen: pd.Timestamp | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.last_seen is not None:
            object.__setattr__(self, "last_seen", _utc_ms(self.last_seen, "last_seen"))

    def describe(self) -> str:
        return f"went offline (last seen {self.last_seen})"


@dataclass(frozen=True, kw_only=True)
class DeviceCameOnline(Event):
    """Heartbeats resumed (offline -> active)."""

    def describe(self) -> str:
        return "came online"


@dataclass(frozen=True, kw_only=True)
class DeviceDecommissioned(Event):
    """The device was retired for good (any -> decommissioned, final)."""

    reason: str = ""

    def describe(self) -> str:
        return f"decommissioned: {self.reason or '-'}"


#: Stored type name -> event class. Read-only: the set of events is part of the format.
EVENT_TYPES: Mapping[str, type[Event]] = MappingProxyType(
    {
        cls.__name__: cls
        for cls in (
            DeviceProvisioned,
            DeviceActivated,
            DeviceLocationUpdated,
            SensorAdded,
            SensorRemoved,
            FirmwareUpdated,
            MaintenanceStarted,
            MaintenanceEnded,
            DeviceWentOffline,
            DeviceCameOnline,
            DeviceDecommissioned,
        )
    }
)


def _required(cls: type[Event]) -> frozenset[str]:
    return frozenset(
        f.name
        for f in fields(cls)
        if f.name not in _ENVELOPE and f.default is MISSING and f.default_factory is MISSING
    )


_FIELDS: Mapping[str, tuple[frozenset[str], frozenset[str]]] = MappingProxyType(
    {
        name: (frozenset(f.name for f in fields(cls) if f.name not in _ENVELOPE), _required(cls))
        for name, cls in EVENT_TYPES.items()
    }
)


def _encode(value: Any) -> Any:
    if isinstance(value, Location):
        return value.to_dict()
    if isinstance(value, SensorSpec):
        return value.to_dict()
    if isinstance(value, tuple):
        return [_encode(v) for v in value]
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return value


# Payload fields whose JSON form needs decoding back into a value object.
_DECODERS: Mapping[str, Callable[[Any], Any]] = MappingProxyType(
    {
        "sensors": lambda v: tuple(SensorSpec(**s) for s in v),
    }
)


def event_from_payload(
    event_type: str,
    data: Mapping[str, Any],
    *,
    device_id: str,
    version: int,
    occurred_at: Any,
    event_id: str = "",
) -> Event:
    """Build an event from its type name and payload dict, checking both.

    Raises ``UnknownEventError`` naming the unknown type, or the missing and unexpected
    fields, or the field whose value cannot be read.
    """
    where = f"(device {device_id}, version {version})"
    cls = EVENT_TYPES.get(event_type)
    if cls is None:
        raise UnknownEventError(
            f"unknown event type {event_type!r} {where}; known types: {', '.join(EVENT_TYPES)}"
        )
    if not isinstance(data, Mapping):
        raise UnknownEventError(f"{event_type} {where}: data must be a JSON object, got {data!r}")
    allowed, required = _FIELDS[event_type]
    missing = sorted(required - set(data))
    unexpected = sorted(set(data) - allowed)
    if missing or unexpected:
        parts = ([f"missing fields {missing}"] if missing else []) + (
            [f"unexpected fields {unexpected}"] if unexpected else []
        )
        raise UnknownEventError(
            f"{event_type} {where}: {'; '.join(parts)}; expected {sorted(allowed)}"
        )
    payload = (
        {k: _DECODERS[k](v) if k in _DECODERS and v is not None else v for k, v in data.items()}
        if _DECODERS.keys() & data.keys()
        else dict(data)
    )
    try:
        return cls(
            device_id=device_id,
            version=int(version),
            occurred_at=occurred_at,
            event_id=event_id,
            **payload,
        )
    except (ValidationError, TypeError) as exc:
        raise UnknownEventError(f"{event_type} {where}: {exc}") from exc


_FRAME_COLUMNS = ("device_id", "version", "event_id", "event_type", "data", "occurred_at")


def events_to_frame(events: Iterable[Event]) -> pd.DataFrame:
    """Rows of the ``events`` table (``data`` as JSON text), in the given order."""
    events = list(events)
    return pd.DataFrame(
        {
            "device_id": pd.Series([e.device_id for e in events], dtype=object),
            "version": pd.Series([e.version for e in events], dtype="int64"),
            "event_id": pd.Series([e.event_id for e in events], dtype=object),
            "event_type": pd.Series([e.event_type for e in events], dtype=object),
            "data": pd.Series(
                [json.dumps(e.payload(), sort_keys=True, separators=(",", ":")) for e in events],
                dtype=object,
            ),
            "occurred_at": pd.Series([e.occurred_at for e in events], dtype="datetime64[ms, UTC]"),
        },
        columns=list(_FRAME_COLUMNS),
    )


def events_from_frame(frame: pd.DataFrame) -> list[Event]:
    """Events from rows of the ``events`` table; malformed rows raise ``UnknownEventError``."""
    missing = [c for c in _FRAME_COLUMNS if c not in frame.columns]
    if missing:
        raise UnknownEventError(f"event rows lack columns {missing}")
    out = []
    for device_id, version, event_id, event_type, data, occurred_at in zip(
        *(frame[c].tolist() for c in _FRAME_COLUMNS)
    ):
        try:
            payload = json.loads(data) if isinstance(data, str) else data
        except json.JSONDecodeError as exc:
            raise UnknownEventError(
                f"{event_type} (device {device_id}, version {version}): data is not JSON: {exc}"
            ) from exc
        out.append(
            event_from_payload(
                event_type,
                payload,
                device_id=device_id,
                version=version,
                occurred_at=occurred_at,
                event_id=event_id,
            )
        )
    return out
