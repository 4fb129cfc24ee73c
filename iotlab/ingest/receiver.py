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
  ``CHUNK_MESSAGES`` messages; ``("lost", reason)`` when the broker connection drops and
  ``("connected",)`` once it is back and subscribed again;
- parent -> child: ``("ack", seq)`` once the service stored a chunk (the child PUBACKs its
  messages then, not before), and ``("stop", end_session)``.

One thread runs the broker's connection: it waits on the broker's socket and the parent's
at once, reads every packet that has arrived, parses a chunk at a time and acknowledges.
(With paho's own network thread, each message cost a wake-up and a GIL switch, and every
PUBACK a wake-up of paho's thread.) A second thread only writes to the parent, a chunk at
a time: a parent that takes nothing for a while (a store outage holds it) must not stop
the connection's keep-alives, or the broker would drop it after 45 s. If the broker goes
away, the first thread tells the parent, reconnects every ``RECONNECT_SECONDS`` and
subscribes again (a broker that crashed has forgotten the subscription); the broker's
persistent session, if it kept it, redelivers what was not acknowledged.

If the parent dies (kill -9), the pipe closes and the child exits at once without
acknowledging anything, so the broker redelivers to the next session: at-least-once
delivery holds across the two processes as it did in one. If the child fails in any other
way, it exits, and the parent starts a new one (see :class:`~iotlab.ingest.mqtt.MqttSource`):
never a silent stall.
"""

from __future__ import annotations

import contextlib
import os
import queue
import select
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
#: Longest wait for data when nothing is pending (keep-alives are sent between waits).
IDLE_SECONDS = 1.0
#: Seconds between attempts to reconnect to a broker that went away.
RECONNECT_SECONDS = 1.0


def receive(
    url: str,
    client_id: str,
    root: str,
    connection: Any,
    max_payload: int | None = None,
    share_group: str | None = None,
    keepalive: int = 30,
) -> None:
    """Child process: subscribe to ``<root>/#`` and trade chunks for acks over ``connection``.

    The whole tree under the root, not just ``<root>/+/+``: a message on a topic with the
    wrong number of levels becomes a dead letter instead of vanishing unseen. With
    ``share_group``, through the shared subscription ``$share/<share_group>/<root>/#``.
    """
    from iotlab.ingest.messages import MAX_PAYLOAD_BYTES
    from iotlab.ingest.mqtt import connect_client
    from iotlab.ingest.runtime import settle_heap

    topic = f"{root}/#" if not share_group else f"$share/{share_group}/{root}/#"
    limit = MAX_PAYLOAD_BYTES if max_payload is None else max_payload
    receiver = _Receiver(root, limit, connection)

    def on_connect(client: Any, flags: Any, properties: Any) -> None:
        client.subscribe(topic, qos=1)  # on every (re)connection

    try:
        client = connect_client(
            url,
            client_id,
            persistent=True,
            manual_ack=True,
            on_connect=on_connect,
            on_message=receiver.on_message,
            on_subscribe=receiver.on_subscribe,
            background=False,
            keepalive=keepalive,
        )
        receiver.wait_subscribed(client, 10.0)
    except Exception as exc:  # reported to the parent, which raises it
        connection.send(("failed", str(exc)))
        return
    settle_heap()  # this process only receives from here on
    connection.send(("ready",))
    sender = threading.Thread(target=receiver.send_all, name="iotlab-receiver-send", daemon=True)
    sender.start()
    try:
        receiver.run(client, sender)
    except (EOFError, OSError):
        os._exit(1)  # the parent is gone: acknowledge nothing, the broker redelivers
    except BaseException:  # end loudly: the parent restarts the receiver
        traceback.print_exc()
        os._exit(1)
    sender.join()  # "stopped" is out


class _Receiver:
    """The receiver's state: messages not yet handed over, chunks not yet acknowledged."""

    def __init__(self, root: str, max_payload: int, connection: Any) -> None:
        self.root = root
        self.max_payload = max_payload
        self.connection = connection  # to the parent; written to by `send_all` only
        self.outbox: queue.SimpleQueue[tuple | None] = queue.SimpleQueue()
        self.pending: list[tuple[str, bytes, int, int]] = []  # topic, payload, mid, qos
        self.first_pending = 0.0  # when the oldest pending message arrived
        self.unacked: dict[int, list[tuple[int, int]]] = {}  # chunk -> (mid, qos)
        self.seq = 0
        self.subscribed = False
        self.lost = False  # the broker connection dropped and is not back yet

    def on_message(self, client: Any, userdata: Any, message: Any) -> None:
        try:
            name = message.topic
        except UnicodeDecodeError:  # kept, escaped, so that it is dead-lettered and acked
            name = message._topic.decode("utf-8", "surrogateescape")
        if not self.pending:
            self.first_pending = time.monotonic()
        self.pending.append((name, message.payload, message.mid, message.qos))

    def on_subscribe(self, *args: Any) -> None:
        if self.lost:  # subscribed again after a reconnection
            self.lost = False
            self.outbox.put(("connected",))
        self.subscribed = True

    def wait_subscribed(self, client: Any, timeout: float) -> None:
        from iotlab.errors import StoreConnectionError
        from iotlab.ingest.mqtt import pump

        deadline = time.monotonic() + timeout
        while not self.subscribed:
            if time.monotonic() > deadline or pump(client, 0.05) != 0:
                raise StoreConnectionError("the MQTT broker did not confirm the subscription")

    def send_all(self) -> None:
        """Sender thread: write the outbox to the parent until ``None``."""
        while (message := self.outbox.get()) is not None:
            try:
                self.connection.send(message)
            except OSError:
                os._exit(1)  # the parent is gone: acknowledge nothing

    def run(self, client: Any, sender: threading.Thread) -> None:
        """Serve until the parent says stop (or is gone: EOFError/OSError)."""
        from iotlab.ingest.mqtt import pump

        connection = self.connection
        tried_at = 0.0  # last reconnection attempt
        while True:
            if not sender.is_alive():  # it ended without being told: end loudly
                raise RuntimeError("the receiver's sender thread died")
            wait = IDLE_SECONDS
            if self.pending:
                wait = max(0.0, self.first_pending + CHUNK_SECONDS - time.monotonic())
            sock = client.socket()
            if sock is None:  # no connection: only the parent is waited on
                wait = min(wait, RECONNECT_SECONDS)
                readable = [connection] if connection.poll(wait) else []
            else:
                readable = select.select([sock, connection], [], [], wait)[0]
            if connection in readable and self.command(client):
                return
            if sock is not None:
                # Reads what has arrived (its callbacks fill `pending`), writes the
                # PUBACKs queued by `command`, keeps the connection alive.
                code = pump(client, 0.0, max_packets=CHUNK_MESSAGES)
                if code != 0 and not self.lost:
                    self.lost, tried_at = True, time.monotonic()
                    self.outbox.put(("lost", _paho_error(code)))
            elif time.monotonic() - tried_at >= RECONNECT_SECONDS:
                tried_at = time.monotonic()
                self.reconnect(client)
            if len(self.pending) >= CHUNK_MESSAGES or (
                self.pending and time.monotonic() - self.first_pending >= CHUNK_SECONDS
            ):
                self.hand_over()

    def hand_over(self) -> None:
        from iotlab.ingest.batch import ParsedMessages

        taken = self.pending[:CHUNK_MESSAGES]
        del self.pending[:CHUNK_MESSAGES]
        if self.pending:
            self.first_pending = time.monotonic()
        self.seq += 1
        parsed = ParsedMessages(self.root, self.max_payload)
        for message_topic, payload, _, _ in taken:
            parsed.add(message_topic, payload)  # never raises: a bad one is a dead letter
        self.unacked[self.seq] = [(mid, qos) for _, _, mid, qos in taken if qos > 0]
        self.outbox.put(("chunk", self.seq, parsed))

    def command(self, client: Any) -> bool:
        """Carry out the parent's waiting commands; ``True`` once told to stop."""
        connection = self.connection
        while connection.poll(0):
            command = connection.recv()
            if command[0] == "ack":
                for mid, qos in self.unacked.pop(command[1], []):
                    client.ack(mid, qos)
            elif command[0] == "stop":
                _disconnect(client, end_session=command[1])
                self.outbox.put(("stopped",))
                self.outbox.put(None)
                return True
        return False

    @staticmethod
    def reconnect(client: Any) -> None:
        """Try once to reconnect. Once the broker accepts, ``on_connect`` subscribes again
        and ``on_subscribe`` tells the parent; a session the broker kept redelivers what
        was not acknowledged."""
        with contextlib.suppress(OSError):  # still down: the next attempt comes
            client.reconnect()


def _paho_error(code: int) -> str:
    from paho.mqtt.client import error_string

    return f"{error_string(code)} (paho error {code})"


def _disconnect(client: Any, *, end_session: bool) -> None:
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    from iotlab.ingest.mqtt import pump

    pump(client, 0.0)  # the last PUBACKs
    properties = None
    if end_session:  # the broker stops keeping messages for this client id
        properties = Properties(PacketTypes.DISCONNECT)
        properties.SessionExpiryInterval = 0
    client.disconnect(properties=properties)


def main(argv: list[str] | None = None) -> None:
    """``python -m iotlab.ingest.receiver URL CLIENT_ID ROOT FD [MAX_PAYLOAD [SHARE_GROUP
    [KEEPALIVE]]]``; FD: the parent's socket; MAX_PAYLOAD: largest payload parsed, in bytes
    (0: the default); SHARE_GROUP: subscribe through that shared subscription; KEEPALIVE:
    MQTT keep-alive in seconds (30)."""
    args = argv if argv is not None else sys.argv[1:]
    url, client_id, root, fd = args[:4]
    max_payload = int(args[4]) if len(args) > 4 and int(args[4]) > 0 else None
    share_group = args[5] if len(args) > 5 and args[5] else None
    keepalive = int(args[6]) if len(args) > 6 else 30
    receive(url, client_id, root, Connection(int(fd)), max_payload, share_group, keepalive)


if __name__ == "__main__":
    main()
