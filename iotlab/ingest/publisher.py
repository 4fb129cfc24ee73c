"""Publish readings and heartbeats to an MQTT broker (QoS 1), e.g. a simulated fleet.

Examples
--------
>>> Publisher("mqtt://127.0.0.1:1", client_id="doc")  # nothing is connected until used
<Publisher mqtt://127.0.0.1:1 as doc>
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any, Literal

import numpy as np
import pandas as pd

from iotlab.errors import StoreConnectionError, ValidationError
from iotlab.ingest.messages import HEARTBEAT, METRIC_FIELDS

__all__ = [
    "Publisher",
    "device_messages",
    "heartbeat_messages",
    "keyed_messages",
    "reading_messages",
]

#: MQTT 5's default Receive Maximum, when the broker's CONNACK names none; also the
#: most QoS 1 messages one client can have unacknowledged (16-bit message ids).
RECEIVE_MAXIMUM = 65535
#: Messages published between two reads of the broker's PUBACKs.
PUMP_EVERY = 64
#: Seconds between the keeper thread's runs of an idle publisher's connection.
KEEPER_EVERY = 0.5
#: Seconds between attempts to reconnect to the broker.
RECONNECT_EVERY = 1.0
#: Most readings in one device message (``per="device"``): ~100 bytes each, so a
#: message stays far below the service's payload limit.
DEVICE_MESSAGE_READINGS = 1000


def _iso_ms(ts: pd.Series) -> np.ndarray:
    """ISO 8601 strings with millisecond precision and a ``Z`` suffix, vectorised."""
    values = ts.dt.tz_convert("UTC").to_numpy(dtype="datetime64[ms]")
    return np.char.add(np.datetime_as_string(values, unit="ms"), "Z")


class Publisher:
    """A QoS 1 publisher; use as a context manager (waits for every PUBACK on exit).

    At most as many messages as the broker's Receive Maximum are unacknowledged at a
    time (MQTT 5 flow control): :meth:`publish` blocks while the window is full, and
    raises :class:`~iotlab.errors.StoreConnectionError` if the broker acknowledges
    nothing for ``timeout`` seconds.

    The publishing thread runs the client's network work itself
    (:func:`~iotlab.ingest.mqtt.pump`): a message is written to the socket as it is
    published, with no hand-off to paho's network thread. A keeper thread does that work
    while the publisher is idle (PUBACKs, keep-alive pings, reconnecting); a lock keeps
    the two from running paho at once.

    Parameters
    ----------
    url
        ``mqtt://host:port``.
    client_id
        Default: a random ``iotlab-pub-...`` id (publishers need no persistent session).
    topic_root
        First topic level.
    timeout
        Seconds to wait for room in the window (and, on exit, for the last PUBACKs).
    """

    def __init__(
        self,
        url: str,
        *,
        client_id: str | None = None,
        topic_root: str = "iotlab",
        timeout: float = 60.0,
    ) -> None:
        self.url = url
        self.client_id = client_id or f"iotlab-pub-{uuid.uuid4().hex[:8]}"
        self.topic_root = topic_root
        self.timeout = timeout
        self._client: Any = None
        # Flow control: paho's own window is off (it rescans its queue at every PUBACK).
        self._window = RECEIVE_MAXIMUM
        self._unacked = 0
        self._lock = threading.Lock()  # held by whichever thread runs the client
        self._closed = threading.Event()
        self._keeper: threading.Thread | None = None
        self._lost_at: float | None = None  # when the connection dropped, if it is down
        self.sent = 0

    def __repr__(self) -> str:
        return f"<Publisher {self.url} as {self.client_id}>"

    def __enter__(self) -> Publisher:
        from paho.mqtt.enums import MQTTErrorCode

        from iotlab.ingest.mqtt import connect_client

        def on_connect(client: Any, flags: Any, properties: Any) -> None:
            maximum = getattr(properties, "ReceiveMaximum", RECEIVE_MAXIMUM)
            self._window = min(int(maximum), RECEIVE_MAXIMUM)

        self._client = connect_client(
            self.url, self.client_id, persistent=False, on_connect=on_connect, background=False
        )
        self._client.on_publish = self._on_publish
        # NO_CONN: paho keeps the message and sends it once it has reconnected.
        self._queued = (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN)
        self._closed.clear()
        self._lost_at = None
        self._keeper = threading.Thread(target=self._keep, name="iotlab-publisher", daemon=True)
        self._keeper.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Wait until the broker acknowledged everything, then disconnect."""
        if self._client is None:
            return
        try:
            self.wait()
        finally:
            self._closed.set()
            if self._keeper is not None:
                self._keeper.join()
            with self._lock:
                self._client.disconnect()
                self._client = None

    def wait(self, timeout: float | None = None) -> None:
        """Block until every message published so far was acknowledged by the broker.

        Raises :class:`TimeoutError` (naming how many are still unacknowledged) after
        ``timeout`` seconds (default: the publisher's ``timeout``).
        """
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        with self._lock:
            while self._unacked and time.monotonic() < deadline:
                self._pump(0.05)
            if self._unacked:
                raise TimeoutError(
                    f"{self._unacked} messages not acknowledged by the broker at {self.url}"
                )

    def _on_publish(self, client: Any, userdata: Any, mid: int, reason: Any, props: Any) -> None:
        self._unacked -= 1  # runs in _pump, under the lock

    def _pump(self, timeout: float) -> None:
        """Run the client for up to ``timeout`` s (lock held); reconnect once it dropped."""
        from iotlab.ingest.mqtt import pump

        if self._lost_at is None:
            if pump(self._client, timeout) != 0:
                self._lost_at = time.monotonic()
            return
        if time.monotonic() - self._lost_at >= RECONNECT_EVERY:
            try:  # paho sends the unacknowledged messages again once reconnected
                self._client.reconnect()
                self._lost_at = None
            except OSError:
                self._lost_at = time.monotonic()
        time.sleep(timeout)

    def _keep(self) -> None:
        """Keeper thread: run the client while no one publishes."""
        while not self._closed.wait(KEEPER_EVERY):
            with self._lock:
                self._pump(0.0)

    def publish(self, topic: str, payload: bytes | str) -> None:
        """Publish one message at QoS 1 (blocks while the broker's window is full)."""
        with self._lock:
            self._publish(topic, payload)

    def _publish(self, topic: str, payload: bytes | str) -> None:
        if self._unacked >= self._window:
            deadline = time.monotonic() + self.timeout
            while self._unacked >= self._window:
                if time.monotonic() > deadline:
                    raise StoreConnectionError(
                        f"the MQTT broker at {self.url} acknowledged nothing for "
                        f"{self.timeout} s ({self._unacked} messages outstanding)"
                    )
                self._pump(0.05)
        info = self._client.publish(topic, payload, qos=1)
        if info.rc not in self._queued:
            raise StoreConnectionError(f"publish to {topic} failed: paho error code {info.rc}")
        self._unacked += 1
        self.sent += 1
        if self.sent % PUMP_EVERY == 0:
            self._pump(0.0)  # take in the PUBACKs that arrived meanwhile

    def publish_readings(
        self, readings: pd.DataFrame, *, per: Literal["reading", "device"] = "reading"
    ) -> int:
        """Publish readings; return how many.

        ``per="reading"`` (default): each to ``<root>/<device_id>/<sensor_id>``.
        ``per="device"``: each device's readings together, as a JSON array on
        ``<root>/<device_id>`` (see :func:`device_messages`), as a device that reads its
        sensors at once would send them: fewer messages for the broker and the service.
        """
        messages = keyed_messages(readings, per)  # checks ``per`` before anything is sent
        with self._lock:  # one frame, one hold of the client
            for key, body in messages:
                self._publish(f"{self.topic_root}/{key}", body)
        return len(readings)

    def publish_heartbeats(self, heartbeats: pd.DataFrame) -> int:
        """Publish each heartbeat to ``<root>/<device_id>/heartbeat``; return how many."""
        with self._lock:
            for device, body in heartbeat_messages(heartbeats):
                self._publish(f"{self.topic_root}/{device}/{HEARTBEAT}", body)
        return len(heartbeats)


