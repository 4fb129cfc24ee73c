"""What subscribers and alert handlers receive, and the registry that calls them.

Callbacks run on the ingestion service's own thread, right after a batch is stored
(so a notebook cell that subscribes sees data that is already queryable). Keep them
short: a slow callback delays the next batch. To hand data to another thread (a live
notebook, a widget), put it on a :class:`queue.Queue` from the callback. A callback
that raises is logged and skipped; the service keeps running.

Examples
--------
>>> import pandas as pd
>>> subscribers = Subscribers()
>>> seen = []
>>> cancel = subscribers.subscribe("d1", callback=seen.append)
>>> frame = pd.DataFrame({"device_id": ["d1", "d2"], "sensor_id": ["t", "t"],
...     "value": [1.0, 2.0]})
>>> subscribers.publish_readings(frame)
>>> [(n.kind, n.device_id, len(n.data)) for n in seen]
[('readings', 'd1', 1)]
>>> cancel(); subscribers.publish_readings(frame); len(seen)
1
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from iotlab.errors import ValidationError

__all__ = ["NOTIFICATION_KINDS", "Alert", "Notification", "Subscribers"]

logger = logging.getLogger(__name__)

#: ``readings``: a stored batch; ``alert``: a new anomaly event; ``connectivity``: a
#: device went offline or came back online.
NOTIFICATION_KINDS = ("readings", "alert", "connectivity")


@dataclass(frozen=True)
class Alert:
    """The first flagged reading of a new anomaly event of one sensor.

    Later flagged readings of the same ongoing event are stored as anomalies but raise
    no further alert (see ``IngestionService``'s ``alert_gap``).
    """

    device_id: str
    sensor_id: str
    ts: pd.Timestamp
    value: float
    expected: float
    lower: float
    upper: float
    score: float
    confidence: float
    severity: str
    detector: str


@dataclass(frozen=True)
class Notification:
    """One message to a subscriber.

    Attributes
    ----------
    kind
        One of :data:`NOTIFICATION_KINDS`.
    device_id, sensor_id
        What it is about (``None`` for a readings batch spanning several devices/sensors).
    data
        ``readings``: a DataFrame of the stored rows (``device_id, sensor_id, ts, value,
        quality, status`` plus the scores ``expected, lower, upper, score, confidence,
        is_anomaly, severity``); ``alert``: an :class:`Alert`; ``connectivity``: a dict
        with ``event_type, occurred_at, last_seen, version``.
    """

    kind: str
    device_id: str | None
    sensor_id: str | None
    data: Any


@dataclass(frozen=True)
class _Subscription:
    device_id: str | None
    sensor_id: str | None
    kinds: frozenset[str]
    callback: Callable[[Notification], None]


class Subscribers:
    """Thread-safe registry of callbacks filtered by device, sensor and kind."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[_Subscription] = []

    def subscribe(
        self,
        device_id: str | None = None,
        sensor_id: str | None = None,
        *,
        callback: Callable[[Notification], None],
        kinds: tuple[str, ...] = NOTIFICATION_KINDS,
    ) -> Callable[[], None]:
        """Call ``callback(notification)`` for matching notifications; return a canceller.

        ``None`` for ``device_id``/``sensor_id`` matches any. Connectivity changes concern
        a whole device, so they reach subscribers of that device whatever their sensor.
        """
        if not callable(callback):
            raise ValidationError(f"must be callable, got {callback!r}", field="callback")
        unknown = sorted(set(kinds) - set(NOTIFICATION_KINDS))
        if unknown:
            raise ValidationError(
                f"unknown kind(s) {unknown}; use {list(NOTIFICATION_KINDS)}", field="kinds"
            )
        entry = _Subscription(device_id, sensor_id, frozenset(kinds), callback)
        with self._lock:
            self._entries.append(entry)

        def unsubscribe() -> None:
            with self._lock:
                if entry in self._entries:
                    self._entries.remove(entry)

        return unsubscribe

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def _matching(self, kind: str) -> list[_Subscription]:
        with self._lock:
            return [e for e in self._entries if kind in e.kinds]

    @staticmethod
    def _call(entry: _Subscription, notification: Notification) -> None:
        try:
            entry.callback(notification)
        except Exception:  # one broken notebook cell must not stop ingestion
            logger.exception(
                "subscriber %r failed on a %s notification", entry.callback, notification.kind
            )

    def publish_readings(self, readings: pd.DataFrame) -> None:
        """Send each subscriber the rows of ``readings`` that match its filter."""
        if readings.empty:
            return
        for entry in self._matching("readings"):
            rows = readings
            if entry.device_id is not None:
                rows = rows[rows["device_id"] == entry.device_id]
            if entry.sensor_id is not None:
                rows = rows[rows["sensor_id"] == entry.sensor_id]
            if len(rows):
                self._call(
                    entry,
                    Notification(
                        "readings", entry.device_id, entry.sensor_id, rows.reset_index(drop=True)
                    ),
                )

    def publish(self, notification: Notification) -> None:
        """Send one alert or connectivity notification to every matching subscriber."""
        for entry in self._matching(notification.kind):
            if entry.device_id not in (None, notification.device_id):
                continue
            if notification.kind == "alert" and entry.sensor_id not in (
                None,
                notification.sensor_id,
            ):
                continue
            self._call(entry, notification)
