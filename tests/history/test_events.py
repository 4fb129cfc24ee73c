"""Events: (de)serialisation, deterministic ids, clear errors for malformed rows."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from iotlab.errors import UnknownEventError, ValidationError
from iotlab.history import events as ev
from iotlab.history.specs import Location, SensorSpec, sensor_spec

T0 = pd.Timestamp("2026-01-01", tz="UTC")
SPEC = SensorSpec("temp_01", "temperature", "C", -40, 125, "2025-12-01")


def every_event_type() -> list[ev.Event]:
    env = {"device_id": "d1", "occurred_at": T0}
    return [
        ev.DeviceProvisioned(
            **env,
            version=1,
            device_type="env",
            location="HQ/1/101",
            manufacturer="Acme",
            model="X1",
            firmware_version="1.0",
            sensors=(SPEC,),
        ),
        ev.DeviceActivated(**env, version=2),
        ev.DeviceLocationUpdated(
            **env,
            version=3,
            old_location="HQ/1/101",
            new_location={"building": "B2", "floor": 3, "room": "7"},
        ),
        ev.SensorAdded.from_spec(SensorSpec("co2_01", "co2", "ppm", 0, 5000), **env, version=4),
        ev.SensorRemoved(**env, version=5, sensor_id="co2_01"),
        ev.FirmwareUpdated(**env, version=6, old_version="1.0", new_version="1.1"),
        ev.MaintenanceStarted(**env, version=7, reason="filter"),
        ev.MaintenanceEnded(**env, version=8),
        ev.DeviceWentOffline(**env, version=9, last_seen=T0 - pd.Timedelta("1h")),
        ev.DeviceCameOnline(**env, version=10),
        ev.DeviceDecommissioned(**env, version=11, reason="end of life"),
    ]


def test_every_event_type_round_trips_through_table_rows():
    events = every_event_type()
    assert {e.event_type for e in events} == set(ev.EVENT_TYPES)
    frame = ev.events_to_frame(events)
    assert list(frame.columns) == [
        "device_id",
        "version",
        "event_id",
        "event_type",
        "data",
        "occurred_at",
    ]
    assert str(frame["occurred_at"].dtype) == "datetime64[ms, UTC]"
    assert frame["version"].dtype == "int64"
    back = ev.events_from_frame(frame)
    assert back == events
    assert back[0].sensors[0].calibration_date == pd.Timestamp("2025-12-01", tz="UTC")
    assert back[2].new_location == Location({"building": "B2", "floor": 3, "room": "7"})


def test_payload_names_match_the_simulator():
    data = json.loads(ev.events_to_frame(every_event_type()[:3])["data"][2])
    assert data == {
        "old_location": {"building": "HQ", "floor": 1, "room": "101"},
        "new_location": {"building": "B2", "floor": 3, "room": "7"},
    }
    provisioned = json.loads(ev.events_to_frame(every_event_type()[:1])["data"][0])
    assert set(provisioned) == {
        "device_type",
        "location",
        "manufacturer",
        "model",
        "firmware_version",
        "sensors",
    }
    assert provisioned["sensors"][0]["calibration_date"] == "2025-12-01T00:00:00+00:00"


def test_event_ids_are_deterministic_and_distinct():
    a = ev.DeviceActivated(device_id="d1", version=2, occurred_at=T0)
    b = ev.DeviceActivated(device_id="d1", version=2, occurred_at=T0 + pd.Timedelta("1s"))
    c = ev.DeviceActivated(device_id="d1", version=3, occurred_at=T0)
    assert a.event_id == b.event_id != c.event_id
    assert len(a.event_id) == 36


def test_occurred_at_is_utc_milliseconds_and_naive_is_read_as_utc():
    e = ev.DeviceActivated(
        device_id="d", version=1, occurred_at="2026-01-01T01:00:00.1234567+01:00"
    )
    assert e.occurred_at == pd.Timestamp("2026-01-01T00:00:00.123", tz="UTC")


def test_unknown_event_type_is_named():
    with pytest.raises(
        UnknownEventError,
        match=r"unknown event type 'DeviceExploded' "
        r"\(device d1, version 4\)",
    ):
        ev.event_from_payload("DeviceExploded", {}, device_id="d1", version=4, occurred_at=T0)


def test_missing_and_unexpected_fields_are_named():
    with pytest.raises(UnknownEventError) as info:
        ev.event_from_payload(
            "FirmwareUpdated",
            {"new_version": "2", "by": "bob"},
            device_id="d1",
            version=3,
            occurred_at=T0,
        )
    message = str(info.value)
    assert "missing fields ['old_version']" in message
    assert "unexpected fields ['by']" in message
    assert "FirmwareUpdated (device d1, version 3)" in message


def test_malformed_rows_from_the_store_are_reported():
    frame = ev.events_to_frame(every_event_type()[:2])
    frame.loc[1, "data"] = "{not json"
    with pytest.raises(UnknownEventError, match="DeviceActivated .*version 2.*not JSON"):
        ev.events_from_frame(frame)
    frame.loc[1, "data"] = '{"location": 5}'
    with pytest.raises(UnknownEventError, match=r"unexpected fields \['location'\]"):
        ev.events_from_frame(frame)
    bad_value = ev.events_to_frame(every_event_type()[:1])
    bad_value.loc[0, "data"] = bad_value.loc[0, "data"].replace('"floor":1', '"floor":[1]')
    with pytest.raises(UnknownEventError, match="DeviceProvisioned .*location"):
        ev.events_from_frame(bad_value)


def test_events_are_immutable_and_validate_the_envelope():
    e = every_event_type()[1]
    with pytest.raises(AttributeError):
        e.version = 5  # type: ignore[misc]
    with pytest.raises(ValidationError, match="version: must be an integer >= 1"):
        ev.DeviceActivated(device_id="d", version=0, occurred_at=T0)
    with pytest.raises(ValidationError, match="duplicate sensor ids"):
        ev.DeviceProvisioned(
            device_id="d",
            version=1,
            occurred_at=T0,
            device_type="x",
            location="HQ",
            sensors=(SPEC, SPEC),
        )


def test_sensor_spec_errors_name_the_problem():
    with pytest.raises(ValidationError, match=r"sensors: sensor 'x' lacks \['unit'"):
        sensor_spec({"sensor_id": "x", "sensor_type": "t", "min_value": 0, "max_value": 1})
    with pytest.raises(ValidationError, match="min_value: sensor x: min_value 5.0 > max_value"):
        sensor_spec(
            {"sensor_id": "x", "sensor_type": "t", "unit": "u", "min_value": 5, "max_value": 1}
        )
    with pytest.raises(ValidationError, match="location: cannot read"):
        Location.parse("a/b/c/d")
