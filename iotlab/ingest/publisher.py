"""Publish readings and heartbeats to an MQTT broker (QoS 1), e.g. a simulated fleet.

Examples
--------
>>> Publisher("mqtt://127.0.0.1:1", client_id="doc")  # nothing is connected until used
<Publisher mqtt://127.0.0.1:1 as doc>
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import numpy as np
import pandas as pd

from iotlab.ingest.messages import HEARTBEAT, METRIC_FIELDS

__all__ = ["Publisher"]


def _iso_ms(ts: pd.Series) -> np.ndarray:
    """ISO 8601 strings with millisecond precision and a ``Z`` suffix, vectorised."""
    values = ts.dt.tz_convert("UTC").to_numpy(dtype="datetime64[ms]")
    return np.char.add(np.datetime_as_string(values, unit="ms"), "Z")


class Publisher:
    """A QoS 1 publisher; use as a context manager (waits for every PUBACK on exit).

    Parameters
    ----------
    url
        ``mqtt://host:port``.
    client_id
        Default: a random ``iotlab-pub-...`` id (publishers need no persistent session).
    topic_root
        First topic level.
    """

    def __init__(
        self, url: str, *, client_id: str | None = None, topic_root: str = "iotlab"
    ) -> None:
        self.url = url
        self.client_id = client_id or f"iotlab-pub-{uuid.uuid4().hex[:8]}"
        self.topic_root = topic_root
        self._client: Any = None
        self._last: Any = None
        self.sent = 0

    def __repr__(self) -> str:
        return f"<Publisher {self.url} as {self.client_id}>"

    def __enter__(self) -> Publisher:
        from iotlab.ingest.mqtt import connect_client

        self._client = connect_client(self.url, self.client_id, persistent=False)
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self, timeout: float = 60.0) -> None:
        """Wait until the broker acknowledged everything, then disconnect."""
        if self._client is None:
            return
        try:
            self.wait(timeout)
        finally:
            self._client.disconnect()
            self._client.loop_stop()
            self._client = None

    def wait(self, timeout: float = 60.0) -> None:
        """Block until every message published so far was acknowledged by the broker."""
        deadline = time.monotonic() + timeout
        if self._last is not None:
            self._last.wait_for_publish(timeout)
        while self._client._out_messages and time.monotonic() < deadline:
            time.sleep(0.01)

    def publish(self, topic: str, payload: bytes | str) -> None:
        """Publish one message at QoS 1."""
        self._last = self._client.publish(topic, payload, qos=1)
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
