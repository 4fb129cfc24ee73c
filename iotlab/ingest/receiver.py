"""MQTT reception in a process of its own, so paho's per-message work does not hold the
service's GIL.

paho-mqtt is pure Python: reading, decoding and acknowledging one message costs tens of
microseconds, which at thousands of messages a second was a quarter of the ingestion
service's time, all under the GIL the service's validation, scoring and Cassandra driver
need too. So :class:`~iotlab.ingest.mqtt.MqttSource` runs the subscriber client in a
child process (``python -m iotlab.ingest.receiver``, not ``multiprocessing``: a spawned
child would re-run the user's script) that parses the messages (JSON, topic, fields) and
hands them over in chunks of :class:`~iotlab.ingest.batch.ParsedMessages` through a
socket pair, and takes back acknowledgements per chunk:

- child -> parent: ``("ready",)`` once subscribed, ``("failed", reason)`` if it cannot
  connect, then ``("chunk", seq, parsed)`` at most every ``CHUNK_SECONDS`` or
  ``CHUNK_MESSAGES`` messages;
- parent -> child: ``("ack", seq)`` once the service stored a chunk (the child PUBACKs its
  messages then, not before), and ``("stop", end_session)``.

If the parent dies (kill -9), the pipe closes and the child exits at once without
acknowledging anything, so the broker redelivers to the next session: at-least-once
delivery holds across the two processes as it did in one. If one of the child's threads
dies (its hand-over thread, paho's network thread), the child exits too, and the parent
starts a new one (see :class:`~iotlab.ingest.mqtt.MqttSource`): never a silent stall.
"""

from __future__ import annotations

import os
import sys
import threading
import time
import traceback
from multiprocessing.connection import Connection
from typing import Any

__all__ = ["CHUNK_MESSAGES", "CHUNK_SECONDS", "receive"]

#: Most messages in one chunk handed to the service, and most seconds a message waits.
CHUNK_MESSAGES = 1000
CHUNK_SECONDS = 0.02
#: Seconds between checks that the receiver's threads are alive.
WATCH_SECONDS = 1.0


def receive(
    url: str,
    client_id: str,
    root: str,
    connection: Any,
    max_payload: int | None = None,
    share_group: str | None = None,
) -> None:
    """Child process: subscribe to ``<root>/#`` and trade chunks for acks over ``connection``.

    The whole tree under the root, not just ``<root>/+/+``: a message on a topic with the
    wrong number of levels becomes a dead letter instead of vanishing unseen. With
    ``share_group``, through the shared subscription ``$share/<share_group>/<root>/#``.
    """
    from iotlab.ingest.batch import ParsedMessages
    from iotlab.ingest.messages import MAX_PAYLOAD_BYTES
    from iotlab.ingest.mqtt import connect_client
    from iotlab.ingest.runtime import settle_heap

    max_payload = MAX_PAYLOAD_BYTES if max_payload is None else max_payload
    topic = f"{root}/#" if not share_group else f"$share/{share_group}/{root}/#"
    pending: list[tuple[str, bytes, int, int]] = []  # topic, payload, mid, qos
    arrived = threading.Condition()
    subscribed = threading.Event()

    def on_connect(client: Any, flags: Any, properties: Any) -> None:
        client.subscribe(topic, qos=1)

    def on_message(client: Any, userdata: Any, message: Any) -> None:
        try:
            name = message.topic
        except UnicodeDecodeError:  # kept, escaped, so that it is dead-lettered and acked
            name = message._topic.decode("utf-8", "surrogateescape")
        with arrived:
            pending.append((name, message.payload, message.mid, message.qos))
            if len(pending) >= CHUNK_MESSAGES:
                arrived.notify()

    try:
        client = connect_client(
            url,
            client_id,
            persistent=True,
            manual_ack=True,
            on_connect=on_connect,
            on_message=on_message,
        )
    except Exception as exc:  # reported to the parent, which raises it
        connection.send(("failed", str(exc)))
        return
    settle_heap()  # this process only receives from here on
    client.on_subscribe = lambda *args: subscribed.set()
    if not subscribed.wait(10):
        client.subscribe(topic, qos=1)  # on_subscribe may have fired before it was set
        subscribed.wait(10)
    connection.send(("ready",))

    unacked: dict[int, list[tuple[int, int]]] = {}
    sending = threading.Lock()
    stopping = threading.Event()

    def hand_over() -> None:
        try:
            send_chunks()
        except BaseException:  # a thread that died would stall us silently: end loudly
            traceback.print_exc()
            os._exit(1)

    def send_chunks() -> None:
        seq = 0
        while not stopping.is_set():
            with arrived:
                if len(pending) < CHUNK_MESSAGES:
                    arrived.wait(CHUNK_SECONDS)
                if stopping.is_set():
                    return
                taken = pending[:CHUNK_MESSAGES]
                del pending[:CHUNK_MESSAGES]
            if not taken:
                continue
            seq += 1
            parsed = ParsedMessages(root, max_payload)
            for message_topic, payload, _, _ in taken:
                parsed.add(message_topic, payload)  # never raises: a bad one is a dead letter
            with sending:
                unacked[seq] = [(mid, qos) for _, _, mid, qos in taken if qos > 0]
            try:
                connection.send(("chunk", seq, parsed))
            except OSError:
                os._exit(1)  # the parent is gone: acknowledge nothing

    sender = threading.Thread(target=hand_over, name="iotlab-receiver-send", daemon=True)
    sender.start()
    network = getattr(client, "_thread", None)  # paho's loop_start thread
    while True:
        try:
            while not connection.poll(WATCH_SECONDS):
                if not sender.is_alive() or (network is not None and not network.is_alive()):
                    # A dead thread means no more messages: exit, so that the parent
                    # restarts the receiver instead of waiting on a silent one.
                    os._exit(1)
            command = connection.recv()
        except (EOFError, OSError):
            os._exit(1)  # the parent is gone: acknowledge nothing, the broker redelivers
        if command[0] == "ack":
            with sending:
                acks = unacked.pop(command[1], [])
            for mid, qos in acks:
                client.ack(mid, qos)
        elif command[0] == "stop":
            stopping.set()
            _disconnect(client, end_session=command[1])
            connection.send(("stopped",))
            return


def _disconnect(client: Any, *, end_session: bool) -> None:
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    time.sleep(0.05)  # let the network thread send the last PUBACKs
    properties = None
    if end_session:  # the broker stops keeping messages for this client id
        properties = Properties(PacketTypes.DISCONNECT)
        properties.SessionExpiryInterval = 0
    client.disconnect(properties=properties)
    client.loop_stop()


def main(argv: list[str] | None = None) -> None:
    """``python -m iotlab.ingest.receiver URL CLIENT_ID ROOT FD [MAX_PAYLOAD [SHARE_GROUP]]``;
    FD: the parent's socket; MAX_PAYLOAD: largest payload parsed, in bytes (0: the
    default); SHARE_GROUP: subscribe through that shared subscription."""
    args = argv if argv is not None else sys.argv[1:]
    url, client_id, root, fd = args[:4]
    max_payload = int(args[4]) if len(args) > 4 and int(args[4]) > 0 else None
    share_group = args[5] if len(args) > 5 and args[5] else None
    receive(url, client_id, root, Connection(int(fd)), max_payload, share_group)


if __name__ == "__main__":
    main()
