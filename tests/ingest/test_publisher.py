"""The publisher against a real Mosquitto broker: flow control and delivery."""

from __future__ import annotations

import threading
import uuid

import pytest

from iotlab.ingest.mqtt import connect_client
from iotlab.ingest.publisher import RECEIVE_MAXIMUM, Publisher

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
