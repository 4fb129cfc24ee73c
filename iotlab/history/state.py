"""A device's state and the pure function that folds one event into it.

``apply(state, event)`` never mutates and never checks business rules (commands do that
before an event exists); it only checks that the event continues this stream. The state
serialises to JSON for snapshots, with a schema number so an old snapshot layout is
ignored (and the stream replayed) instead of misread.

Examples
--------
>>> from iotlab.history.events import DeviceProvisioned, DeviceActivated
>>> s = DeviceState.initial("d1")
>>> s = apply(s, DeviceProvisioned(device_id="d1", version=1, occurred_at="2026-01-01",
...                                device_type="thermostat", location="HQ/1/101"))
>>> s = apply(s, DeviceActivated(device_id="d1", version=2, occurred_at="2026-01-02"))
>>> s.status, s.version, str(s.location)
('active', 2, 'HQ/1/101')
>>> state_from_json(state_to_json(s)) == s
True
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any

import pandas as pd

from iotlab.errors import HistoryError
from iotlab.history import events as ev
from iotlab.history.specs import Location, SensorSpec

__all__ = [
    "STATUSES",
    "DeviceState",
    "InstalledSensor",
    "apply",
    "replay",
    "state_from_json",
    "state_to_json",
]

#: Lifecycle statuses; "new" is the state before DeviceProvisioned.
STATUSES = ("new", "inactive", "active", "maintenance", "offline", "decommissioned")
SNAPSHOT_SCHEMA = 1


@dataclass(frozen=True)
class InstalledSensor:
    """A sensor on a device: its spec and when it was added."""

    spec: SensorSpec
    added_at: pd.Timestamp


@dataclass(frozen=True)
class DeviceState:
    """Everything known about a device after ``version`` events."""

    device_id: str
    version: int = 0
    status: str = "new"
    device_type: str = ""
    location: Location | None = None
    manufacturer: str = ""
    model: str = ""
    firmware_version: str = ""
    sensors: tuple[InstalledSensor, ...] = ()  # sorted by sensor_id
    created_at: pd.Timestamp | None = None
    updated_at: pd.Timestamp | None = None
    last_seen: pd.Timestamp | None = None
    maintenance_reason: str | None = None
    decommission_reason: str | None = None

    @classmethod
    def initial(cls, device_id: str) -> DeviceState:
        """The state before any event."""
        return cls(device_id=device_id)

    def sensor(self, sensor_id: str) -> InstalledSensor | None:
        """The installed sensor with this id, or ``None``."""
        return next((s for s in self.sensors if s.spec.sensor_id == sensor_id), None)


def _with_sensors(sensors: Iterable[InstalledSensor]) -> tuple[InstalledSensor, ...]:
    return tuple(sorted(sensors, key=lambda s: s.spec.sensor_id))


def _provisioned(s: DeviceState, e: ev.DeviceProvisioned) -> DeviceState:
    return replace(
        s,
        status="inactive",
        device_type=e.device_type,
        location=e.location,
        manufacturer=e.manufacturer,
        model=e.model,
        firmware_version=e.firmware_version,
        sensors=_with_sensors(InstalledSensor(spec, e.occurred_at) for spec in e.sensors),
        created_at=e.occurred_at,
    )


def _sensor_added(s: DeviceState, e: ev.SensorAdded) -> DeviceState:
    others = [x for x in s.sensors if x.spec.sensor_id != e.sensor_id]
    return replace(s, sensors=_with_sensors([*others, InstalledSensor(e.spec, e.occurred_at)]))


def _sensor_removed(s: DeviceState, e: ev.SensorRemoved) -> DeviceState:
    return replace(s, sensors=tuple(x for x in s.sensors if x.spec.sensor_id != e.sensor_id))


_APPLY: Mapping[type, Callable[[DeviceState, Any], DeviceState]] = MappingProxyType(
    {
        ev.DeviceProvisioned: _provisioned,
        ev.DeviceActivated: lambda s, e: replace(s, status="active"),
        ev.DeviceLocationUpdated: lambda s, e: replace(s, location=e.new_location),
        ev.SensorAdded: _sensor_added,
        ev.SensorRemoved: _sensor_removed,
        ev.FirmwareUpdated: lambda s, e: replace(s, firmware_version=e.new_version),
        ev.MaintenanceStarted: lambda s, e: replace(
            s, status="maintenance", maintenance_reason=e.reason
        ),
        ev.MaintenanceEnded: lambda s, e: replace(s, status="active", maintenance_reason=None),
        ev.DeviceWentOffline: lambda s, e: replace(
            s, status="offline", last_seen=e.last_seen if e.last_seen is not None else s.last_seen
        ),
        ev.DeviceCameOnline: lambda s, e: replace(s, status="active", last_seen=e.occurred_at),
        ev.DeviceDecommissioned: lambda s, e: replace(
            s, status="decommissioned", decommission_reason=e.reason
        ),
    }
)


def apply(state: DeviceState, event: ev.Event) -> DeviceState:
    """The state after ``event``; ``state`` is left untouched.

    Raises ``HistoryError`` if the event belongs to another device or does not follow
    the state's version (a gap or a repeat in the stream).
    """
    if event.device_id != state.device_id:
        raise HistoryError(
            f"event of device {event.device_id} applied to device {state.device_id}"
        )
    if event.version != state.version + 1:
        raise HistoryError(
            f"device {state.device_id}: event version {event.version} does not "
            f"follow version {state.version}"
        )
    if state.status == "new" and not isinstance(event, ev.DeviceProvisioned):
        raise HistoryError(
            f"device {state.device_id}: stream starts with {event.event_type}, "
            "not DeviceProvisioned"
        )
    new = _APPLY[type(event)](state, event)
    return replace(new, version=event.version, updated_at=event.occurred_at)


def replay(
    device_id: str, events: Iterable[ev.Event], state: DeviceState | None = None
) -> DeviceState:
    """Fold ``events`` into ``state`` (default: the initial state)."""
    state = DeviceState.initial(device_id) if state is None else state
    for event in events:
        state = apply(state, event)
    return state


def _ts(value: pd.Timestamp | None) -> str | None:
    return None if value is None else value.isoformat()


def _parse_ts(value: str | None) -> pd.Timestamp | None:
    return None if value is None else pd.Timestamp(value).tz_convert("UTC")


_TIMES = ("created_at", "updated_at", "last_seen")


def state_to_json(state: DeviceState) -> str:
    """JSON text of ``state`` for the snapshots table."""
    data: dict[str, Any] = {
        "schema": SNAPSHOT_SCHEMA,
        **{
            k: getattr(state, k)
            for k in (
                "device_id",
                "version",
                "status",
                "device_type",
                "manufacturer",
                "model",
                "firmware_version",
                "maintenance_reason",
                "decommission_reason",
            )
        },
        "location": None if state.location is None else state.location.to_dict(),
        "sensors": [{**s.spec.to_dict(), "added_at": _ts(s.added_at)} for s in state.sensors],
        **{k: _ts(getattr(state, k)) for k in _TIMES},
    }
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


def state_from_json(text: str) -> DeviceState | None:
    """The state in a snapshot, or ``None`` if it was written in another schema."""
    data = json.loads(text)
    if data.pop("schema", None) != SNAPSHOT_SCHEMA:
        return None
    sensors = []
    for item in data.pop("sensors"):
        added_at = pd.Timestamp(item.pop("added_at")).tz_convert("UTC")  # always set
        sensors.append(InstalledSensor(SensorSpec(**item), added_at))
    location = data.pop("location")
    return DeviceState(
        **{k: v for k, v in data.items() if k not in _TIMES},
        location=None if location is None else Location(location),
        sensors=tuple(sensors),
        created_at=_parse_ts(data["created_at"]),
        updated_at=_parse_ts(data["updated_at"]),
        last_seen=_parse_ts(data["last_seen"]),
    )
