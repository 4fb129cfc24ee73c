"""One micro-batch as it is gathered: parsed messages, submitted frames, acks.

The service thread owns a :class:`PendingBatch`; nothing here is shared between threads.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from iotlab.ingest.messages import METRIC_FIELDS, parse_message

__all__ = ["Part", "PendingBatch"]

READING_COLUMNS = ("device_id", "sensor_id", "ts", "value", "quality", "status")
HEARTBEAT_COLUMNS = ("device_id", "ts", *METRIC_FIELDS)


@dataclass
class Part:
    """Rows of one kind from one origin, and how to show a row as a dead letter."""

    frame: pd.DataFrame
    source: str
    topics: list[str] | None = None  # per row, for MQTT messages
    payloads: list[bytes] | None = None  # raw payload per row, for MQTT messages

    def letter(self, row: int) -> tuple[str, str, str]:
        """(source, topic, payload) of the row at position ``row``."""
        if self.payloads is not None and self.topics is not None:
            return self.source, self.topics[row], _text(self.payloads[row])
        record = self.frame.iloc[row].to_dict()
        return self.source, "", json.dumps(record, default=str)


def _frame_from_ms(rows: list[tuple], columns: tuple[str, ...], ts_at: int) -> pd.DataFrame:
    frame = pd.DataFrame.from_records(rows, columns=list(columns))
    ms = frame[columns[ts_at]].to_numpy(dtype=np.int64)
    frame[columns[ts_at]] = pd.Series(ms.astype("datetime64[ms]")).dt.tz_localize("UTC")
    return frame


@dataclass
class PendingBatch:
    """What arrived since the last flush."""

    root: str = "iotlab"
    size: int = 0
    opened: float = 0.0  # monotonic time of the first item
    readings: list[tuple] = field(default_factory=list)
    reading_topics: list[str] = field(default_factory=list)
    reading_payloads: list[bytes] = field(default_factory=list)
    heartbeats: list[tuple] = field(default_factory=list)
    heartbeat_topics: list[str] = field(default_factory=list)
    heartbeat_payloads: list[bytes] = field(default_factory=list)
    dead: list[tuple[str, str, str, str]] = field(default_factory=list)
    reading_frames: list[tuple[pd.DataFrame, str]] = field(default_factory=list)
    metric_frames: list[tuple[pd.DataFrame, str]] = field(default_factory=list)
    acks: list[Callable[[], None]] = field(default_factory=list)

    def _touch(self, n: int) -> None:
        if self.size == 0:
            self.opened = time.monotonic()
        self.size += n

    def add_message(self, topic: str, payload: bytes) -> None:
        parsed = parse_message(topic, payload, root=self.root)
        if parsed.kind == "reading":
            self.readings.append(parsed.row)
            self.reading_topics.append(topic)
            self.reading_payloads.append(payload)
        elif parsed.kind == "heartbeat":
            self.heartbeats.append(parsed.row)
            self.heartbeat_topics.append(topic)
            self.heartbeat_payloads.append(payload)
        else:
            self.dead.append(("mqtt", topic, _text(payload), parsed.reason))
        self._touch(1)

    def add_frame(self, frame: pd.DataFrame, source: str, *, metrics: bool) -> None:
        (self.metric_frames if metrics else self.reading_frames).append((frame, source))
        self._touch(max(len(frame), 1))

    def reading_parts(self) -> list[Part]:
        parts = [Part(f.reset_index(drop=True), s) for f, s in self.reading_frames]
        if self.readings:
            frame = _frame_from_ms(self.readings, READING_COLUMNS, 2)
            parts.insert(0, Part(frame, "mqtt", self.reading_topics, self.reading_payloads))
        return parts

    def metric_parts(self) -> list[Part]:
        parts = [Part(f.reset_index(drop=True), s) for f, s in self.metric_frames]
        if self.heartbeats:
            frame = _frame_from_ms(self.heartbeats, HEARTBEAT_COLUMNS, 1)
            parts.insert(0, Part(frame, "mqtt", self.heartbeat_topics, self.heartbeat_payloads))
        return parts


def _text(payload: bytes) -> str:
    return payload.decode("utf-8", errors="backslashreplace")
