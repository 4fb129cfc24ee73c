"""Parsing MQTT messages: every malformed kind gets a reason naming the field."""

from __future__ import annotations

import pytest

from iotlab.ingest.messages import parse_message

GOOD_TS = '"2026-01-01T00:00:00.000Z"'


@pytest.mark.parametrize(
    ("topic", "payload", "reason"),
    [
        ("iotlab/d1/t", b"{not json", "payload: not JSON"),
        ("iotlab/d1/t", b"[1, 2]", "payload: expected a JSON object, got list"),
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
        ("iotlab/d1", b"{}", "topic: expected iotlab/<device_id>/<sensor_id|heartbeat>"),
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
