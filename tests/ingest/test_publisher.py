"""The publisher against a real Mosquitto broker: flow control and delivery."""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from iotlab.ingest.mqtt import connect_client
from iotlab.ingest.publisher import RECEIVE_MAXIMUM, Publisher

from .conftest import OwnBroker

pytestmark = pytest.mark.mqtt


def test_more_messages_than_message_ids_all_arrive_once(mqtt_contact) -> None:
    """More messages than MQTT's 65,535 packet ids, published in one go: paho reuses
    an id still waiting for its PUBACK as a silent error, so the publisher must hold
    its window to the broker's Receive Maximum."""
    url = f"mqtt://{mqtt_contact[0]}:{mqtt_contact[1]}"
    topic = f"iotlab-test/{uuid.uuid4().hex[:8]}/x"
    n = RECEIVE_MAXIMUM + 4_465
    seen: set[bytes] = set()
    copies = [0]
    everything = threading.Event()

    def on_message(client, userdata, message) -> None:
        copies[0] += 1
        seen.add(message.payload)
        if len(seen) == n:
            everything.set()

    subscribed = threading.Event()
    listener = connect_client(
        url,
        f"test-listen-{uuid.uuid4().hex[:8]}",
        persistent=False,
        on_connect=lambda client, flags, props: client.subscribe(topic, qos=0),
        on_message=on_message,
    )
    listener.on_subscribe = lambda *args: subscribed.set()
    listener.subscribe(topic, qos=0)
    assert subscribed.wait(10)
    try:
        with Publisher(url) as publisher:
            for i in range(n):
                publisher.publish(topic, str(i))
            assert publisher.sent == n
        assert everything.wait(60), f"{len(seen)} of {n} messages arrived"
    finally:
        listener.disconnect()
        listener.loop_stop()
    assert seen == {str(i).encode() for i in range(n)}


def test_a_broker_restart_loses_nothing_the_publisher_sent(mqtt_contact, tmp_path) -> None:
    """The broker goes down mid-stream and comes back: the publisher reconnects on its
    own and sends again what was not acknowledged, and a persistent subscriber session
    gets every message. A broker of the test's own, so the shared one stays up."""
    broker = OwnBroker(tmp_path / "broker")
    url = broker.url
    topic = f"iotlab-test/{uuid.uuid4().hex[:8]}/x"
    listener_id = f"test-listen-{uuid.uuid4().hex[:8]}"
    seen: set[bytes] = set()
    subscribed = threading.Event()
    broker.start()
    try:
        listener = connect_client(url, listener_id, persistent=True, on_message=_keep_in(seen))
        listener.on_subscribe = lambda *args: subscribed.set()
        listener.subscribe(topic, qos=1)
        assert subscribed.wait(10)
        listener.disconnect()  # its session (and subscription) stays with the broker
        listener.loop_stop()
        with Publisher(url, timeout=30) as publisher:
            for i in range(100):
                publisher.publish(topic, f"before-{i}")
            publisher.wait(10)
            broker.stop()
            for i in range(100):  # the broker is down: paho keeps these
                publisher.publish(topic, f"during-{i}")
            time.sleep(1.5)  # at least one failed reconnect attempt
            broker.start()
            publisher.wait(20)  # only the restarted broker's PUBACKs can get here
            for i in range(100):
                publisher.publish(topic, f"after-{i}")
        listener = connect_client(url, listener_id, persistent=True, on_message=_keep_in(seen))
        deadline = time.monotonic() + 20
        while len(seen) < 300 and time.monotonic() < deadline:
            time.sleep(0.05)
        listener.disconnect()
        listener.loop_stop()
    finally:
        broker.stop()
    want = {f"{when}-{i}".encode() for when in ("before", "during", "after") for i in range(100)}
    assert seen == want


def _keep_in(seen: set[bytes]):
    def on_message(client, userdata, message) -> None:
        seen.add(message.payload)

    return on_message
