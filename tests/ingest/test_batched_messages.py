"""Messages that carry several readings (a JSON array; the device topic) through the service:
each element is stored or dead-lettered on its own, and a redelivery changes nothing."""

from __future__ import annotations

import json

import pandas as pd

from iotlab.ingest import read_dead_letters

from .conftest import START


def _device_message(device: str, sensors: list[str], minute: int, *, bad: str = "") -> bytes:
    ts = (START + pd.Timedelta(minutes=minute)).isoformat()
    body: list[dict] = [
        {"sensor_id": s, "ts": ts, "value": float(minute + i)} for i, s in enumerate(sensors)
    ]
    if bad:
        body[1]["value"] = bad
    return json.dumps(body).encode()


def test_device_and_array_messages_store_each_good_reading_once(platform, clean_fleet) -> None:
    platform.provision(clean_fleet)
    device = clean_fleet.sensors["device_id"].iloc[0]
    sensors = clean_fleet.sensors.loc[
        clean_fleet.sensors["device_id"] == device, "sensor_id"
    ].tolist()
    assert len(sensors) >= 2
    # Ten minutes of one device, all its sensors per message; minute 3's second sensor
    # reads "hot". Then the first sensor's next five minutes, buffered into one array.
    topics = [f"iotlab/{device}"] * 10 + [f"iotlab/{device}/{sensors[0]}"]
    payloads = [
        _device_message(device, sensors, m, bad="hot" if m == 3 else "") for m in range(10)
    ]
    buffered = [
        {"ts": (START + pd.Timedelta(minutes=m)).isoformat(), "value": -float(m)}
        for m in range(10, 15)
    ]
    payloads.append(json.dumps(buffered).encode())
    acked = []
    with platform.ingestion_service(scoring=None, connectivity_every=None) as service:
        service.submit_messages(topics, payloads, ack=lambda: acked.append(1))
        service.flush()
        service.submit_messages(topics, payloads, ack=lambda: acked.append(2))  # redelivered
        service.flush()
    assert service.error is None
    assert acked == [1, 2]

    end = START + pd.Timedelta("1h")
    stored = platform.readings(device, start=START, end=end)
    assert len(stored) == 10 * len(sensors) - 1 + 5
    assert not stored.duplicated(["sensor_id", "ts"]).any()
    first = stored[stored["sensor_id"] == sensors[0]].sort_values("ts")
    assert first["value"].tolist() == [float(m) for m in range(10)] + [
        -float(m) for m in range(10, 15)
    ]
    second = stored[stored["sensor_id"] == sensors[1]]
    assert (START + pd.Timedelta(minutes=3)) not in set(second["ts"])
    hourly = platform.rollups(device, sensors=sensors[0], interval="1h", start=START, end=end)
    assert hourly["count"].tolist() == [15]

    letters = read_dead_letters(
        platform.store, START, pd.Timestamp.now(tz="UTC") + pd.Timedelta("1min")
    )
    # One dead letter for the bad element, naming its position and field (its redelivery
    # is the same letter).
    assert letters["reason"].tolist() == ["[1].value: must be a number, got 'hot'"]
    assert set(letters["topic"]) == {f"iotlab/{device}"}


def test_each_refused_element_of_one_message_is_a_letter_of_its_own(platform, clean_fleet) -> None:
    platform.provision(clean_fleet)
    device, sensor = clean_fleet.sensors[["device_id", "sensor_id"]].iloc[0]
    ts = START.isoformat()
    body = [
        {"sensor_id": sensor, "ts": ts, "value": 1.5},
        {"sensor_id": "ghost_1", "ts": ts, "value": 2.0},  # refused by the validator
        {"sensor_id": "ghost_2", "ts": ts, "value": 3.0},
        {"sensor_id": sensor, "ts": ts},  # refused by the parser
        {"sensor_id": sensor, "ts": "soon", "value": 4.0},
    ]
    with platform.ingestion_service(scoring=None, connectivity_every=None) as service:
        for _ in range(2):  # delivered twice
            service.submit_messages([f"iotlab/{device}"], [json.dumps(body).encode()])
            service.flush()
    assert service.error is None
    stored = platform.readings(device, start=START, end=START + pd.Timedelta("1h"))
    assert stored[["sensor_id", "value"]].values.tolist() == [[sensor, 1.5]]
    letters = read_dead_letters(
        platform.store, START, pd.Timestamp.now(tz="UTC") + pd.Timedelta("1min")
    )
    assert sorted(r[:4] for r in letters["reason"]) == ["[1].", "[2].", "[3].", "[4]."]
    assert letters["reason"].str.contains("not provisioned").sum() == 2
    assert letters["id"].is_unique
    # Each letter holds its own element, not the whole message.
    assert letters["payload"].str.len().max() < len(json.dumps(body)) / 2
    ghost = letters[letters["reason"].str.startswith("[2].")]
    assert "ghost_2" in ghost["payload"].iloc[0] and "ghost_1" not in ghost["payload"].iloc[0]


def test_a_hostile_array_costs_one_letter_or_letters_the_size_of_its_elements() -> None:
    from iotlab.ingest.batch import ParsedMessages
    from iotlab.ingest.messages import MAX_ELEMENTS

    lot = ParsedMessages()
    lot.add("iotlab/d1/t", b"[" + b",".join([b"1"] * (MAX_ELEMENTS + 1)) + b"]")
    assert [reason for *_, reason in lot.dead] == [
        f"payload: {MAX_ELEMENTS + 1} elements, over the {MAX_ELEMENTS}-element limit"
    ]
    # A message of thousands of bad elements next to a big good one: each letter holds its
    # element, not the whole (100 kB) message.
    lot = ParsedMessages()
    bad = [{"ts": 0, "value": "x" * 10}] * 3000
    lot.add("iotlab/d1/t", json.dumps([{"ts": 0, "value": 1, "status": "p" * 900}] + bad).encode())
    assert len(lot.readings) == 1 and len(lot.dead) == 3000
    assert {len(payload) for _, _, payload, _ in lot.dead} == {len(json.dumps(bad[0]))}
    assert lot.dead[0][3] == "[1].value: must be a number, got 'xxxxxxxxxx'"
