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
>>> cancel = subscribers.subscribe(seen.append, devices="d1")
>>> frame = pd.DataFrame({"device_id": ["d1", "d2"], "sensor_id": ["t", "t"],
...     "value": [1.0, 2.0]})
>>> subscribers.publish_readings(frame)
>>> [(n.kind, n.data["device_id"].tolist()) for n in seen]
[('readings', ['d1'])]
>>> cancel(); subscribers.publish_readings(frame); len(seen)
1
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from iotlab._compat import deprecated
from iotlab._subscriptions import Subscriptions, as_names
from iotlab.errors import ValidationError

__all__ = ["NOTIFICATION_KINDS", "Alert", "Notification", "Subscribers"]

#: ``readings``: a stored batch; ``alert``: a new anomaly event; ``connectivity``: a
#: device went offline or came back online.
NOTIFICATION_KINDS = ("readings", "alert", "connectivity")


@dataclass(frozen=True)
class Alert:
    """The first flagged reading of a new anomaly episode of one sensor.

    Later flagged readings of the same ongoing episode are stored as anomalies but raise
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


class Subscribers:
    """Thread-safe registry of callbacks filtered by devices, sensors and kind."""

    def __init__(self) -> None:
        self._subscriptions = Subscriptions()

    def subscribe(
        self,
        callback: Callable[[Notification], None] | str | None = None,
        legacy_sensor: str | None = None,
        /,
        *,
        devices: str | Sequence[str] | None = None,
        sensors: str | Sequence[str] | None = None,
        kinds: str | Sequence[str] = NOTIFICATION_KINDS,
        **legacy: Any,
    ) -> Callable[[], None]:
        """Call ``callback(notification)`` for matching notifications; return a canceller.

        ``devices``/``sensors`` (one id or several; ``None`` matches any) and ``kinds``
        filter. Connectivity changes concern a whole device, so they reach subscribers of
        that device whatever their sensors. 0.1's ``subscribe(device_id, sensor_id, *,
        callback=...)`` still works, with a ``DeprecationWarning``.
        """
        if "callback" in legacy or isinstance(callback, str) or legacy_sensor is not None:
            deprecated(
                "subscribe(device_id, sensor_id, callback=...) is deprecated, use "
                "subscribe(callback, devices=..., sensors=...)"
            )
            devices = devices if callback is None else callback  # type: ignore[assignment]
            sensors = sensors if legacy_sensor is None else legacy_sensor
            callback = legacy.pop("callback", None)
        if legacy:
            raise TypeError(f"subscribe() got unexpected keyword(s) {sorted(legacy)}")
        wanted_kinds = as_names(kinds, field="kinds") or frozenset(NOTIFICATION_KINDS)
        unknown = sorted(wanted_kinds - set(NOTIFICATION_KINDS))
        if unknown:
            raise ValidationError(
                f"unknown kind(s) {unknown}; use {list(NOTIFICATION_KINDS)}", field="kinds"
            )
        wanted_devices = as_names(devices, field="devices")
        wanted_sensors = as_names(sensors, field="sensors")

        def wants(notification: Notification) -> bool:
            if notification.kind not in wanted_kinds:
                return False
            if notification.kind == "readings":  # a batch spans devices: see deliver
                return True
            if wanted_devices is not None and notification.device_id not in wanted_devices:
                return False
            sensor_bound = notification.kind == "alert" and wanted_sensors is not None
            return not sensor_bound or notification.sensor_id in wanted_sensors  # type: ignore[operator]

        def deliver(notification: Notification) -> None:
            if notification.kind == "readings":  # the rows of this subscriber's filter only
                rows = notification.data
                if wanted_devices is not None:
                    rows = rows[rows["device_id"].isin(wanted_devices)]
                if wanted_sensors is not None:
                    rows = rows[rows["sensor_id"].isin(wanted_sensors)]
                if rows.empty:
                    return
                notification = Notification(
                    "readings",
                    _single(wanted_devices),
                    _single(wanted_sensors),
                    rows.reset_index(drop=True),
                )
            callback(notification)  # type: ignore[operator,misc]

        return self._subscriptions.add(deliver, wants)

    def __len__(self) -> int:
        return len(self._subscriptions)

    def publish_readings(self, readings: pd.DataFrame) -> None:
        """Send each subscriber the rows of ``readings`` that match its filter."""
        if not readings.empty:
            self.publish(Notification("readings", None, None, readings))

    def publish(self, notification: Notification) -> None:
        """Send one notification to every matching subscriber."""
        self._subscriptions.deliver([notification])


def _single(names: frozenset[str] | None) -> str | None:
    """The one name of a filter, if it has exactly one (what a notification is about)."""
    return next(iter(names)) if names is not None and len(names) == 1 else None