def _reading_fields(readings: pd.DataFrame) -> Iterator[tuple[Any, ...]]:
    """``(device_id, sensor_id, payload dict)`` of each reading (JSON-ready values)."""
    stamps = _iso_ms(readings["ts"])
    quality = readings["quality"] if "quality" in readings else pd.Series(100, readings.index)
    status = readings["status"] if "status" in readings else pd.Series("ok", readings.index)
    rows = zip(
        readings["device_id"],
        readings["sensor_id"],
        stamps,
        readings["value"].to_numpy(dtype=float),
        quality,
        status,
    )
    for device, sensor, ts, value, q, s in rows:
        body = {
            "ts": str(ts),
            "value": None if np.isnan(value) else float(value),
            "quality": int(q),
            "status": str(s),
        }
        yield device, sensor, body


def reading_messages(readings: pd.DataFrame) -> Iterator[tuple[str, str, str]]:
    """``(device_id, sensor_id, JSON payload)`` of each reading, as MQTT and Kafka carry it."""
    if readings.empty:
        return
    for device, sensor, body in _reading_fields(readings):
        yield device, sensor, json.dumps(body)


def device_messages(
    readings: pd.DataFrame, *, max_readings: int = DEVICE_MESSAGE_READINGS
) -> Iterator[tuple[str, str]]:
    """``(device_id, JSON array payload)``: each device's readings, in frame order, at most
    ``max_readings`` per message, each element naming its ``sensor_id``.

    Examples
    --------
    >>> frame = pd.DataFrame({"device_id": ["d1", "d2", "d1"], "sensor_id": ["t", "t", "h"],
    ...     "ts": pd.to_datetime([0, 0, 0], unit="s", utc=True), "value": [1.0, 2.0, 3.0]})
    >>> for device, body in device_messages(frame):
    ...     print(device, body)  # doctest: +NORMALIZE_WHITESPACE
    d1 [{"sensor_id": "t", "ts": "1970-01-01T00:00:00.000Z", "value": 1.0, "quality": 100,
         "status": "ok"}, {"sensor_id": "h", "ts": "1970-01-01T00:00:00.000Z", "value": 3.0,
         "quality": 100, "status": "ok"}]
    d2 [{"sensor_id": "t", "ts": "1970-01-01T00:00:00.000Z", "value": 2.0, "quality": 100,
         "status": "ok"}]
    """
    if readings.empty:
        return
    if max_readings < 1:
        raise ValidationError(f"must be >= 1, got {max_readings}", field="max_readings")
    by_device: dict[str, list[dict[str, Any]]] = {}
    for device, sensor, body in _reading_fields(readings):
        by_device.setdefault(device, []).append({"sensor_id": sensor, **body})
    for device, bodies in by_device.items():
        for start in range(0, len(bodies), max_readings):
            yield device, json.dumps(bodies[start : start + max_readings])


