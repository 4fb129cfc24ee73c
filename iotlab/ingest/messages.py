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

Several readings in one message
-------------------------------
A payload may also be a JSON *array* of such objects: a sensor's readings buffered
while it was offline, or a device's sensors read together. On a sensor (or heartbeat)
topic every element is one of that sensor's readings (heartbeats); on the device topic
``<root>/<device_id>`` every element names its sensor,
``[{"sensor_id": "temp_01", "ts": ..., "value": 21.5}, {"sensor_id": "hum_01", ...}]``.
A real device that samples all its sensors at once sends one message instead of one
per sensor, and the broker, the network and the service handle a fraction of the
packets. Each element is judged on its own: a bad one becomes a dead letter whose
reason names its position (``[2].value: ...``), and the others are stored.

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
>>> [p.row[1:4] for p in parse_payload("iotlab/d1",
...     b'[{"sensor_id": "t", "ts": 0, "value": 1}, {"sensor_id": "h", "ts": 0, "value": 2}]')]
[('t', 0, 1.0), ('h', 0, 2.0)]
>>> [p.reason for p in parse_payload("iotlab/d1/t", b'[{"ts": 0, "value": 1}, {"ts": 0}]')]
['', '[1].value: is missing']
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
from typing import Any, NamedTuple

from iotlab._limits import (
    MAX_ABS_VALUE,
    MAX_MS,
    MIN_MS,
    QUALITY_MAX,
    QUALITY_MIN,
    text_problem,
)
from iotlab._reasons import NAIVE_TIMESTAMP

__all__ = [
    "HEARTBEAT",
    "LETTER_PAYLOAD_BYTES",
    "MAX_ELEMENTS",
    "MAX_PAYLOAD_BYTES",
    "METRIC_FIELDS",
    "Parsed",
    "heartbeat_payload",
    "letter_text",
    "parse_message",
    "parse_payload",
    "reading_payload",
]

HEARTBEAT = "heartbeat"
METRIC_FIELDS = ("cpu", "memory", "battery", "signal")
#: Largest payload parsed (bytes); a larger one is a dead letter, unparsed.
MAX_PAYLOAD_BYTES = 1 << 20
#: Most readings one message may carry (a JSON array); a longer array is one dead letter:
#: a week of one-minute readings fits, a megabyte of ``[1,1,1,...]`` does not become half
#: a million dead letters.
MAX_ELEMENTS = 10_000
#: Most bytes of a payload (and topic) a dead letter keeps; the rest is named by its size
#: and SHA-256, so a 20 MB message never becomes a 20 MB row.
LETTER_PAYLOAD_BYTES = 4096
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_SHOWN = 60  # characters of an offending value quoted in a reason


class Parsed(NamedTuple):
    """One parsed message.

    ``kind`` is ``"reading"`` (``row`` = device_id, sensor_id, ts epoch ms, value,
    quality, status), ``"heartbeat"`` (``row`` = device_id, ts epoch ms, cpu, memory,
    battery, signal) or ``"dead"`` (``row`` empty, ``reason`` says why).
    """

    kind: str
    row: tuple[object, ...]
    reason: str = ""


def _dead(reason: str) -> Parsed:
    return Parsed("dead", (), reason)


def _shown(value: object) -> str:
    """``repr(value)``, cut short: a reason must stay small whatever the payload held."""
    text = repr(value) if not isinstance(value, dict | list) else type(value).__name__
    return text if len(text) <= _SHOWN else text[:_SHOWN] + "..."


def letter_text(data: bytes | str, *, limit: int = LETTER_PAYLOAD_BYTES) -> str:
    """Storable text of a dead letter's payload or topic.

    Undecodable bytes and lone surrogates are backslash-escaped; over ``limit`` bytes,
    the first ``limit`` are kept followed by the full size and SHA-256 of the original.

    Examples
    --------
    >>> letter_text(b'{"ts": 1}')
    '{"ts": 1}'
    >>> letter_text(b"x" * 10, limit=4)  # doctest: +ELLIPSIS
    'xxxx... [truncated: 10 bytes, sha256 fc11d6f2...]'
    """
    raw = data if isinstance(data, bytes) else data.encode("utf-8", "surrogatepass")
    head = raw[:limit].decode("utf-8", "backslashreplace")
    head = head.encode("utf-8", "backslashreplace").decode("utf-8")  # lone surrogates
    if len(raw) <= limit:
        return head
    digest = hashlib.sha256(raw).hexdigest()
    return f"{head}... [truncated: {len(raw)} bytes, sha256 {digest}]"


def _epoch_ms(value: object) -> int | str:
    """Epoch milliseconds of a payload ``ts``, or the reason it is refused."""
    if isinstance(value, bool):
        return f"ts: must be an ISO 8601 string or epoch milliseconds, got {_shown(value)}"
    if isinstance(value, int | float):
        if not math.isfinite(value):
            return f"ts: must be finite, got {_shown(value)}"
        ms = value
    elif isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value)
        except ValueError:
            return f"ts: unparseable timestamp {_shown(value)}"
        if parsed.tzinfo is None:
            return f"ts: {NAIVE_TIMESTAMP}"
        ms = (parsed - _EPOCH) // dt.timedelta(milliseconds=1)
    else:
        return f"ts: must be an ISO 8601 string or epoch milliseconds, got {_shown(value)}"
    if not MIN_MS <= ms <= MAX_MS:
        return f"ts: outside the supported range (years 1678-2261), got {_shown(value)}"
    return int(ms)


