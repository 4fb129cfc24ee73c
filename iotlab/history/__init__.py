"""Event-sourced device lifecycle: events, a pure ``apply``, the ``Device`` aggregate,
and a repository with optimistic concurrency, snapshots, projections and time travel.

Examples
--------
>>> import iotlab
>>> from iotlab.history import Device, DeviceRepository
>>> with iotlab.connect("sqlite://") as lab:
...     repo = DeviceRepository(lab.store)
...     d = Device.provision("d1", "environmental", "HQ/1/101", at="2026-01-01")
...     _ = d.activate(at="2026-01-02")
...     _ = repo.save(d)
...     repo.load("d1", as_of="2026-01-01T12:00Z").status
'inactive'
"""

from __future__ import annotations

from iotlab.errors import ConcurrencyError, InvalidTransitionError, UnknownEventError
from iotlab.history.aggregate import Device
from iotlab.history.events import (
    EVENT_TYPES,
    DeviceActivated,
    DeviceCameOnline,
    DeviceDecommissioned,
    DeviceLocationUpdated,
    DeviceProvisioned,
    DeviceWentOffline,
    Event,
    FirmwareUpdated,
    MaintenanceEnded,
    MaintenanceStarted,
    SensorAdded,
    SensorRemoved,
)
from iotlab.history.repository import DeviceRepository
from iotlab.history.specs import Location, SensorSpec
from iotlab.history.state import DeviceState, apply

__all__ = [
    "EVENT_TYPES",
    "ConcurrencyError",
    "Device",
    "DeviceActivated",
    "DeviceCameOnline",
    "DeviceDecommissioned",
    "DeviceLocationUpdated",
    "DeviceProvisioned",
    "DeviceRepository",
    "DeviceState",
    "DeviceWentOffline",
    "Event",
    "FirmwareUpdated",
    "InvalidTransitionError",
    "Location",
    "MaintenanceEnded",
    "MaintenanceStarted",
    "SensorAdded",
    "SensorRemoved",
    "SensorSpec",
    "UnknownEventError",
    "apply",
]
