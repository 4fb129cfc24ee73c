"""MQTT topics and JSON payloads: the wire format, and parsing one message.

Topics
------
``<root>/<device_id>/<sensor_id>`` carries one reading as
``{"ts": "2026-01-01T00:00:00.000Z", "value": 21.5, "quality": 100, "status": "ok"}``;
``<root>/<device_id>/heartbeat`` one heartbeat as
``{"ts": ..., "cpu": 12.0, "memory": 40.1, "battery": 88.0, "signal": -61.0}``.
The root is ``iotlab`` by default. ``ts`` is an ISO 8601 string with a UTC offset (or
``Z``), or a number of epoch milliseconds. ``quality`` (default 100) and ``status``
(default ``"ok"``) are optional; heartbeat metrics may be ``null`` (not reported).

Parsing never raises: a message that is not one of these becomes a :class:`Parsed`
with ``kind="dead"`` and a reason naming the field, and goes to the dead letters.

Examples
--------
>>> parse_message("iotlab/d1/temp_01", b'{"ts": "2026-01-01T00:00:00Z", "value": 21.5}')
Parsed(kind='reading', row=('d1', 'temp_01', 1767225600000, 21.5, 100, 'ok'), reason='')
>>> parse_message("iotlab/d1/temp_01", b'{"ts": "2026-01-01T00:00:00", "value": 1}').reason
'ts: naive timestamp: give a time zone'
>>> parse_message("iotlab/d1/temp_01", b'{"ts": 1767225600000, "value": NaN}').reason
'value: must be a finite number, got nan'
"""

from __future__ import annotations

import datetime as dt
import json
import math
from typing import NamedTuple

from iotlab._reasons import NAIVE_TIMESTAMP

__all__ = [
    "HEARTBEAT",
    "METRIC_FIELDS",
    "Parsed",
    "heartbeat_payload",
    "parse_message",
    "reading_payload",
]

HEARTBEAT = "heartbeat"
METRIC_FIELDS = ("cpu", "memory", "battery", "signal")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


class Parsed(NamedTuple):
    """One parsed message.

    ``kind`` is ``"reading"`` (``row`` = device_id, sensor_id, ts epoch ms, value,
    quality, status), ``"heartbeat"`` (``row`` = device_id, ts epoch ms, cpu, memory,
    battery, signal) or ``"dead"`` (``row`` empty, ``reason`` says why).
    """

    kind: str
    row: tuple
    reason: str = ""


def _dead(reason: str) -> Parsed:
    return Parsed("dead", (), reason)


def _epoch_ms(value: object) -> int | str:
    """Epoch milliseconds of a payload ``ts``, or the reason it is refused."""
    if isinstance(value, bool):
        return f"ts: must be an ISO 8601 string or epoch milliseconds, got {value!r}"
    if isinstance(value, int | float):
        if not math.isfinite(value):
            return f"ts: must be finite, got {value!r}"
        return int(value)
    if not isinstance(value, str):
        return f"ts: must be an ISO 8601 string or epoch milliseconds, got {value!r}"
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        return f"ts: unparseable timestamp {value[:40]!r}"
    if parsed.tzinfo is None:
        return f"ts: {NAIVE_TIMESTAMP}"
    return (parsed - _EPOCH) // dt.timedelta(milliseconds=1)


def _number(payload: dict, name: str, *, required: bool) -> float | str:
    value = payload.get(name)
    if value is None:
        return f"{name}: is missing" if required else math.nan
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"{name}: must be a number, got {value!r}"
    value = float(value)
    if required and not math.isfinite(value):
        return f"{name}: must be a finite number, got {value!r}"
    if math.isinf(value):
        return f"{name}: must be finite or null, got {value!r}"
    return value


def _topic_parts(topic: str, root: str) -> tuple[str, str] | str:
    parts = topic.split("/")
    if len(parts) != 3 or parts[0] != root or not parts[1] or not parts[2]:
        return f"topic: expected {root}/<device_id>/<sensor_id|heartbeat>, got {topic!r}"
    return parts[1], parts[2]


def parse_message(topic: str, payload: bytes, *, root: str = "iotlab") -> Parsed:
    """Parse one MQTT message into a reading, a heartbeat, or a dead letter's reason."""
    where = _topic_parts(topic, root)
    if isinstance(where, str):
        return _dead(where)
    device_id, sensor_id = where
    try:
        body = json.loads(payload)
    except (UnicodeDecodeError, ValueError) as exc:
        return _dead(f"payload: not JSON ({exc})")
    if not isinstance(body, dict):
        return _dead(f"payload: expected a JSON object, got {type(body).__name__}")
    if "ts" not in body:
        return _dead("ts: is missing")
    ts = _epoch_ms(body["ts"])
    if isinstance(ts, str):
        return _dead(ts)
    if sensor_id == HEARTBEAT:
        metrics = [_number(body, name, required=False) for name in METRIC_FIELDS]
        bad = next((m for m in metrics if isinstance(m, str)), None)
        return _dead(bad) if bad else Parsed("heartbeat", (device_id, ts, *metrics))
    value = _number(body, "value", required=True)
    if isinstance(value, str):
        return _dead(value)
    quality = body.get("quality", 100)
    if quality is None:
        quality = 100
    if isinstance(quality, bool) or not isinstance(quality, int):
        return _dead(f"quality: must be an integer, got {quality!r}")
    status = body.get("status", "ok")
    if status is None:
        status = "ok"
    if not isinstance(status, str):
        return _dead(f"status: must be a string, got {status!r}")
    return Parsed("reading", (device_id, sensor_id, ts, value, quality, status))


def _iso(ms: int) -> str:
    return (_EPOCH + dt.timedelta(milliseconds=ms)).isoformat(timespec="milliseconds")


def reading_payload(ts_ms: int, value: float, quality: int = 100, status: str = "ok") -> bytes:
    """The JSON payload of one reading.

    Examples
    --------
    >>> reading_payload(1767225600000, 21.5)
    b'{"ts": "2026-01-01T00:00:00.000+00:00", "value": 21.5, "quality": 100, "status": "ok"}'
    """
    body = {"ts": _iso(ts_ms), "value": value, "quality": int(quality), "status": status}
    return json.dumps(body).encode()


def heartbeat_payload(ts_ms: int, **metrics: float) -> bytes:
    """The JSON payload of one heartbeat; NaN metrics become ``null``.

    Examples
    --------
    >>> heartbeat_payload(0, cpu=1.5, memory=float("nan"))
    b'{"ts": "1970-01-01T00:00:00.000+00:00", "cpu": 1.5, "memory": null}'
    """
    body: dict[str, object] = {"ts": _iso(ts_ms)}
    for name, value in metrics.items():
        body[name] = None if value is None or math.isnan(value) else float(value)
    return json.dumps(body).encode()