def _number(payload: dict[str, Any], name: str, *, required: bool) -> float | str:
    value = payload.get(name)
    if value is None:
        return f"{name}: is missing" if required else math.nan
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"{name}: must be a number, got {_shown(value)}"
    try:
        value = float(value)
    except OverflowError:  # a JSON integer of hundreds of digits
        return f"{name}: must be a finite number, got {_shown(value)}"
    if required and not math.isfinite(value):
        return f"{name}: must be a finite number, got {value!r}"
    if math.isinf(value):
        return f"{name}: must be finite or null, got {value!r}"
    if abs(value) > MAX_ABS_VALUE:
        return f"{name}: magnitude over {MAX_ABS_VALUE:g} (roll-up sums would overflow)"
    return value


def _topic_parts(topic: str, root: str) -> tuple[str, str | None] | str:
    """``(device_id, sensor_id)`` of a topic (``sensor_id`` ``None`` on the device topic
    ``<root>/<device_id>``), or the reason it is refused."""
    parts = topic.split("/")
    if not 2 <= len(parts) <= 3 or parts[0] != root or not all(parts[1:]):
        shown = _shown(letter_text(topic, limit=200))
        return f"topic: expected {root}/<device_id>[/<sensor_id|heartbeat>], got {shown}"
    for name, text in zip(("device_id", "sensor_id"), parts[1:]):
        problem = text_problem(text, name)
        if problem:
            return f"topic: {problem}"
    return parts[1], parts[2] if len(parts) == 3 else None


def parse_message(
    topic: str, payload: bytes, *, root: str = "iotlab", max_payload: int = MAX_PAYLOAD_BYTES
) -> Parsed:
    """Parse a message of one reading or heartbeat into it, or a dead letter's reason.

    Never raises: whatever ``topic`` and ``payload`` hold (over ``max_payload`` bytes,
    nested a million deep, numbers no float holds, timestamps no pandas holds, text no
    store can encode), the worst outcome is ``kind="dead"`` with a reason. A message that
    carries several (a JSON array, or the device topic) is for :func:`parse_payload`.
    """
    parsed = parse_payload(topic, payload, root=root, max_payload=max_payload)
    if len(parsed) == 1:
        return parsed[0]
    return _dead(f"payload: carries {len(parsed)} readings; parse_payload reads them all")


def parse_payload(
    topic: str, payload: bytes, *, root: str = "iotlab", max_payload: int = MAX_PAYLOAD_BYTES
) -> list[Parsed]:
    """Every reading or heartbeat a message carries, in order (see the module docstring).

    A payload that is one JSON object gives one :class:`Parsed`, an array one per
    element; an element that cannot be stored gives a dead one whose reason starts with
    its position (``[3].ts: ...``). A message that cannot be read at all (its topic, its
    size, not JSON, an empty array) gives a single dead one. Never raises.
    """
    try:
        return _parse(topic, payload, root, max_payload)
    except Exception as exc:  # a case the checks below missed must not stop the service
        return [_dead(f"payload: cannot be parsed ({type(exc).__name__})")]


def _parse(topic: str, payload: bytes, root: str, max_payload: int) -> list[Parsed]:
    where = _topic_parts(topic, root)
    if isinstance(where, str):
        return [_dead(where)]
    device_id, sensor_id = where
    if len(payload) > max_payload:
        return [_dead(f"payload: {len(payload)} bytes, over the {max_payload}-byte limit")]
    try:
        body = json.loads(payload)
    except RecursionError:
        return [_dead("payload: JSON nested too deeply")]
    except (UnicodeDecodeError, ValueError) as exc:
        return [_dead(f"payload: not JSON ({_shown(str(exc))})")]
    if isinstance(body, dict):
        return [_element(body, device_id, sensor_id, "")]
    if not isinstance(body, list):
        return [_dead(f"payload: expected a JSON object or array, got {type(body).__name__}")]
    if not body:
        return [_dead("payload: an empty array carries no reading")]
    if len(body) > MAX_ELEMENTS:
        return [_dead(f"payload: {len(body)} elements, over the {MAX_ELEMENTS}-element limit")]
    return [_element(item, device_id, sensor_id, f"[{i}].") for i, item in enumerate(body)]


def _element(body: object, device_id: str, sensor_id: str | None, at: str) -> Parsed:
    """One reading or heartbeat object; ``at`` prefixes a reason with its array position."""
    if not isinstance(body, dict):
        where = f"{at[:-1]}: " if at else "payload: "
        return _dead(f"{where}expected a JSON object, got {type(body).__name__}")
    if sensor_id is None:  # the device topic: each element names its sensor
        named = body.get("sensor_id")
        problem = _sensor_problem(named)
        if problem:
            return _dead(at + problem)
        sensor_id = str(named)
    parsed = _one(body, device_id, sensor_id)
    return parsed if not at or parsed.kind != "dead" else _dead(at + parsed.reason)


def _sensor_problem(sensor_id: object) -> str | None:
    """Why an element's ``sensor_id`` cannot name a sensor, or ``None``."""
    if sensor_id is None:
        return "sensor_id: is missing"
    if not isinstance(sensor_id, str) or not sensor_id:
        return f"sensor_id: must be a non-empty string, got {_shown(sensor_id)}"
    if sensor_id == HEARTBEAT:
        return f"sensor_id: {HEARTBEAT!r} is not a sensor (heartbeats have a topic of their own)"
    return text_problem(sensor_id, "sensor_id")


def _one(body: dict[str, Any], device_id: str, sensor_id: str) -> Parsed:
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
        return _dead(f"quality: must be an integer, got {_shown(quality)}")
    if not QUALITY_MIN <= quality <= QUALITY_MAX:
        return _dead(f"quality: outside the 32-bit integer range, got {_shown(quality)}")
    status = body.get("status", "ok")
    if status is None:
        status = "ok"
    if not isinstance(status, str):
        return _dead(f"status: must be a string, got {_shown(status)}")
    problem = text_problem(status, "status")
    if problem:
        return _dead(problem)
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
