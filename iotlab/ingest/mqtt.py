"""MQTT in and out: the service's subscriber client and the simulator's publisher.

The subscriber (:class:`MqttSource`, its client in a child process: see
:mod:`iotlab.ingest.receiver`) uses QoS 1, a stable client id and a persistent session
(MQTT 5, ``clean_start=False`` with a session expiry), so the broker keeps messages for
it while it is down. It acknowledges messages *manually*, only after the
service has stored the batch holding them: a crash before that makes the broker
redeliver, and idempotent writes make the redelivery harmless (at-least-once delivery,
exactly-once storage).

URLs are ``mqtt://host:port`` (port 1883 by default).

Examples
--------
>>> parse_mqtt_url("mqtt://127.0.0.1:11884")
('127.0.0.1', 11884)
>>> parse_mqtt_url("http://x")
Traceback (most recent call last):
...
iotlab.errors.InvalidURLError: MQTT URL must look like mqtt://host:port, got 'http://x'
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import socket
import subprocess
import sys
import threading
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from iotlab.errors import (
    InvalidURLError,
    MissingDependencyError,
    StoreConnectionError,
    ValidationError,
)
from iotlab.ingest.receiver import RECONNECT_SECONDS

__all__ = ["MqttSource", "connect_client", "parse_mqtt_url", "publish_simulation", "pump"]

logger = logging.getLogger(__name__)

#: Session expiry for the persistent subscriber session (seconds): one week.
SESSION_EXPIRY = 7 * 24 * 3600
#: Unacknowledged messages the broker may send us at once (MQTT 5 Receive Maximum).
RECEIVE_MAXIMUM = 65535
#: A receiver process that ends is restarted, up to this many times in this many seconds;
#: beyond that the source fails (``iotlab serve`` exits 1).
MAX_RESTARTS = 5
RESTART_WINDOW = 300.0


def parse_mqtt_url(url: str) -> tuple[str, int]:
    """``(host, port)`` of an ``mqtt://host:port`` URL."""
    parts = urlsplit(url)
    if parts.scheme != "mqtt" or not parts.hostname:
        raise InvalidURLError(f"MQTT URL must look like mqtt://host:port, got {url!r}")
    return parts.hostname, parts.port or 1883


def _paho() -> Any:
    try:
        import paho.mqtt.client as mqtt
    except ImportError as exc:  # pragma: no cover - paho is in the dev environment
        raise MissingDependencyError("paho-mqtt", "mqtt") from exc
    return mqtt


