"""One micro-batch as it is gathered: parsed messages, submitted frames, acks.

The service thread owns a :class:`PendingBatch`; nothing here is shared between threads.
MQTT messages are parsed into :class:`ParsedMessages`, by the service thread or, ahead of
it, by the MQTT receiver process (:mod:`iotlab.ingest.receiver`); Kafka messages by the
Kafka source's thread (:mod:`iotlab.ingest.kafka`). Each lot names its source, which a
dead letter made of one of its rows says.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields

import numpy as np
import pandas as pd

from iotlab.ingest.messages import MAX_PAYLOAD_BYTES, METRIC_FIELDS, letter_text, parse_payload

__all__ = ["ParsedMessages", "Part", "PendingBatch"]

READING_COLUMNS = ("device_id", "sensor_id", "ts", "value", "quality", "status")
HEARTBEAT_COLUMNS = ("device_id", "ts", *METRIC_FIELDS)


@dataclass
class Part:
    """Rows of one kind from one origin, and how to show a row as a dead letter."""

    frame: pd.DataFrame
    source: str
    topics: list[str] | None = None  # per row, for MQTT messages
    payloads: list[bytes] | None = None  # raw payload per row, for MQTT messages
    elements: list[str] | None = None  # per row: "[i]." in a message of several, else ""

    def letter(self, row: int) -> tuple[str, str, str]:
        """(source, topic, payload) of the row at position ``row``; for a row that came in
        a message of several, the payload is the row's own fields, not the message's."""
        several = self.elements is not None and bool(self.elements[row])
        topic = letter_text(self.topics[row]) if self.topics is not None else ""
        if self.payloads is not None and not several:
            return self.source, topic, letter_text(self.payloads[row])
        record = self.frame.iloc[row].to_dict()
        return self.source, topic, letter_text(json.dumps(record, default=str))

    def reason(self, row: int, reason: str) -> str:
        """``reason`` for refusing the row at ``row``, with its position in its message
        when the message carried several readings (``[3].sensor not provisioned``)."""
        return (self.elements[row] if self.elements is not None else "") + reason


def _frame_from_ms(rows: list[tuple], columns: tuple[str, ...], ts_at: int) -> pd.DataFrame:
    frame = pd.DataFrame.from_records(rows, columns=list(columns))
    ms = frame[columns[ts_at]].to_numpy(dtype=np.int64)
    frame[columns[ts_at]] = pd.Series(ms.astype("datetime64[ms]")).dt.tz_localize("UTC")
    return frame


def _elements(payload: bytes) -> list[str]:
    """Each element of a JSON array payload as the text a dead letter stores, or ``[]``
    if they cannot be shown: a bad element's letter holds that element, not the whole
    message (a megabyte of bad elements must not become a megabyte per letter)."""
    try:
        return [letter_text(json.dumps(item)) for item in json.loads(payload)]
    except (ValueError, TypeError, RecursionError):
        return []


@dataclass
class ParsedMessages:
    """MQTT messages parsed into rows by kind, each with its topic and raw payload (for a
    dead letter, should the row be refused later); malformed ones as dead letters."""

    root: str = "iotlab"
    max_payload: int = MAX_PAYLOAD_BYTES
    source: str = "mqtt"
    readings: list[tuple] = field(default_factory=list)
    reading_topics: list[str] = field(default_factory=list)
    reading_payloads: list[bytes] = field(default_factory=list)
    reading_elements: list[str] = field(default_factory=list)
    heartbeats: list[tuple] = field(default_factory=list)
    heartbeat_topics: list[str] = field(default_factory=list)
    heartbeat_payloads: list[bytes] = field(default_factory=list)
    heartbeat_elements: list[str] = field(default_factory=list)
    dead: list[tuple[str, str, str, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.readings) + len(self.heartbeats) + len(self.dead)

    def add(self, topic: str, payload: bytes) -> None:
        """Parse one message (:func:`~iotlab.ingest.messages.parse_payload`) and keep its
        readings and heartbeats; each row keeps the message's topic and payload."""
        rows = parse_payload(topic, payload, root=self.root, max_payload=self.max_payload)
        many = len(rows) > 1
        shown: list[str] | None = None  # what a dead letter stores of each element
        for i, parsed in enumerate(rows):
            element = f"[{i}]." if many else ""
            if parsed.kind == "reading":
                self.readings.append(parsed.row)
                self.reading_topics.append(topic)
                self.reading_payloads.append(payload)
                self.reading_elements.append(element)
            elif parsed.kind == "heartbeat":
                self.heartbeats.append(parsed.row)
                self.heartbeat_topics.append(topic)
                self.heartbeat_payloads.append(payload)
                self.heartbeat_elements.append(element)
            else:
                if shown is None:  # once per message, and only for one with a dead letter
                    shown = _elements(payload) if many else []
                    if len(shown) != len(rows):
                        shown = [letter_text(payload)] * len(rows)
                    topic_text = letter_text(topic)
                self.dead.append((self.source, topic_text, shown[i], parsed.reason))

    def extend(self, other: ParsedMessages) -> None:
        """Append another lot of parsed messages."""
        for column in fields(self):
            if column.name not in ("root", "max_payload", "source"):
                getattr(self, column.name).extend(getattr(other, column.name))


