"""The ``Device`` aggregate: lifecycle commands that check the rules and record events.

Status machine::

    new --provision--> inactive --activate--> active <--start/end maintenance--> maintenance
                                              active <--went offline/came online--> offline
    any status --decommission--> decommissioned   (final)

A command either raises ``InvalidTransitionError`` (not allowed now), returns ``None``
(nothing would change: activating an active device, adding a sensor that is already
there with the same spec), or records one event and returns it. State changes only
through :func:`iotlab.history.state.apply`. Events wait in ``pending_events`` until
``DeviceRepository.save`` appends them.

Examples
--------
>>> d = Device.provision("d1", "thermostat", "HQ/1/101", at="2026-01-01")
>>> d.activate(at="2026-01-02").event_type
'DeviceActivated'
>>> d.activate() is None  # already active: no event
True
>>> d.status, d.version, len(d.pending_events)
('active', 2, 2)
>>> d.decommission("broken", at="2026-01-03").event_type
'DeviceDecommissioned'
>>> d.start_maintenance("check")
Traceback (most recent call last):
...
iotlab.errors.InvalidTransitionError: cannot start maintenance: device d1 is decommissioned
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd

from iotlab._time import TimeLike, utc_timestamp
from iotlab.errors import InvalidTransitionError, NotFoundError, ValidationError
from iotlab.history import events as ev
from iotlab.history.specs import Location, SensorSpec, sensor_spec
from iotlab.history.state import DeviceState, apply, replay

__all__ = ["Device"]


class Device:
    """One device's lifecycle: read its state, call commands, save with the repository.

    Parameters
    ----------
    state
        The state the device was loaded in (its ``version`` is what the store holds).
    """

    def __init__(self, state: DeviceState) -> None:
        self._state = state
        self._saved_version = state.version
        self._pending: list[ev.Event] = []

    # -- construction --------------------------------------------------------------------
    @classmethod
    def provision(
        cls,
        device_id: str,
        device_type: str,
        location: Location | Mapping[str, Any] | str,
        *,
        sensors: Sequence[SensorSpec | Mapping[str, Any] | str] = (),
        manufacturer: str = "",
        model: str = "",
        firmware_version: str = "",
        at: TimeLike | None = None,
    ) -> Device:
        """A new, unsaved device (status ``inactive``) with its ``DeviceProvisioned`` event."""
        if not isinstance(device_type, str) or not device_type:
            raise ValidationError("must be a non-empty string", field="device_type")
        device = cls(DeviceState.initial(device_id))
        device._record(
            ev.DeviceProvisioned,
            at,
            device_type=device_type,
            location=Location.parse(location),
            manufacturer=manufacturer,
            model=model,
            firmware_version=firmware_version,
            sensors=tuple(sensor_spec(s) for s in sensors),
        )
        return device

    @classmethod
    def from_events(cls, device_id: str, events: Iterable[ev.Event]) -> Device:
        """A device rebuilt by replaying saved events."""
        return cls(replay(device_id, events))

    # -- readable state ----------------------------------------------------------------------
    @property
    def state(self) -> DeviceState:
        """The full immutable state (including pending events)."""
        return self._state

    device_id = property(lambda self: self._state.device_id, doc="The device id.")
    version = property(lambda self: self._state.version, doc="Events so far, pending included.")
    status = property(lambda self: self._state.status, doc="Lifecycle status.")
    device_type = property(lambda self: self._state.device_type, doc="Device type.")
    firmware_version = property(lambda self: self._state.firmware_version, doc="Firmware.")
    manufacturer = property(lambda self: self._state.manufacturer, doc="Manufacturer.")
    model = property(lambda self: self._state.model, doc="Model.")
    created_at = property(lambda self: self._state.created_at, doc="When provisioned.")
    updated_at = property(lambda self: self._state.updated_at, doc="Time of the last event.")
    last_seen = property(lambda self: self._state.last_seen, doc="Last known heartbeat.")

    @property
    def location(self) -> dict[str, Any] | None:
        """Where the device is, as a dict (``building``, ``floor``, ``room``)."""
        loc = self._state.location
        return None if loc is None else loc.to_dict()

    @property
    def sensors(self) -> dict[str, SensorSpec]:
        """Sensor id -> spec of the sensors fitted now."""
        return {s.spec.sensor_id: s.spec for s in self._state.sensors}

    @property
    def saved_version(self) -> int:
        """The stream version this device was loaded at (or last saved at)."""
        return self._saved_version

    @property
    def pending_events(self) -> tuple[ev.Event, ...]:
        """Events recorded since load/save, not yet in the store."""
        return tuple(self._pending)

    def __repr__(self) -> str:
        return (
            f"<Device {self.device_id} {self.device_type} {self.status} v{self.version}"
            f"{f' ({len(self._pending)} unsaved)' if self._pending else ''}>"
        )

    # -- commands -----------------------------------------------------------------------------
    def activate(self, *, at: TimeLike | None = None) -> ev.Event | None:
        """Put an inactive device into service."""
        if self._allowed("activate", {"inactive"}, noop={"active"}):
            return self._record(ev.DeviceActivated, at)
        return None

    def update_location(
        self, location: Location | Mapping[str, Any] | str, *, at: TimeLike | None = None
    ) -> ev.Event | None:
        """Move the device."""
        new = Location.parse(location)
        self._not_final("update location")
        if new == self._state.location:
            return None
        return self._record(
            ev.DeviceLocationUpdated, at, old_location=self._state.location, new_location=new
        )

    def add_sensor(
        self, sensor: SensorSpec | Mapping[str, Any] | str, *, at: TimeLike | None = None
    ) -> ev.Event | None:
        """Fit a sensor (an id like ``"temp_02"`` or a full spec)."""
        spec = sensor_spec(sensor)
        self._not_final("add sensor")
        existing = self._state.sensor(spec.sensor_id)
        if existing is not None:
            if existing.spec == spec:
                return None
            raise InvalidTransitionError(
                f"cannot add sensor: device {self.device_id} already has sensor "
                f"{spec.sensor_id} with another spec ({existing.spec}); remove it first"
            )
        return self._record_event(ev.SensorAdded.from_spec(spec, **self._envelope(at)))

    def remove_sensor(self, sensor_id: str, *, at: TimeLike | None = None) -> ev.Event:
        """Take a sensor off; raises ``NotFoundError`` if the device has no such sensor."""
        self._not_final("remove sensor")
        if self._state.sensor(sensor_id) is None:
            raise NotFoundError(
                f"device {self.device_id} has no sensor {sensor_id!r}; it has "
                f"{sorted(self.sensors) or 'none'}"
            )
        return self._record(ev.SensorRemoved, at, sensor_id=sensor_id)

    def update_firmware(self, version: str, *, at: TimeLike | None = None) -> ev.Event | None:
        """Record a firmware update."""
        if not isinstance(version, str) or not version:
            raise ValidationError("must be a non-empty string", field="firmware_version")
        self._not_final("update firmware")
        if version == self._state.firmware_version:
            return None
        return self._record(
            ev.FirmwareUpdated, at, old_version=self._state.firmware_version, new_version=version
        )

    def start_maintenance(
        self, reason: str = "", *, at: TimeLike | None = None
    ) -> ev.Event | None:
        """Take an active device out of service for maintenance."""
        if self._allowed("start maintenance", {"active"}, noop={"maintenance"}):
            return self._record(ev.MaintenanceStarted, at, reason=reason)
        return None

    def end_maintenance(self, *, at: TimeLike | None = None) -> ev.Event | None:
        """Return a device in maintenance to service."""
        if self._allowed("end maintenance", {"maintenance"}, noop={"active"}):
            return self._record(ev.MaintenanceEnded, at)
        return None

    def mark_offline(
        self, last_seen: TimeLike | None = None, *, at: TimeLike | None = None
    ) -> ev.Event | None:
        """Record that an active device stopped sending heartbeats (last one at ``last_seen``)."""
        if self._allowed("mark offline", {"active"}, noop={"offline"}):
            return self._record(ev.DeviceWentOffline, at, last_seen=last_seen)
        return None

    def mark_online(self, *, at: TimeLike | None = None) -> ev.Event | None:
        """Record that an offline device sends heartbeats again."""
        if self._allowed("mark online", {"offline"}, noop={"active"}):
            return self._record(ev.DeviceCameOnline, at)
        return None

    def decommission(self, reason: str = "", *, at: TimeLike | None = None) -> ev.Event | None:
        """Retire the device for good; no command is allowed afterwards."""
        if self._state.status == "decommissioned":
            return None
        self._not_final("decommission")
        return self._record(ev.DeviceDecommissioned, at, reason=reason)

    # -- internals ----------------------------------------------------------------------------
    def _not_final(self, action: str) -> None:
        if self._state.status in ("new", "decommissioned"):
            what = "not provisioned" if self._state.status == "new" else "decommissioned"
            raise InvalidTransitionError(f"cannot {action}: device {self.device_id} is {what}")

    def _allowed(self, action: str, allowed: set[str], *, noop: set[str]) -> bool:
        status = self._state.status
        if status in noop:
            return False
        if status not in allowed:
            self._not_final(action)
            raise InvalidTransitionError(
                f"cannot {action}: device {self.device_id} is {status} "
                f"(allowed only when {' or '.join(sorted(allowed))})"
            )
        return True

    def _envelope(self, at: TimeLike | None) -> dict[str, Any]:
        last = self._state.updated_at
        if at is None:
            when = pd.Timestamp.now(tz="UTC").floor("ms")
            if last is not None and not _clock_error(last, when):
                when = max(when, last)  # clock skew: keep order
        else:
            when = utc_timestamp(at, field="at").floor("ms")
            # A last event dated in the future is a clock error: the next may precede it
            # (if it is not in the future itself), or the device would be stuck until then.
            if last is not None and when < last and not _clock_error(last, when):
                raise ValidationError(
                    f"device {self.device_id}: {when} is before its last event ({last}); "
                    "events must be recorded in time order",
                    field="at",
                )
        return {
            "device_id": self.device_id,
            "version": self._state.version + 1,
            "occurred_at": when,
        }

    def _record(self, cls: type[ev.Event], at: TimeLike | None, **payload: Any) -> ev.Event:
        return self._record_event(cls(**self._envelope(at), **payload))

    def _record_event(self, event: ev.Event) -> ev.Event:
        self._state = apply(self._state, event)
        self._pending.append(event)
        return event

    def _mark_saved(self) -> list[ev.Event]:
        """Called by the repository after the pending events were appended."""
        saved, self._pending = self._pending, []
        self._saved_version = self._state.version
        return saved


#: How far in the future an event may be dated before it counts as a clock error (clocks of
#: two hosts differ by a little; a device dated a year ahead is wrong).
CLOCK_TOLERANCE = pd.Timedelta("5min")


def _clock_error(last: pd.Timestamp, when: pd.Timestamp) -> bool:
    """Whether ``last`` (a device's last event time) is a clock error and ``when`` not."""
    wall = pd.Timestamp.now(tz="UTC")
    return last > wall + CLOCK_TOLERANCE and when <= wall + CLOCK_TOLERANCE