def keyed_messages(
    readings: pd.DataFrame, per: Literal["reading", "device"] = "reading"
) -> Iterator[tuple[str, str]]:
    """``(key, JSON payload)`` of readings as MQTT (topic ``<root>/<key>``) and Kafka (the
    record key) carry them: ``<device_id>/<sensor_id>`` per reading, or ``<device_id>``
    per device (:func:`device_messages`). A wrong ``per`` raises here, before any is made."""
    if per == "device":
        return device_messages(readings)
    if per == "reading":
        return ((f"{d}/{s}", body) for d, s, body in reading_messages(readings))
    raise ValidationError(f"must be 'reading' or 'device', got {per!r}", field="per")


def heartbeat_messages(heartbeats: pd.DataFrame) -> Iterator[tuple[str, str]]:
    """``(device_id, JSON payload)`` of each heartbeat, as MQTT and Kafka carry it."""
    if heartbeats.empty:
        return
    stamps = _iso_ms(heartbeats["ts"])
    columns = [
        heartbeats[m].to_numpy(dtype=float)
        if m in heartbeats
        else np.full(len(heartbeats), np.nan)
        for m in METRIC_FIELDS
    ]
    for device, ts, *metrics in zip(heartbeats["device_id"], stamps, *columns):
        body: dict[str, object] = {"ts": str(ts)}
        for name, value in zip(METRIC_FIELDS, metrics):
            body[name] = None if np.isnan(value) else float(value)
        yield device, json.dumps(body)