def connect_client(
    url: str,
    client_id: str,
    *,
    persistent: bool,
    manual_ack: bool = False,
    on_connect: Any = None,
    on_message: Any = None,
    on_subscribe: Any = None,
    max_inflight: int = 0,
    timeout: float = 10.0,
    background: bool = True,
    keepalive: int = 30,
) -> Any:
    """A connected paho 2.x MQTT 5 client.

    With ``background`` (default) paho's network thread runs the connection
    (``loop_start``). Without, the caller does, on its own thread, with :func:`pump`: a
    client that handles thousands of messages a second saves the hand-offs between its
    thread and paho's (a wake-up and a GIL switch per message, a third of its CPU).

    ``on_connect(client, flags, properties)`` runs on every (re)connection, with the
    broker's CONNACK properties. ``max_inflight`` caps paho's own window of unacknowledged
    outgoing QoS 1 messages (``0``: none). Leave it 0 and hold the window yourself, as
    :class:`~iotlab.ingest.publisher.Publisher` does: with a cap, paho scans every
    outstanding message at each PUBACK, which cost a publisher half its CPU.
    """
    mqtt = _paho()
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    host, port = parse_mqtt_url(url)
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=mqtt.MQTTv5,
        manual_ack=manual_ack,
    )
    client.max_inflight_messages_set(max_inflight)
    client.max_queued_messages_set(0)
    connected = threading.Event()

    def _on_connect(client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            logger.error("MQTT connect to %s refused: %s", url, reason)
            return
        if on_connect is not None:
            on_connect(client, flags, props)
        connected.set()

    client.on_connect = _on_connect
    if on_message is not None:
        client.on_message = on_message
    if on_subscribe is not None:  # set before connecting: the SUBACK may come at once
        client.on_subscribe = on_subscribe
    props = Properties(PacketTypes.CONNECT)
    props.ReceiveMaximum = RECEIVE_MAXIMUM
    if persistent:
        props.SessionExpiryInterval = SESSION_EXPIRY
    try:
        client.connect(
            host, port, keepalive=keepalive, clean_start=not persistent, properties=props
        )
    except OSError as exc:
        raise StoreConnectionError(f"cannot reach MQTT broker at {url}: {exc}") from exc
    if background:
        client.loop_start()
    deadline = time.monotonic() + timeout
    while not connected.is_set() and time.monotonic() < deadline:
        if background:
            connected.wait(0.05)
        elif pump(client, 0.05) != 0:
            break
    if not connected.is_set():
        if background:
            client.loop_stop()
        client.disconnect()
        raise StoreConnectionError(f"MQTT broker at {url} did not accept the connection")
    return client


def pump(client: Any, timeout: float = 0.0, *, max_packets: int = 1000) -> int:
    """Run a client's network work on this thread (one connected with ``background=False``).

    Waits up to ``timeout`` seconds for data, reads the packets that have arrived (at most
    ``max_packets``; their callbacks run here), writes what is queued and keeps the
    connection alive. Returns paho's error code: 0, or why the connection is gone.
    """
    sock = client.socket()
    if sock is None:
        return int(_paho().MQTT_ERR_NO_CONN)
    readable = select.select([sock], [], [], timeout)[0]
    for _ in range(max_packets):
        if not readable:
            break
        rc = client.loop_read()
        if rc or client.socket() is None:
            return int(rc) or int(_paho().MQTT_ERR_CONN_LOST)
        readable = select.select([sock], [], [], 0)[0]
    if client.want_write():
        rc = client.loop_write()
        if rc:
            return int(rc)
    return int(client.loop_misc())


class MqttSource:
    """Subscribe an :class:`~iotlab.ingest.IngestionService` to ``<root>/#`` on a broker.

    The MQTT client runs in a child process (see :mod:`iotlab.ingest.receiver`) that
    parses the messages and hands them to ``service.submit_parsed`` in chunks; a chunk is
    acknowledged to the broker once the service has stored it. A receiver process that
    ends is restarted (the broker redelivers what it had not acknowledged), up to
    :data:`MAX_RESTARTS` times in :data:`RESTART_WINDOW` seconds; then :attr:`error`
    says why the source stopped. While ``service.accepting`` is cleared (a store
    outage) the source takes no more chunks.

    Parameters
    ----------
    service
        The service whose ``submit_parsed`` receives the messages.
    url
        ``mqtt://host:port``.
    client_id
        Keep it stable across restarts: the broker's session (and the messages queued
        for it) belongs to this id.
    topic_root
        First topic level (default the service's ``topic_root``).
    share_group
        Subscribe through the MQTT 5 shared subscription ``$share/<group>/<root>/#``:
        the broker hands each message to one of the group's subscribers, so several
        ``iotlab serve`` workers (each with its own ``client_id``) share the stream.
    keepalive
        MQTT keep-alive, in seconds: the broker drops a connection silent for 1.5 times
        as long, and the receiver finds a dead broker within about that time.
    """

    def __init__(
        self,
        service: Any,
        url: str,
        *,
        client_id: str = "iotlab-ingest",
        topic_root: str | None = None,
        share_group: str | None = None,
        keepalive: int = 30,
    ) -> None:
        parse_mqtt_url(url)  # a bad URL fails here, not in the child
        if not 1 <= keepalive <= 65535:
            raise ValidationError(f"must be 1-65535 seconds, got {keepalive}", field="keepalive")
        self.keepalive = keepalive
        if share_group is not None and not _valid_share_name(share_group):
            raise ValidationError(
                f"must be a non-empty name without '/', '+' or '#', got {share_group!r}",
                field="share_group",
            )
        self.share_group = share_group
        self.service = service
        self.url = url
        self.client_id = client_id
        self.root = topic_root or service.topic_root
        self.topic = f"{self.root}/#"  # wrong-level topics become dead letters
        if share_group is not None:
            self.topic = f"$share/{share_group}/{self.topic}"
        self.max_payload = getattr(service, "max_payload", None)
        self.received = 0
        self.stored = 0  # ... of which the service has stored (acknowledged or not)
        self.error: str | None = None  # why the receiver process stopped, if it did
        self._process: Any = None
        self._connection: Any = None
        self._sending = threading.Lock()
        self._paused = False
        self._reader: threading.Thread | None = None
        self.restarts = 0  # receiver processes started again after one ended
        self.connected = False  # to the broker, as the receiver last said
        self.reconnects = 0  # times the receiver got the broker back after losing it
        self._restarts: list[float] = []

    def start(self, timeout: float = 30.0) -> MqttSource:
        """Start the receiver process, subscribe (QoS 1) and start delivering; return ``self``.

        Raises :class:`~iotlab.errors.StoreConnectionError` if the broker cannot be
        reached or does not accept the connection within ``timeout`` seconds.
        """
        self._spawn(timeout)
        self._reader = threading.Thread(target=self._read, name="iotlab-mqtt-source", daemon=True)
        self._reader.start()
        if hasattr(self.service, "add_source"):
            self.service.add_source(self)
        logger.info("subscribed to %s on %s as %s", self.topic, self.url, self.client_id)
        return self

    @property
    def pid(self) -> int | None:
        """The receiver process's id (``None`` when stopped)."""
        return None if self._process is None else self._process.pid

    @property
    def queue_depth(self) -> int:
        """Messages taken from the broker and not yet stored. It stays near zero while
        the service keeps up; it grows (up to the broker's window of 65,535 unacknowledged
        messages) when the service falls behind, and then the broker queues the rest."""
        return self.received - self.stored

    @property
    def alive(self) -> bool:
        """Whether messages can flow: started, not failed for good, not stopped."""
        return self._process is not None and self.error is None

    def _spawn(self, timeout: float) -> None:
        parent_end, child_end = socket.socketpair()
        with child_end:
            command = [sys.executable, "-m", "iotlab.ingest.receiver"]
            command += [self.url, self.client_id, self.root, str(child_end.fileno())]
            command.append(str(int(self.max_payload or 0)))
            command.append(self.share_group or "")
            command.append(str(self.keepalive))
            self._process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                pass_fds=[child_end.fileno()],
                env=_child_environment(),
            )
        self._connection = Connection(parent_end.detach())
        if not self._connection.poll(timeout):
            self._end_process()
            raise StoreConnectionError(f"MQTT broker at {self.url} did not accept the connection")
        answer = self._connection.recv()
        if answer[0] != "ready":
            self._end_process()
            raise StoreConnectionError(answer[1])
        self.connected = True

    def _read(self) -> None:
        try:
            self._deliver()
        except Exception as exc:  # e.g. the service refused a chunk: never a silent stall
            self.error = f"MQTT source failed: {type(exc).__name__}: {exc}"
            logger.exception("MQTT source failed")

    def _deliver(self) -> None:
        while True:
            connection = self._connection
            try:
                message = connection.recv()
            except (EOFError, OSError):
                if self._paused or not self._restart():
                    return
                continue
            if message[0] == "lost":
                self.connected = False
                logger.error(
                    "MQTT broker %s lost (%s): reconnecting every %.0f s; nothing is "
                    "received meanwhile",
                    self.url,
                    message[1],
                    RECONNECT_SECONDS,
                )
                continue
            if message[0] == "connected":
                self.connected = True
                self.reconnects += 1
                logger.warning("MQTT broker %s back: subscribed again to %s", self.url, self.topic)
                continue
            if message[0] != "chunk":
                return  # "stopped"
            if self._paused:
                continue  # not acknowledged: the broker redelivers it to the next session
            _, seq, parsed = message
            count = len(parsed)
            self.received += count
            # The ack goes to the process that sent the chunk (a restarted receiver
            # numbers its chunks afresh; the broker redelivers a dead one's messages).
            self.service.submit_parsed(
                parsed,
                ack=lambda c=connection, seq=seq, n=count: self._ack(c, seq, n),
            )
            self._hold()

    def _hold(self) -> None:
        """Take nothing more while the service is not accepting (a store outage): the
        receiver's socket fills, and the broker keeps what it has not sent."""
        accepting = getattr(self.service, "accepting", None)
        while accepting is not None and not self._paused and not accepting.wait(0.5):
            pass

    def _restart(self) -> bool:
        """Replace a receiver process that ended; ``False`` (and :attr:`error` set) once
        it failed :data:`MAX_RESTARTS` times within :data:`RESTART_WINDOW` seconds."""
        code = self._process.poll() if self._process is not None else None
        logger.error("the MQTT receiver process ended (exit code %s): restarting it", code)
        self._discard_process()
        delay = 1.0
        while not self._paused:
            now = time.monotonic()
            self._restarts = [t for t in self._restarts if now - t < RESTART_WINDOW] + [now]
            if len(self._restarts) > MAX_RESTARTS:
                self.error = (
                    f"the MQTT receiver process ended {MAX_RESTARTS} times within "
                    f"{RESTART_WINDOW:.0f} s (last exit code {code})"
                )
                logger.error(self.error)
                return False
            self.restarts += 1
            try:
                with self._sending:
                    self._spawn(30.0)
            except StoreConnectionError as exc:
                logger.error("restarting the MQTT receiver failed: %s", exc)
                time.sleep(delay)
                delay = min(2 * delay, 30.0)
                continue
            logger.warning("MQTT receiver restarted (pid %s)", self._process.pid)
            return True
        return False

    def _discard_process(self) -> None:
        with contextlib.suppress(Exception):
            if self._process is not None and self._process.poll() is None:
                self._process.kill()
            if self._process is not None:
                self._process.wait(10)
        with contextlib.suppress(Exception):
            self._connection.close()
        self._process = None

    def _ack(self, connection: Any, seq: int, n: int) -> None:
        self.stored += n
        with self._sending:
            try:
                connection.send(("ack", seq))
            except OSError:  # the receiver is gone; the broker redelivers the chunk
                logger.info("chunk %d stored, not acknowledged: the receiver is gone", seq)

    def stop(self, *, end_session: bool = False) -> None:
        """Stop taking messages (unacknowledged ones stay with the broker) and disconnect.

        Call ``service.stop()`` (or ``flush()``) between :meth:`pause` and this, so that
        what was already taken is stored and acknowledged first. ``end_session=True``
        also ends the broker's session for this client id, so the broker stops keeping
        messages for it (a subscriber that will not come back, e.g. a benchmark's).
        """
        self._paused = True
        if self._process is None:
            return
        with self._sending, contextlib.suppress(OSError):  # already gone
            self._connection.send(("stop", end_session))
        if self._reader is not None:
            self._reader.join(10)
        if self._process is not None:
            self._end_process()

    def _end_process(self) -> None:
        try:
            self._process.wait(10)
        except subprocess.TimeoutExpired:
            self._process.terminate()
            self._process.wait(5)
        self._connection.close()
        self._process = None

    def pause(self) -> None:
        """Take no new messages (they stay with the broker, unacknowledged)."""
        self._paused = True


def _valid_share_name(name: str) -> bool:
    return bool(name) and not set(name) & set("/+#")


def _child_environment() -> dict[str, str]:
    """This environment, with this copy of iotlab importable first (e.g. from a checkout)."""
    here = str(Path(__file__).resolve().parents[2])  # the directory holding iotlab/
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": here if not path else os.pathsep.join([here, path])}


def publish_simulation(
    simulation: Any, url: str, *, per: Literal["reading", "device"] = "reading", **options: Any
) -> tuple[int, int]:
    """Publish a simulation's readings and heartbeats to a broker (QoS 1); return
    ``(readings, heartbeats)`` published, each acknowledged by the broker.

    ``per="device"`` sends each device's readings together, up to 1,000 per message (see
    :meth:`~iotlab.ingest.publisher.Publisher.publish_readings`). Used by
    ``iotlab simulate --mqtt URL [--per device]``; ``options`` go to
    :class:`~iotlab.ingest.publisher.Publisher`.
    """
    from iotlab.ingest.publisher import Publisher

    with Publisher(url, **options) as publisher:
        readings = publisher.publish_readings(simulation.readings, per=per)
        heartbeats = publisher.publish_heartbeats(simulation.device_metrics)
    return readings, heartbeats
