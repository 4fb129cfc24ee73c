"""Publish readings and heartbeats to an MQTT broker (QoS 1), e.g. a simulated fleet.

Examples
--------
>>> Publisher("mqtt://127.0.0.1:1", client_id="doc")  # nothing is connected until used
<Publisher mqtt://127.0.0.1:1 as doc>
"""

from __future__ import annotations

import json
import threading
import uuid
from typing import Any

import numpy as np
import pandas as pd

from iotlab.errors import StoreConnectionError
from iotlab.ingest.messages import HEARTBEAT, METRIC_FIELDS

__all__ = ["Publisher"]

#: MQTT 5's default Receive Maximum, when the broker's CONNACK names none; also the
#: most QoS 1 messages one client can have unacknowledged (16-bit message ids).
RECEIVE_MAXIMUM = 65535


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
        self._acked = threading.Condition()
        self.sent = 0

    def __repr__(self) -> str:
        return f"<Publisher {self.url} as {self.client_id}>"

    def __enter__(self) -> Publisher:
        from iotlab.ingest.mqtt import connect_client

        def on_connect(client: Any, flags: Any, properties: Any) -> None:
            maximum = getattr(properties, "ReceiveMaximum", RECEIVE_MAXIMUM)
            with self._acked:
                self._window = min(int(maximum), RECEIVE_MAXIMUM)

        self._client = connect_client(
            self.url, self.client_id, persistent=False, on_connect=on_connect
        )
        self._client.on_publish = self._on_publish
        from paho.mqtt.enums import MQTTErrorCode

        # NO_CONN: paho keeps the message and sends it once it has reconnected.
        self._queued = (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN)
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
            self._client.disconnect()
            self._client.loop_stop()
            self._client = None

    def wait(self, timeout: float | None = None) -> None:
        """Block until every message published so far was acknowledged by the broker.

        Raises :class:`TimeoutError` (naming how many are still unacknowledged) after
        ``timeout`` seconds (default: the publisher's ``timeout``).
        """
        with self._acked:
            done = self._acked.wait_for(
                lambda: self._unacked == 0, self.timeout if timeout is None else timeout
            )
            if not done:
                raise TimeoutError(
                    f"{self._unacked} messages not acknowledged by the broker at {self.url}"
                )

    def _on_publish(self, client: Any, userdata: Any, mid: int, reason: Any, props: Any) -> None:
        with self._acked:
            self._unacked -= 1
            self._acked.notify_all()

    def publish(self, topic: str, payload: bytes | str) -> None:
        """Publish one message at QoS 1 (blocks while the broker's window is full)."""
        with self._acked:
            if not self._acked.wait_for(lambda: self._unacked < self._window, self.timeout):
                raise StoreConnectionError(
                    f"the MQTT broker at {self.url} acknowledged nothing for "
                    f"{self.timeout} s ({self._unacked} messages outstanding)"
                )
            self._unacked += 1
        info = self._client.publish(topic, payload, qos=1)
        if info.rc not in self._queued:
            with self._acked:
                self._unacked -= 1
            raise StoreConnectionError(f"publish to {topic} failed: paho error code {info.rc}")
        self.sent += 1

    def publish_readings(self, readings: pd.DataFrame) -> int:
        """Publish each reading to ``<root>/<device_id>/<sensor_id>``; return how many."""
        if readings.empty:
            return 0
        stamps = _iso_ms(readings["ts"])
        quality = readings["quality"] if "quality" in readings else pd.Series(100, readings.index)
        status = readings["status"] if "status" in readings else pd.Series("ok", readings.index)
        for device, sensor, ts, value, q, s in zip(
            readings["device_id"],
            readings["sensor_id"],
            stamps,
            readings["value"].to_numpy(dtype=float),
            quality,
            status,
        ):
            body = {
                "ts": str(ts),
                "value": None if np.isnan(value) else float(value),
                "quality": int(q),
                "status": str(s),
            }
            self.publish(f"{self.topic_root}/{device}/{sensor}", json.dumps(body))
        return len(readings)

    def publish_heartbeats(self, heartbeats: pd.DataFrame) -> int:
        """Publish each heartbeat to ``<root>/<device_id>/heartbeat``; return how many."""
        if heartbeats.empty:
            return 0
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
            self.publish(f"{self.topic_root}/{device}/{HEARTBEAT}", json.dumps(body))
        return len(heartbeats)
