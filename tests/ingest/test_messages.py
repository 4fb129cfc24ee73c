"""Parsing MQTT messages: every malformed kind gets a reason naming the field."""

from __future__ import annotations

import pytest

from iotlab.ingest.messages import parse_message, parse_payload

GOOD_TS = '"2026-01-01T00:00:00.000Z"'


@pytest.mark.parametrize(
    ("topic", "payload", "reason"),
    [
        ("iotlab/d1/t", b"{not json", "payload: not JSON"),
        ("iotlab/d1/t", b"[1, 2]", "payload: carries 2 readings; parse_payload"),
        ("iotlab/d1/t", b'"hot"', "payload: expected a JSON object or array, got str"),
        ("iotlab/d1/t", b"[]", "payload: an empty array carries no reading"),
        ("iotlab/d1/t", b'{"value": 1.0}', "ts: is missing"),
        ("iotlab/d1/t", b'{"ts": ' + GOOD_TS.encode() + b"}", "value: is missing"),
        (
            "iotlab/d1/t",
            b'{"ts": ' + GOOD_TS.encode() + b', "value": "hot"}',
            "value: must be a number, got 'hot'",
        ),
        (
            "iotlab/d1/t",
            b'{"ts": ' + GOOD_TS.encode() + b', "value": NaN}',
            "value: must be a finite number, got nan",
        ),
        ("iotlab/d1/t", b'{"ts": "yesterday", "value": 1}', "ts: unparseable timestamp"),
        (
            "iotlab/d1/t",
            b'{"ts": "2026-01-01T00:00:00", "value": 1}',
            "ts: naive timestamp: give a time zone",
        ),
        (
            "iotlab/d1/t",
            b'{"ts": ' + GOOD_TS.encode() + b', "value": 1, "quality": "x"}',
            "quality: must be an integer",
        ),
        ("iotlab", b"{}", "topic: expected iotlab/<device_id>[/<sensor_id|heartbeat>]"),
        ("iotlab/d1/t/x", b"{}", "topic: expected iotlab/<device_id>[/<sensor_id|heartbeat>]"),
        ("iotlab/d1", b'{"ts": 0, "value": 1}', "sensor_id: is missing"),
        (
            "iotlab/d1/heartbeat",
            b'{"ts": ' + GOOD_TS.encode() + b', "cpu": "busy"}',
            "cpu: must be a number",
        ),
    ],
)
def test_malformed_messages_get_a_reason(topic: str, payload: bytes, reason: str) -> None:
    parsed = parse_message(topic, payload)
    assert parsed.kind == "dead"
    assert parsed.reason.startswith(reason)


def test_reading_and_heartbeat_rows() -> None:
    reading = parse_message(
        "iotlab/d1/temp_01", b'{"ts": "2026-01-01T01:00:00+01:00", "value": 3, "status": "x"}'
    )
    assert reading.kind == "reading"
    assert reading.row == ("d1", "temp_01", 1767225600000, 3.0, 100, "x")
    beat = parse_message(
        "iotlab/d1/heartbeat", b'{"ts": 1767225600000, "cpu": 5, "battery": null}'
    )
    assert beat.kind == "heartbeat"
    assert beat.row[:3] == ("d1", 1767225600000, 5.0)
    assert beat.row[4] != beat.row[4]  # battery not reported: NaN


def test_an_array_on_a_sensor_topic_is_that_sensors_readings_each_judged_alone() -> None:
    payload = (
        b'[{"ts": 1767225600000, "value": 1}, {"ts": 1767225660000, "value": "hot"},'
        b' 7, {"ts": 1767225720000, "value": 3, "quality": 50}]'
    )
    parsed = parse_payload("iotlab/d1/t", payload)
    assert [p.kind for p in parsed] == ["reading", "dead", "dead", "reading"]
    assert parsed[0].row == ("d1", "t", 1767225600000, 1.0, 100, "ok")
    assert parsed[3].row == ("d1", "t", 1767225720000, 3.0, 50, "ok")
    assert parsed[1].reason == "[1].value: must be a number, got 'hot'"
    assert parsed[2].reason == "[2]: expected a JSON object, got int"


def test_the_device_topic_carries_a_devices_sensors_read_together() -> None:
    payload = (
        b'[{"sensor_id": "temp_01", "ts": 0, "value": 21.5},'
        b' {"sensor_id": "hum_01", "ts": 0, "value": 40, "status": "drift"},'
        b' {"ts": 0, "value": 1}, {"sensor_id": "heartbeat", "ts": 0, "cpu": 3},'
        b' {"sensor_id": 5, "ts": 0, "value": 1}, {"sensor_id": "", "ts": 0, "value": 1}]'
    )
    parsed = parse_payload("iotlab/d9", payload)
    assert parsed[0].row == ("d9", "temp_01", 0, 21.5, 100, "ok")
    assert parsed[1].row == ("d9", "hum_01", 0, 40.0, 100, "drift")
    assert [p.reason.split(":")[0] for p in parsed[2:]] == [
        f"[{i}].sensor_id" for i in range(2, 6)
    ]
    assert "heartbeats have a topic of their own" in parsed[3].reason
    # One object on the device topic is one reading.
    (one,) = parse_payload("iotlab/d9", b'{"sensor_id": "t", "ts": 0, "value": 2}')
    assert one.row[:4] == ("d9", "t", 0, 2.0)
    assert parse_message("iotlab/d9", b'{"sensor_id": "t", "ts": 0, "value": 2}') == one


def test_an_array_of_heartbeats_on_the_heartbeat_topic() -> None:
    parsed = parse_payload("iotlab/d1/heartbeat", b'[{"ts": 0, "cpu": 1}, {"ts": 60000}]')
    assert [p.kind for p in parsed] == ["heartbeat", "heartbeat"]
    assert parsed[0].row[:3] == ("d1", 0, 1.0)
    assert parsed[1].row[:2] == ("d1", 60000)
    assert parsed[1].row[2] != parsed[1].row[2]  # cpu not reported: NaN
