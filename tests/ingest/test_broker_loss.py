"""Against brokers of the tests' own: the MQTT and Kafka sources outlive their broker.

A long-running ``iotlab serve`` meets a broker's restart sooner or later. The source must
notice and say so (log, ``status.broker_connected``, not ``healthy``), get the broker
back by itself (no restart of the process), and lose or double nothing it was sent.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pandas as pd
import pytest

import iotlab
from iotlab.ingest.kafka import KafkaPublisher, KafkaSource, _ClientLog, create_topic
from iotlab.ingest.messages import reading_payload
from iotlab.ingest.mqtt import MqttSource
from iotlab.ingest.publisher import Publisher

from .conftest import START, OwnBroker, per_key_counts
from .test_mqtt import _wait

KAFKA_SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "kafka"


def _stored(lab: iotlab.Platform, devices) -> pd.DataFrame:
    return pd.concat([lab.readings(d) for d in devices], ignore_index=True)


def _hours(clean_fleet) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Two hours of the fleet's readings, and each hour apart."""
    sim = clean_fleet.simulate(START, days=2 / 24, freq="1min")
    readings = sim.readings.sort_values(["ts", "device_id", "sensor_id"], ignore_index=True)
    first = readings["ts"] < START + pd.Timedelta("1h")
    return readings, readings[first], readings[~first]


def _lose_and_get_back(service, source, publish, lose, restore, before, after) -> None:
    """Publish ``before``, lose the broker, check that the service says so, get the broker
    back and publish ``after`` once the source says it is connected again; return once
    everything is stored (and anything stored twice would have been)."""
    publish(before)
    _wait(lambda: service.stats.readings_written == len(before), 60, "the first hour")
    assert service.status.broker_connected is True
    lose()
    _wait(lambda: not source.connected, 60, "the source to notice")
    status = service.status
    assert status.broker_connected is False and not status.healthy
    restore()
    _wait(lambda: source.connected, 60, "the source to get the broker back")
    publish(after)
    total = len(before) + len(after)
    _wait(lambda: service.stats.readings_written >= total, 90, "what was sent after")
    service.flush()
    time.sleep(0.5)  # anything stored twice would be written by now


@pytest.mark.mqtt
def test_the_mqtt_source_reconnects_by_itself_after_the_broker_crashed(
    tmp_path, clean_fleet
) -> None:
    broker = OwnBroker(tmp_path / "broker")
    broker.start()
    readings, before, after = _hours(clean_fleet)
    devices = clean_fleet.devices["device_id"]
    with iotlab.connect(f"sqlite:///{tmp_path / 'lab.db'}") as lab:
        lab.provision(clean_fleet)
        service = lab.ingestion_service(
            batch_size=200, max_delay=0.05, scoring=None, connectivity_every=None
        )
        service.start()
        source = MqttSource(service, broker.url, client_id=f"t-{uuid.uuid4().hex[:8]}")
        source.start()
        try:
            receiver = source.pid

            def publish(frame: pd.DataFrame) -> None:
                with Publisher(broker.url) as publisher:
                    publisher.publish_readings(frame, per="device")

            # The crashed broker forgets the subscription: what is published before the
            # receiver subscribes again goes to no one (MQTT), hence the wait for it.
            _lose_and_get_back(service, source, publish, broker.crash, broker.start, before, after)
            stored = _stored(lab, devices)
            same_receiver = source.pid == receiver
        finally:
            source.pause()
            service.stop()
            source.stop(end_session=True)
            broker.stop()
    assert service.error is None and source.error is None
    # The same receiver process reconnected: it was not restarted.
    assert same_receiver and source.restarts == 0 and source.reconnects == 1
    assert len(stored) == len(readings)
    assert set(per_key_counts(stored, ["device_id", "sensor_id", "ts"])) == {1}
    assert service.stats.readings_written == len(readings)


def _free_port_pair() -> int:
    """A port whose next one is free too (Kafka's client and controller ports)."""
    while True:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port


class OwnKafka:
    """A Kafka broker of this test's own (scripts/kafka), to stop and start again."""

    def __init__(self, base: Path) -> None:
        self.port = _free_port_pair()
        self.url = f"kafka://127.0.0.1:{self.port}"
        self.env = {**os.environ, "KAFKA_PORT": str(self.port), "KAFKA_BASE": str(base)}

    def run(self, command: str) -> None:
        result = subprocess.run(
            [str(KAFKA_SCRIPT), command], env=self.env, capture_output=True, text=True, timeout=180
        )
        assert result.returncode == 0, result.stderr[-3000:]


