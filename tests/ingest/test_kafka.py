"""Against a real Kafka broker (KRaft): the Kafka source stores each record once, dead-letters
the malformed ones, commits only what is stored, and two ``iotlab serve`` workers in one
consumer group share a topic's partitions through a kill -9 and a restart."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pandas as pd
import pytest

from iotlab.ingest import read_dead_letters
from iotlab.ingest.kafka import KafkaPublisher, KafkaSource, consumer_group_lag, create_topic
from tests.conftest import make_store_url

from .conftest import START, per_key_counts, two_worker_fleet
from .test_mqtt import _count, _ordered, _wait

pytestmark = pytest.mark.kafka

VALID = b'{"ts": "2026-01-05T00:00:00Z", "value": 1.0}'
MALFORMED = [  # (key, payload, reason prefix)
    ("{d}/{s}", b"{broken", "payload: not JSON"),
    ("{d}/{s}", b'{"value": 1.0}', "ts: is missing"),
    (None, VALID, "topic: expected"),
    ("{d}", VALID.replace(b"1.0", b"2.0"), "sensor_id: is missing"),
    ("ghost-device/{s}", VALID.replace(b"1.0", b"3.0"), "sensor not provisioned"),
]


@pytest.fixture
def kafka_url(kafka_contact) -> str:
    return f"kafka://{kafka_contact[0]}:{kafka_contact[1]}"


def _topic(kafka_url: str, partitions: int = 4) -> str:
    topic = f"test-{uuid.uuid4().hex[:10]}"
    assert create_topic(kafka_url, topic, partitions=partitions)
    return topic


def test_kafka_source_stores_each_valid_record_once_and_commits_what_it_stored(
    kafka_url, platform, clean_fleet
) -> None:
    platform.provision(clean_fleet)
    sim = clean_fleet.simulate(START, days=2 / 24, freq="1min")
    readings, beats = _ordered(sim.readings), sim.device_metrics
    key = tuple(clean_fleet.sensors.loc[0, ["device_id", "sensor_id"]])
    topic = _topic(kafka_url)
    with KafkaPublisher(kafka_url, topic=topic) as publisher:
        # Half the fleet keys a reading per record, half its sensors together per device.
        by_device = readings["device_id"].isin(clean_fleet.devices["device_id"][::2])
        publisher.publish_readings(readings[~by_device])
        publisher.publish_readings(readings[by_device], per="device")
        publisher.publish_heartbeats(beats)
        for name, payload, _ in MALFORMED:
            publisher.send(name.format(d=key[0], s=key[1]) if name else None, payload)
        records = publisher.sent
    assert records < len(readings) + len(beats) + len(MALFORMED)  # some carried several
    group = f"g-{topic}"
    service = platform.ingestion_service(batch_size=300, max_delay=0.1, scoring=None)
    service.start()
    source = KafkaSource(service, kafka_url, topic=topic, group_id=group).start()
    total = len(readings) + len(beats) + len(MALFORMED)
    try:
        _wait(lambda: source.stored >= total, what="every record stored")
        _wait(lambda: service.status.consumer_lag == 0, 10, what="the lag to reach 0")
        assert source.assignment == [0, 1, 2, 3]  # the only member holds every partition
    finally:
        source.pause()
        service.stop()
        source.stop()
    assert service.error is None and source.error is None
    stored = pd.concat([platform.readings(d) for d in clean_fleet.devices["device_id"]])
    assert len(stored) == len(readings)
    assert set(per_key_counts(stored, ["device_id", "sensor_id", "ts"])) == {1}
    merged = stored.merge(readings, on=["device_id", "sensor_id", "ts"], suffixes=("", "_sent"))
    assert (merged["value"] - merged["value_sent"]).abs().max() < 1e-9
    heartbeats = pd.concat([platform.heartbeats(d) for d in clean_fleet.devices["device_id"]])
    assert len(heartbeats) == len(beats)
    now = pd.Timestamp.now(tz="UTC")
    letters = read_dead_letters(platform.store, now - pd.Timedelta("1h"), now)
    assert len(letters) == len(MALFORMED)
    assert (letters["source"] == "kafka").all()
    for _, payload, reason in MALFORMED:
        row = letters[letters["payload"] == payload.decode()]
        assert any(r.startswith(reason) for r in row["reason"]), (payload, letters)
    lag = consumer_group_lag(kafka_url, topic=topic, group_id=group)
    assert lag["lag"].sum() == 0  # everything stored was committed ...
    assert lag["committed"].sum() == records  # ... and nothing beyond it


def _serve(kafka_url: str, topic: str, group: str, store: str, log: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "iotlab.ingest", "serve", "--kafka", kafka_url]
    command += ["--topic", topic, "--group", group, "--store", store]
    # Scored as in production, but by the rolling z-score: this test is about storage and
    # partitions, not detection, and the default (Prophet) would fit a model per sensor at
    # every (re)start. Sensors stay with one partition, so each worker scores its own.
    command += ["--detector", "zscore"]
    command += ["--batch-size", "100", "--max-delay", "0.05", "--log-every", "1"]
    with log.open("w") as stderr:
        return subprocess.Popen(command, stderr=stderr, stdout=subprocess.DEVNULL)


def _assignments(log: Path) -> list[list[int]]:
    """Every partition assignment a worker logged, in order."""
    found = re.findall(r"assigned partitions \[([\d, ]*)\]", log.read_text())
    return [[int(p) for p in a.split(",") if p.strip()] for a in found]


def _holds(log: Path, partitions: int) -> bool:
    got = _assignments(log)
    return bool(got) and len(got[-1]) == partitions


def test_two_serve_workers_share_partitions_and_survive_kill_9(
    kafka_url, cassandra_contact, request, tmp_path
) -> None:
    """Two workers on a 4-partition topic; one is killed (kill -9) mid-stream and started
    again: every reading is stored once, roll-ups agree, the partitions move and return."""
    store = make_store_url("cassandra", request, tmp_path)
    lab, devices, readings = two_worker_fleet(store, 8)
    topic = _topic(kafka_url)
    group = f"g-{topic}"
    logs = {name: tmp_path / f"{name}.log" for name in ("a", "b", "a2")}
    workers = {"a": _serve(kafka_url, topic, group, store, logs["a"])}
    try:
        _wait(lambda: _holds(logs["a"], 4), 60, "worker a to hold every partition")
        workers["b"] = _serve(kafka_url, topic, group, store, logs["b"])
        _wait(lambda: _holds(logs["a"], 2) and _holds(logs["b"], 2), 60, "a and b to share")
        assert sorted(_assignments(logs["a"])[-1] + _assignments(logs["b"])[-1]) == [0, 1, 2, 3]
        sent = threading.Event()

        def produce() -> None:  # a steady stream, so that the kill lands mid-stream
            with KafkaPublisher(kafka_url, topic=topic) as publisher:
                for start in range(0, len(readings), 100):
                    publisher.publish_readings(readings.iloc[start : start + 100])
                    time.sleep(0.2)
            sent.set()

        producer = threading.Thread(target=produce)
        producer.start()
        _wait(lambda: len(_count(lab, devices)) > len(readings) // 4, what="a quarter stored")
        workers["a"].send_signal(signal.SIGKILL)
        workers["a"].wait(10)
        stored_at_kill = len(_count(lab, devices))
        # The broker hands a's partitions to b once a's session times out.
        _wait(lambda: _holds(logs["b"], 4), 60, "b to take over every partition")
        workers["a2"] = _serve(kafka_url, topic, group, store, logs["a2"])
        _wait(lambda: _holds(logs["a2"], 2) and _holds(logs["b"], 2), 60, "a2 and b to share")
        shared = sorted(_assignments(logs["a2"])[-1] + _assignments(logs["b"])[-1])
        producer.join(60)
        assert sent.is_set()
        _wait(lambda: len(_count(lab, devices)) >= len(readings), 60, "every reading stored")
        _wait(
            lambda: consumer_group_lag(kafka_url, topic=topic, group_id=group)["lag"].sum() == 0,
            30,
            "every offset committed",
        )
    finally:
        for process in workers.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in workers.values():
            process.wait(30)
    assert workers["a"].returncode == -signal.SIGKILL
    for name in ("b", "a2"):
        assert workers[name].returncode == 0, logs[name].read_text()
    assert "consumer lag" in logs["b"].read_text()  # b ran throughout (a2 may be brief)
    assert shared == [0, 1, 2, 3]  # rebalanced again once a2 joined
    stored = _count(lab, devices)
    hours = pd.concat(
        [lab.rollups(d, start=START, end=START + pd.Timedelta("1D")) for d in devices]
    )
    minutes = pd.concat(
        [
            lab.rollups(d, start=START, end=START + pd.Timedelta("1D"), interval="1min")
            for d in devices
        ]
    )
    lab.close()
    assert 0 < stored_at_kill < len(readings)
    assert len(stored) == len(readings)
    assert set(per_key_counts(stored, ["device_id", "sensor_id", "ts"])) == {1}
    assert hours["count"].sum() == len(readings)  # roll-ups count every reading once too
    assert minutes["count"].sum() == len(readings)
    expected = readings.groupby(["device_id", "sensor_id"])["value"].sum()
    got = hours.groupby(["device_id", "sensor_id"])["sum"].sum()
    assert (got.reindex(expected.index) - expected).abs().max() < 1e-6


def test_serve_needs_a_source_and_rejects_a_bad_kafka_url(tmp_path) -> None:
    store = f"sqlite:///{tmp_path / 'x.db'}"
    for extra, message in (
        ([], "needs a source: --mqtt URL and/or --kafka URL"),
        (["--kafka", "http://nowhere"], "Kafka URL must look like kafka://host:port"),
    ):
        result = subprocess.run(
            [sys.executable, "-m", "iotlab.cli", "serve", "--store", store, *extra],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 2, result.stderr
        assert message in result.stderr