@dataclass
class PendingBatch:
    """What arrived since the last flush."""

    root: str = "iotlab"
    max_payload: int = MAX_PAYLOAD_BYTES
    size: int = 0
    opened: float = 0.0  # monotonic time the first item arrived (was submitted)
    messages: ParsedMessages = field(init=False)  # raw MQTT messages and parsed MQTT chunks
    # Parsed lots of other sources (Kafka), one per source, so that rows keep their source.
    other_messages: dict[str, ParsedMessages] = field(default_factory=dict)
    reading_frames: list[tuple[pd.DataFrame, str]] = field(default_factory=list)
    metric_frames: list[tuple[pd.DataFrame, str]] = field(default_factory=list)
    acks: list[Callable[[], None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.messages = ParsedMessages(self.root, self.max_payload)

    @property
    def dead(self) -> list[tuple[str, str, str, str]]:
        """Malformed messages: (source, topic, payload text, reason)."""
        if not self.other_messages:
            return self.messages.dead
        return [d for lot in self._lots() for d in lot.dead]

    def _lots(self) -> list[ParsedMessages]:
        return [self.messages, *self.other_messages.values()]

    def _touch(self, n: int, arrived: float | None) -> None:
        if self.size == 0:
            self.opened = time.monotonic() if arrived is None else arrived
        self.size += n

    def add_message(self, topic: str, payload: bytes, *, arrived: float | None = None) -> None:
        """Parse and keep one raw message; ``arrived`` is when it was submitted (monotonic)."""
        self.messages.add(topic, payload)
        self._touch(1, arrived)

    def add_parsed(self, messages: ParsedMessages, *, arrived: float | None = None) -> None:
        if messages.source == self.messages.source:
            self.messages.extend(messages)
        else:
            lot = self.other_messages.get(messages.source)
            if lot is None:
                lot = self.other_messages[messages.source] = ParsedMessages(
                    self.root, self.max_payload, messages.source
                )
            lot.extend(messages)
        self._touch(max(len(messages), 1), arrived)

    def add_frame(
        self, frame: pd.DataFrame, source: str, *, metrics: bool, arrived: float | None = None
    ) -> None:
        (self.metric_frames if metrics else self.reading_frames).append((frame, source))
        self._touch(max(len(frame), 1), arrived)

    def reading_parts(self) -> list[Part]:
        parts = [Part(f.reset_index(drop=True), s) for f, s in self.reading_frames]
        for got in reversed(self._lots()):
            if got.readings:
                frame = _frame_from_ms(got.readings, READING_COLUMNS, 2)
                parts.insert(
                    0,
                    Part(
                        frame,
                        got.source,
                        got.reading_topics,
                        got.reading_payloads,
                        got.reading_elements,
                    ),
                )
        return parts

    def metric_parts(self) -> list[Part]:
        parts = [Part(f.reset_index(drop=True), s) for f, s in self.metric_frames]
        for got in reversed(self._lots()):
            if got.heartbeats:
                frame = _frame_from_ms(got.heartbeats, HEARTBEAT_COLUMNS, 1)
                parts.insert(
                    0,
                    Part(
                        frame,
                        got.source,
                        got.heartbeat_topics,
                        got.heartbeat_payloads,
                        got.heartbeat_elements,
                    ),
                )
        return parts
