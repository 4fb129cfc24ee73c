"""Provision devices: one by hand, or a simulator ``Fleet``/``Simulation`` in bulk.

Bulk provisioning appends each device's events in one ``append_events`` call, many
devices in flight at once (``DeviceRepository.append_workers``; on Cassandra each append
is a Paxos round trip), and writes each projection table once at the end. It is
idempotent: devices already in the devices table are left alone, so provisioning the same
fleet twice changes nothing. If another writer created one of the streams meanwhile, the
other devices are still saved, with their projections, and ``ConcurrencyError`` names it.

Examples
--------
>>> import iotlab
>>> from iotlab.history import DeviceRepository
>>> with iotlab.connect("sqlite://") as lab:
...     repo = DeviceRepository(lab.store)
...     device_id = provision_device(repo, "environmental", "HQ/2/201",
...                                  ["temp_01", "humidity_01"], device_id="env-1",
...                                  at="2026-01-01")
...     d = repo.load(device_id)
>>> d.status, sorted(d.sensors), d.sensors["temp_01"].unit
('active', ['humidity_01', 'temp_01'], '°C')
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from iotlab._time import TimeLike
from iotlab.errors import ValidationError
from iotlab.history import events as ev
from iotlab.history.aggregate import Device
from iotlab.history.repository import DeviceRepository
from iotlab.history.specs import Location, SensorSpec

__all__ = ["provision", "provision_device"]

_ATTRIBUTES = ("device_id", "manufacturer", "model", "firmware_version", "at", "activate")


def provision_device(
    repository: DeviceRepository,
    device_type: str,
    location: Mapping[str, Any] | str,
    sensors: Sequence[str | Mapping[str, Any] | SensorSpec],
    **attributes: Any,
) -> str:
    """Provision (and by default activate) one device; return its id.

    Parameters
    ----------
    repository
        Where to save the device.
    device_type, location
        What and where it is; ``location`` as a dict or ``"building/floor/room"``.
    sensors
        Sensor ids such as ``"temp_01"`` (type, unit and range inferred from the prefix)
        or dicts with the full spec.
    **attributes
        ``device_id`` (default: ``<device_type>-<random hex>``), ``manufacturer``,
        ``model``, ``firmware_version``, ``at`` (event time, default now) and
        ``activate`` (default ``True``).
    """
    unknown = sorted(set(attributes) - set(_ATTRIBUTES))
    if unknown:
        raise ValidationError(
            f"unknown attribute(s) {unknown}; expected {list(_ATTRIBUTES)}", field=unknown[0]
        )
    device_id = attributes.get("device_id") or f"{device_type}-{uuid.uuid4().hex[:12]}"
    if repository.versions([device_id]):
        raise ValidationError(f"device {device_id} already exists", field="device_id")
    at = attributes.get("at")
    device = Device.provision(
        device_id,
        device_type,
        location,
        sensors=sensors,
        **{k: str(attributes.get(k) or "") for k in ("manufacturer", "model", "firmware_version")},
        at=at,
    )
    if attributes.get("activate", True):
        device.activate(at=device.created_at if at is not None else None)
    repository.save(device)
    return device_id


def provision(
    repository: DeviceRepository, fleet_or_simulation: object, *, at: TimeLike | None = None
) -> list[str]:
    """Provision a simulator ``Fleet`` (provisioned and activated ``at``, default now) or
    replay a ``Simulation``'s lifecycle events with their original times.

    Returns the ids of all devices in the input, in order; those already provisioned are
    skipped (their streams are not touched).
    """
    events = getattr(fleet_or_simulation, "events", None)
    if isinstance(events, pd.DataFrame):
        return _provision_from_events(repository, events)
    devices = getattr(fleet_or_simulation, "devices", None)
    sensors = getattr(fleet_or_simulation, "sensors", None)
    if isinstance(devices, pd.DataFrame) and isinstance(sensors, pd.DataFrame):
        return _provision_fleet(repository, devices, sensors, at)
    raise ValidationError(
        f"expected a simulator Fleet (.devices, .sensors) or Simulation (.events), got "
        f"{type(fleet_or_simulation).__name__}",
        field="fleet_or_simulation",
    )


def _require(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValidationError(f"{what} lacks column(s) {missing}", field=missing[0])


def _provision_fleet(
    repository: DeviceRepository, devices: pd.DataFrame, sensors: pd.DataFrame, at: TimeLike | None
) -> list[str]:
    _require(devices, ["device_id", "device_type", "location"], "fleet.devices")
    _require(
        sensors,
        ["device_id", "sensor_id", "sensor_type", "unit", "min_value", "max_value"],
        "fleet.sensors",
    )
    ids = devices["device_id"].astype(str).tolist()
    existing = repository.versions(ids)
    when = pd.Timestamp.now(tz="UTC") if at is None else at
    spec_columns = [
        c
        for c in ("sensor_id", "sensor_type", "unit", "min_value", "max_value", "calibration_date")
        if c in sensors.columns
    ]
    by_device: dict[str, list[dict[str, Any]]] = {}
    for record in sensors[["device_id", *spec_columns]].to_dict("records"):
        spec = {k: record[k] for k in spec_columns}
        if "calibration_date" in spec and pd.isna(spec["calibration_date"]):
            spec["calibration_date"] = None
        by_device.setdefault(str(record["device_id"]), []).append(spec)
    new = []
    for row in devices.to_dict("records"):
        device_id = str(row["device_id"])
        if device_id in existing:
            continue
        device = Device.provision(
            device_id,
            row["device_type"],
            row["location"],
            sensors=by_device.get(device_id, ()),
            **{k: str(row.get(k) or "") for k in ("manufacturer", "model", "firmware_version")},
            at=when,
        )
        device.activate(at=when)
        new.append(device)
    repository.save_all(new)
    return ids


def _provision_from_events(repository: DeviceRepository, events: pd.DataFrame) -> list[str]:
    _require(events, ["device_id", "occurred_at", "event_type", "data"], "simulation.events")
    ids = list(dict.fromkeys(events["device_id"].astype(str)))
    existing = repository.versions(ids)
    ordered = events.sort_values("occurred_at", kind="stable")
    devices: dict[str, Device] = {}
    for position, (device_id, when, event_type, data) in enumerate(
        zip(
            ordered["device_id"].astype(str),
            ordered["occurred_at"],
            ordered["event_type"],
            ordered["data"],
        )
    ):
        if device_id in existing:
            continue
        device = devices.get(device_id)
        # Parse first: an unknown type or a wrong field is reported as such, with its row.
        event = ev.event_from_payload(
            event_type,
            data,
            device_id=device_id,
            version=1 if device is None else device.version + 1,
            occurred_at=when,
        )
        if device is None:
            if not isinstance(event, ev.DeviceProvisioned):
                raise ValidationError(
                    f"device {device_id}: first event is {event_type}, not DeviceProvisioned",
                    field="event_type",
                    rows=[position],
                )
            devices[device_id] = _from_provisioned(event)
        else:
            _run(device, event)
    repository.save_all(devices.values())
    return ids


def _from_provisioned(e: ev.DeviceProvisioned) -> Device:
    return Device.provision(
        e.device_id,
        e.device_type,
        e.location,
        sensors=e.sensors,
        manufacturer=e.manufacturer,
        model=e.model,
        firmware_version=e.firmware_version,
        at=e.occurred_at,
    )


def _run(d: Device, e: ev.Event) -> None:
    """Replay a foreign event through the matching command, so the rules are checked."""
    at = e.occurred_at
    if isinstance(e, ev.DeviceActivated):
        d.activate(at=at)
    elif isinstance(e, ev.DeviceLocationUpdated):
        d.update_location(Location.parse(e.new_location), at=at)
    elif isinstance(e, ev.SensorAdded):
        d.add_sensor(e.spec, at=at)
    elif isinstance(e, ev.SensorRemoved):
        d.remove_sensor(e.sensor_id, at=at)
    elif isinstance(e, ev.FirmwareUpdated):
        d.update_firmware(e.new_version, at=at)
    elif isinstance(e, ev.MaintenanceStarted):
        d.start_maintenance(e.reason, at=at)
    elif isinstance(e, ev.MaintenanceEnded):
        d.end_maintenance(at=at)
    elif isinstance(e, ev.DeviceWentOffline):
        d.mark_offline(e.last_seen, at=at)
    elif isinstance(e, ev.DeviceCameOnline):
        d.mark_online(at=at)
    elif isinstance(e, ev.DeviceDecommissioned):
        d.decommission(e.reason, at=at)
    else:  # a second DeviceProvisioned
        raise ValidationError(
            f"device {d.device_id}: {e.event_type} after it was provisioned", field="event_type"
        )