@pytest.mark.kafka
def test_the_kafka_source_says_the_brokers_are_gone_and_goes_on_when_back(
    tmp_path, clean_fleet, caplog
) -> None:
    broker = OwnKafka(tmp_path / "kafka")
    broker.run("start")
    readings, before, after = _hours(clean_fleet)
    topic = f"loss-{uuid.uuid4().hex[:6]}"
    create_topic(broker.url, topic, partitions=2)
    devices = clean_fleet.devices["device_id"]
    caplog.set_level(logging.INFO, logger="iotlab")
    with iotlab.connect(f"sqlite:///{tmp_path / 'lab.db'}") as lab:
        lab.provision(clean_fleet)
        service = lab.ingestion_service(
            batch_size=200, max_delay=0.05, scoring=None, connectivity_every=None
        )
        service.start()
        source = KafkaSource(service, broker.url, topic=topic, group_id=f"g-{topic}").start()
        try:

            def publish(frame: pd.DataFrame) -> None:
                with KafkaPublisher(broker.url, topic=topic) as publisher:
                    publisher.publish_readings(frame, per="device")

            def restart() -> None:
                time.sleep(3)  # librdkafka retries its connections many times meanwhile
                broker.run("start")

            _lose_and_get_back(
                service, source, publish, lambda: broker.run("stop"), restart, before, after
            )
            stored = _stored(lab, devices)
        finally:
            source.stop()
            service.stop()
            broker.run("stop")
    assert service.error is None and source.error is None
    assert source.reconnects == 1
    assert len(stored) == len(readings)
    assert set(per_key_counts(stored, ["device_id", "sensor_id", "ts"])) == {1}
    said = [r for r in caplog.records if r.name == "iotlab.ingest.kafka"]
    assert sum("no Kafka broker" in r.getMessage() for r in said) == 1
    assert sum("answers again" in r.getMessage() for r in said) == 1
    # The client's own connection retries are a few lines, not one per attempt.
    refused = [r for r in caplog.records if "Connection refused" in r.getMessage()]
    assert 1 <= len(refused) <= 3, [r.getMessage() for r in refused]


def test_the_kafka_client_log_says_a_repeated_line_once_and_counts_the_rest(caplog) -> None:
    log = _ClientLog(quiet=0.2)
    caplog.set_level(logging.DEBUG, logger="iotlab.kafka.client")
    for attempt in range(50):  # as librdkafka retries a refused connection
        log.log(logging.ERROR, "FAIL [c#1]: Connect failed (after %dms in state CONNECT)", attempt)
    log.log(logging.WARNING, "another line")
    time.sleep(0.25)
    log.log(logging.ERROR, "FAIL [c#1]: Connect failed (after %dms in state CONNECT)", 7)
    lines = [(r.levelno, r.getMessage()) for r in caplog.records]
    assert lines[0] == (logging.ERROR, "FAIL [c#1]: Connect failed (after 0ms in state CONNECT)")
    assert lines[1] == (logging.INFO, "another line")  # librdkafka's warnings are INFO
    assert len(lines) == 3 and lines[2][1].startswith("FAIL [c#1]: Connect failed (after 7ms")
    assert "(49 more like it in the last 0 s)" in lines[2][1]
    log.log(logging.ERROR, "not a format", "but an argument")  # logged, parts kept
    assert caplog.records[-1].getMessage() == "not a format but an argument"


class _HeldService:
    """Takes chunks as a service does, but holds the first for ``hold`` seconds (as a
    store outage holds the MQTT source) and counts what it was given."""

    topic_root = "held"
    max_payload = None

    def __init__(self, hold: float) -> None:
        self.hold = hold
        self.readings = 0

    def submit_parsed(self, parsed, ack) -> None:
        if self.hold:
            time.sleep(self.hold)
            self.hold = 0
        self.readings += len(parsed)
        ack()


@pytest.mark.mqtt
def test_a_parent_that_takes_nothing_for_a_while_does_not_cost_the_broker_connection(
    mqtt_contact, caplog
) -> None:
    """While the service takes nothing (a store outage), the receiver keeps its connection
    alive: the broker, which drops a client silent for 1.5 keep-alives, does not drop it,
    and nothing is delivered twice."""
    url = f"mqtt://{mqtt_contact[0]}:{mqtt_contact[1]}"
    root = f"held{uuid.uuid4().hex[:8]}"
    payloads = [reading_payload(START.value // 10**6 + i * 1000, 1.0) for i in range(30_000)]
    service = _HeldService(hold=6.0)  # three keep-alives of 2 s
    service.topic_root = root
    caplog.set_level(logging.INFO, logger="iotlab")
    source = MqttSource(service, url, client_id=f"held-{uuid.uuid4().hex[:8]}", keepalive=2)
    source.start()
    try:
        with Publisher(url, topic_root=root) as publisher:  # far more than the pipe holds
            for payload in payloads:
                publisher.publish(f"{root}/d1/t1", payload)
        _wait(lambda: service.readings >= len(payloads), 60, "every reading")
        time.sleep(0.5)  # a redelivery would arrive by now
    finally:
        source.pause()
        source.stop(end_session=True)
    assert service.readings == len(payloads)
    assert source.reconnects == 0 and source.restarts == 0
    assert not [r for r in caplog.records if "lost" in r.getMessage()]
