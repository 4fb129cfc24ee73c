"""Poison messages and rows: each is a dead letter or a rejected row with a reason, never an
exception that stops the service; fuzzed with hypothesis."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from iotlab.errors import IotlabError
from iotlab.ingest import read_dead_letters
from iotlab.ingest.batch import PendingBatch
from iotlab.ingest.messages import LETTER_PAYLOAD_BYTES, parse_message
from iotlab.store.validate import validate_metrics, validate_readings

from .conftest import START

TS = b'"ts": "2026-01-05T00:00:00Z"'
HUGE = 2 * (1 << 20)

#: (topic, payload, start of the reason); {d} and {s} name a provisioned sensor.
POISON = [
    ("iotlab/{d}/{s}", b'{"ts": 1e20, "value": 1}', "ts: outside the supported range"),
    ("iotlab/{d}/{s}", b"[" * 100_000 + b"]" * 100_000, "payload: JSON nested too deeply"),
    ("iotlab/{d}/{s}", b'{"ts": "2262-05-01T00:00:00Z", "value": 1}', "ts: outside the"),
    ("iotlab/{d}/{s}", b'{"ts": "9999-12-31T00:00:00+00:00", "value": 1}', "ts: outside the"),
    (
        "iotlab/{d}/{s}",
        b"{" + TS + b', "value": 1, "pad": "' + b"x" * HUGE + b'"}',
        "payload: 2097",
    ),
    ("iotlab/{d}", b"{" + TS + b', "value": 1}', "sensor_id: is missing"),
    ("iotlab/{d}/{s}/extra", b"{" + TS + b', "value": 1}', "topic: expected iotlab/<device_id>"),
    ("iotlab/{d}/{s}", b"{" + TS + b', "value": 1, "status": "\\ud800"}', "status: not valid"),
    ("iotlab/" + "x" * 70_000 + "/{s}", b"{" + TS + b', "value": 1}', "topic: device_id: longer"),
    ("iotlab/{d}/{s}", b"{" + TS + b', "value": 1e999}', "value: must be a finite number"),
    ("iotlab/{d}/{s}", b"{" + TS + b', "value": 1' + b"0" * 400 + b"}", "value: must be a finite"),
    ("iotlab/{d}/{s}", b"{" + TS + b', "value": 1.7e308}', "value: magnitude over 1e+300"),
    ("iotlab/{d}/{s}", b"{" + TS + b', "value": 1, "quality": 1e20}', "quality: must be an int"),
    (
        "iotlab/{d}/{s}",
        b"{" + TS + b', "value": 1, "quality": ' + b"1" + b"0" * 20 + b"}",
        "quality: outside",
    ),
    ("iotlab/{d}/heartbeat", b"{" + TS + b', "cpu": -1e301}', "cpu: magnitude over"),
    ("iotlab/{d}/{s}", b"\xff\xfe not utf-8", "payload: not JSON"),
]


def _poison(device: str, sensor: str) -> list[tuple[str, bytes, str]]:
    return [(t.format(d=device, s=sensor), payload, reason) for t, payload, reason in POISON]


def test_each_poison_message_parses_to_a_dead_letter_with_its_reason() -> None:
    for topic, payload, reason in _poison("d1", "temp_01"):
        parsed = parse_message(topic, payload)
        assert parsed.kind == "dead", (topic[:40], payload[:60])
        assert parsed.reason.startswith(reason), (parsed.reason, reason)
        assert len(parsed.reason) < 300  # a reason never carries the payload along


def test_payload_limit_is_configurable() -> None:
    payload = b'{"ts": "2026-01-05T00:00:00Z", "value": 1.5}'
    assert parse_message("iotlab/d/t", payload).kind == "reading"
    too_big = parse_message("iotlab/d/t", payload, max_payload=len(payload) - 1)
    assert (
        too_big.reason == f"payload: {len(payload)} bytes, over the {len(payload) - 1}-byte limit"
    )


def test_poison_and_valid_messages_in_one_batch_on_both_stores(platform, clean_fleet) -> None:
    """The valid readings around the poison are stored; each poison message is one dead
    letter, its payload capped and named by size and SHA-256; every ack is called."""
    platform.provision(clean_fleet)
    sensor = clean_fleet.sensors.iloc[0]
    device, sensor_id = sensor["device_id"], sensor["sensor_id"]
    valid = [
        (
            f"iotlab/{device}/{sensor_id}",
            json.dumps({"ts": (START + pd.Timedelta(minutes=i)).isoformat(), "value": i}).encode(),
        )
        for i in range(30)
    ]
    poison = _poison(device, sensor_id)
    acked = []
    with platform.ingestion_service(scoring=None, connectivity_every=None) as service:
        service.submit_messages(*map(list, zip(*valid[:15])), ack=lambda: acked.append(1))
        service.submit_messages(
            [t for t, _, _ in poison], [p for _, p, _ in poison], ack=lambda: acked.append(2)
        )
        service.submit_messages(*map(list, zip(*valid[15:])), ack=lambda: acked.append(3))
        service.flush()
    assert service.error is None
    assert sorted(acked) == [1, 2, 3]
    stored = platform.readings(
        device, sensors=sensor_id, start=START, end=START + pd.Timedelta("1h")
    )
    assert stored["value"].tolist() == list(map(float, range(30)))
    letters = read_dead_letters(
        platform.store, START, pd.Timestamp.now(tz="UTC") + pd.Timedelta("1min")
    )
    assert len(letters) == len(poison)
    for _, _, reason in poison:
        assert (letters["reason"].str.startswith(reason)).any(), reason
    assert letters["payload"].str.len().max() < LETTER_PAYLOAD_BYTES + 200
    assert letters["topic"].str.len().max() < LETTER_PAYLOAD_BYTES + 200
    huge = next(p for _, p, r in poison if r.startswith("payload: 2097"))
    digest = hashlib.sha256(huge).hexdigest()
    assert letters["payload"].str.contains(f"{len(huge)} bytes, sha256 {digest}").sum() == 1


# -- fuzzing ------------------------------------------------------------------------------
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
reading_fields = st.fixed_dictionaries(
    {},
    optional={
        "ts": json_values
        | st.integers(-(2**70), 2**70)
        | st.datetimes(timezones=st.just(__import__("datetime").UTC)).map(lambda d: d.isoformat())
        | st.text(max_size=40),
        "value": json_values,
        "quality": json_values,
        "status": json_values,
        "cpu": json_values,
        "sensor_id": json_values | st.sampled_from(["temp_01", "heartbeat", ""]),
    },
)
topics = st.one_of(
    st.text(max_size=30),
    st.tuples(
        st.sampled_from(["iotlab", "other", ""]),
        st.text(max_size=12),
        st.sampled_from(["heartbeat", "temp_01"]) | st.text(max_size=12),
    ).map("/".join),
    st.text(max_size=12).map("iotlab/".__add__),  # the device topic
)


def _dumps(body: object) -> bytes:
    return json.dumps(body, allow_nan=True).encode("utf-8", "surrogatepass")


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    topic=topics,
    body=reading_fields | st.lists(reading_fields, max_size=4) | json_values,
    raw=st.binary(max_size=64) | st.none(),
)
def test_fuzzed_messages_become_rows_that_store_or_dead_letters(topic, body, raw) -> None:
    payload = raw if raw is not None else _dumps(body)
    batch = PendingBatch()
    batch.add_message(topic, payload)  # never raises
    n_elements = len(body) if raw is None and isinstance(body, list) and body else 1
    # One row or dead letter per element of an array, unless the message as a whole
    # cannot be read (then one dead letter).
    assert len(batch.messages) in {1, n_elements}
    assert all(reason for *_, reason in batch.dead)
    # A parsed row passes the batch validator untouched: the parser lets through nothing
    # the store would refuse (or wrap, or overflow on).
    for parts, validate in (
        (batch.reading_parts(), validate_readings),
        (batch.metric_parts(), validate_metrics),
    ):
        for part in parts:
            clean, rejected = validate(part.frame, require_provisioned=False)
            assert rejected.empty, rejected["reason"].tolist()
            assert len(clean) == len(part.frame)


cells = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=10),
    st.datetimes(),
    st.datetimes(timezones=st.just(__import__("datetime").UTC)),
    st.sampled_from(["2026-01-05T00:00:00Z", "3000-01-01T00:00Z", "1500-01-01T00:00Z", "x\ud800"]),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(st.tuples(cells, cells, cells, cells, cells, cells), min_size=1, max_size=6))
def test_fuzzed_frames_split_into_clean_and_rejected_rows(rows) -> None:
    frame = pd.DataFrame(
        rows, columns=["device_id", "sensor_id", "ts", "value", "quality", "status"]
    )
    try:
        clean, rejected = validate_readings(frame, require_provisioned=False)
    except IotlabError:
        return
    assert len(clean) + len(rejected) == len(frame)
    assert rejected["reason"].map(bool).all()
    if len(clean):
        assert np.isfinite(clean["value"]).all() and (clean["value"].abs() <= 1e300).all()
        assert clean["quality"].between(-(2**31), 2**31 - 1).all()
        for column in ("device_id", "sensor_id", "status"):
            clean[column].map(lambda text: text.encode("utf-8"))  # raises on a lone surrogate
        assert clean["ts"].notna().all()


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        ("quality", 1e20, "quality outside the 32-bit integer range"),
        ("value", 1.7e308, "value magnitude over 1e+300"),
        ("ts", "3000-01-01T00:00:00Z", "ts outside the supported range"),
        ("device_id", "d\ud800", "device_id: not valid UTF-8"),
        ("sensor_id", "s" * 70_000, "sensor_id: longer than 1024 bytes"),
    ],
)
def test_ingest_refuses_the_bad_row_and_stores_the_others(platform, column, value, reason) -> None:
    frame = pd.DataFrame(
        {
            "device_id": ["d1"] * 3,
            "sensor_id": ["temp_01"] * 3,
            "ts": pd.date_range(START, periods=3, freq="1min").astype(object),
            "value": [1.0, 2.0, 3.0],
            "quality": [100, 100, 100],
        }
    )
    frame[column] = frame[column].astype(object)
    frame.loc[1, column] = value
    result = platform.ingest(frame, require_provisioned=False)
    assert result.written == 2
    assert result.rejected["reason"].tolist()[0].startswith(reason)
    stored = platform.readings(
        "d1", sensors="temp_01", start=START, end=START + pd.Timedelta("1h")
    )
    assert stored["value"].tolist() == [1.0, 3.0]
    assert stored["quality"].tolist() == [100, 100]
    hour = platform.rollups(
        "d1", sensors="temp_01", start=START, end=START + pd.Timedelta("1h"), interval="1h"
    )
    assert hour["count"].sum() == 2 and np.isfinite(hour["sum"]).all()
