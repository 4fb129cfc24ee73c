"""The Device aggregate: status machine, no-ops, clear errors, time order."""

from __future__ import annotations

import pandas as pd
import pytest

from iotlab.errors import InvalidTransitionError, NotFoundError, ValidationError
from iotlab.history import Device, SensorSpec
from iotlab.history.state import replay

T0 = pd.Timestamp("2026-01-01", tz="UTC")
TEMP = SensorSpec("temp_01", "temperature", "C", -40, 125)


def new_device(status: str = "active") -> Device:
    d = Device.provision(
        "dev-1", "environmental", "HQ/1/101", sensors=[TEMP], firmware_version="1.0", at=T0
    )
    if status != "inactive":
        d.activate(at=T0)
    if status == "maintenance":
        d.start_maintenance("filter", at=T0)
    if status == "offline":
        d.mark_offline(T0, at=T0)
    if status == "decommissioned":
        d.decommission("eol", at=T0)
    assert d.status == status
    return d


@pytest.mark.parametrize(
    ("status", "command", "message"),
    [
        (
            "offline",
            lambda d: d.start_maintenance("x"),
            "cannot start maintenance: device dev-1 is offline (allowed only when active)",
        ),
        (
            "inactive",
            lambda d: d.start_maintenance("x"),
            "cannot start maintenance: device dev-1 is inactive",
        ),
        ("maintenance", lambda d: d.activate(), "cannot activate: device dev-1 is maintenance"),
        (
            "offline",
            lambda d: d.end_maintenance(),
            "cannot end maintenance: device dev-1 is offline",
        ),
        ("maintenance", lambda d: d.mark_offline(), "cannot mark offline: device dev-1 is maint"),
        ("inactive", lambda d: d.mark_online(), "cannot mark online: device dev-1 is inactive"),
        (
            "decommissioned",
            lambda d: d.activate(),
            "cannot activate: device dev-1 is decommissioned",
        ),
        (
            "decommissioned",
            lambda d: d.update_firmware("2"),
            "cannot update firmware: device dev-1 is decommissioned",
        ),
        (
            "decommissioned",
            lambda d: d.add_sensor(TEMP),
            "cannot add sensor: device dev-1 is decom",
        ),
    ],
)
def test_invalid_transitions_raise_clear_errors(status, command, message):
    d = new_device(status)
    before = (d.state, d.pending_events)
    with pytest.raises(
        InvalidTransitionError, match="^" + message.replace("(", r"\(").replace(")", r"\)")
    ):
        command(d)
    assert (d.state, d.pending_events) == before  # nothing recorded


@pytest.mark.parametrize(
    ("status", "command"),
    [
        ("active", lambda d: d.activate()),
        ("maintenance", lambda d: d.start_maintenance("again")),
        ("active", lambda d: d.end_maintenance()),
        ("offline", lambda d: d.mark_offline()),
        ("active", lambda d: d.mark_online()),
        ("decommissioned", lambda d: d.decommission("again")),
        ("active", lambda d: d.add_sensor(TEMP)),
        ("active", lambda d: d.update_firmware("1.0")),
        ("active", lambda d: d.update_location({"building": "HQ", "floor": 1, "room": "101"})),
    ],
)
def test_repeated_commands_that_change_nothing_record_nothing(status, command):
    d = new_device(status)
    version = d.version
    assert command(d) is None
    assert d.version == version


def test_commands_follow_the_status_machine():
    d = new_device("inactive")
    steps = [
        (d.activate, "active"),
        (lambda: d.start_maintenance("x"), "maintenance"),
        (d.end_maintenance, "active"),
        (lambda: d.mark_offline(T0), "offline"),
        (d.mark_online, "active"),
        (lambda: d.decommission("eol"), "decommissioned"),
    ]
    for command, status in steps:
        command()
        assert d.status == status
    assert [e.event_type for e in d.pending_events] == [
        "DeviceProvisioned",
        "DeviceActivated",
        "MaintenanceStarted",
        "MaintenanceEnded",
        "DeviceWentOffline",
        "DeviceCameOnline",
        "DeviceDecommissioned",
    ]
    assert [e.version for e in d.pending_events] == list(range(1, 8))
    assert replay("dev-1", d.pending_events) == d.state


def test_sensors_location_and_firmware_changes():
    d = new_device()
    d.add_sensor(
        {
            "sensor_id": "co2_01",
            "sensor_type": "co2",
            "unit": "ppm",
            "min_value": 0,
            "max_value": 5000,
        }
    )
    assert sorted(d.sensors) == ["co2_01", "temp_01"]
    with pytest.raises(InvalidTransitionError, match="already has sensor temp_01 with another"):
        d.add_sensor(SensorSpec("temp_01", "temperature", "F", -40, 257))
    d.remove_sensor("temp_01")
    with pytest.raises(
        NotFoundError, match=r"device dev-1 has no sensor 'temp_01'; it has \['co2_01'\]"
    ):
        d.remove_sensor("temp_01")
    event = d.update_firmware("2.0")
    assert (event.old_version, event.new_version, d.firmware_version) == ("1.0", "2.0", "2.0")
    moved = d.update_location("B2/3/7")
    assert moved.old_location == {"building": "HQ", "floor": 1, "room": "101"}
    assert d.location == {"building": "B2", "floor": 3, "room": "7"}


def test_events_must_be_recorded_in_time_order():
    d = new_device()
    with pytest.raises(ValidationError, match="at: device dev-1: .* is before its last event"):
        d.update_firmware("2", at=T0 - pd.Timedelta("1s"))
    assert d.update_firmware("2").occurred_at >= T0
