"""Per-device metrics: reading statistics per sensor, anomalies, uptime, last seen, status.

Uptime is measured against the device's *own* heartbeat interval, inferred as the median
spacing of its heartbeats: each heartbeat covers one interval (or up to the next heartbeat,
if that comes sooner), and uptime is the covered share of the window. A device that sends a
heartbeat every 5 minutes is therefore 100% up, not 20% as with an assumed one a minute.
Both are computed from hourly aggregates of the heartbeats (:mod:`iotlab.analytics.heartbeats`),
so reports get the same numbers from the ``heartbeats_hour`` roll-up as from raw heartbeats.

Examples
--------
>>> ts = pd.date_range("2026-01-01", periods=6, freq="5min", tz="UTC")
>>> heartbeat_interval(ts)
Timedelta('0 days 00:05:00')
>>> uptime(ts, ts[0], ts[0] + pd.Timedelta("1h"))  # 6 heartbeats x 5 min of 60 min
0.5
"""

from __future__ import annotations

import html
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

from iotlab._compat import legacy_call_forms
from iotlab._time import TimeLike, utc_timestamp_or_none
from iotlab.analytics._display import SEVERITIES, frame_to_html, key_values_html
from iotlab.analytics.heartbeats import hourly_heartbeats, interval_from_hours, uptime_from_hours
from iotlab.errors import NotFoundError, ValidationError
from iotlab.store.lifecycle import read_anomalies
from iotlab.store.queries import read_heartbeats, read_readings

if TYPE_CHECKING:
    from iotlab.store.base import Store

__all__ = [
    "STAT_COLUMNS",
    "DeviceMetrics",
    "device_metrics",
    "device_row",
    "heartbeat_interval",
    "metrics_from_frames",
    "resolve_window",
    "sensor_statistics",
    "severity_counts",
    "uptime",
]

STAT_COLUMNS = ["count", "min", "max", "mean", "median", "std", "p05", "p95"]


def resolve_window(
    start: TimeLike | None, end: TimeLike | None
) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
    """Parse ``start``/``end`` as UTC; raise ``ValidationError`` if ``end <= start``.

    Examples
    --------
    >>> resolve_window("2026-01-02", "2026-01-01")
    Traceback (most recent call last):
    ...
    iotlab.errors.ValidationError: end: must be after start (2026-01-01 00:00:00+00:00 <= ...)
    """
    low = utc_timestamp_or_none(start, field="start")
    high = utc_timestamp_or_none(end, field="end")
    if low is not None and high is not None and high <= low:
        raise ValidationError(f"must be after start ({high} <= {low})", field="end")
    return low, high


def sensor_statistics(readings: pd.DataFrame) -> pd.DataFrame:
    """Count, min, max, mean, median, std (ddof=1), 5th and 95th percentile per sensor.

    Needs raw rows: medians and percentiles cannot be merged from roll-ups.

    Examples
    --------
    >>> rows = pd.DataFrame({"sensor_id": ["t", "t", "t"], "value": [1.0, 2.0, 6.0]})
    >>> sensor_statistics(rows)[["sensor_id", "count", "mean", "median"]]
      sensor_id  count  mean  median
    0         t      3   3.0     2.0
    """
    grouped = readings.groupby("sensor_id", sort=True)["value"]
    stats = grouped.agg(["count", "min", "max", "mean", "median", "std"])
    stats["p05"] = grouped.quantile(0.05)
    stats["p95"] = grouped.quantile(0.95)
    stats = stats.reset_index()
    stats["sensor_id"] = stats["sensor_id"].astype(str)
    stats["count"] = stats["count"].astype("int64")
    return stats[["sensor_id", *STAT_COLUMNS]]


def severity_counts(anomalies: pd.DataFrame) -> dict[str, int]:
    """Anomalies per severity, every severity present (zero if none), least severe first.

    Examples
    --------
    >>> severity_counts(pd.DataFrame({"severity": ["high", "low", "high"]}))
    {'low': 1, 'medium': 0, 'high': 2, 'critical': 0}
    """
    counts = anomalies["severity"].value_counts() if len(anomalies) else pd.Series(dtype=int)
    return {s: int(counts.get(s, 0)) for s in SEVERITIES}


def heartbeat_interval(ts: pd.Series | pd.DatetimeIndex) -> pd.Timedelta | None:
    """A device's heartbeat interval: the median spacing of its heartbeats.

    The median ignores offline gaps and jitter; gaps inside an hour count as their mean
    (see :mod:`iotlab.analytics.heartbeats`), which is exact for regular heartbeats.
    ``None`` with fewer than two heartbeats.
    """
    return interval_from_hours(hourly_heartbeats(ts))


def uptime(
    ts: pd.Series | pd.DatetimeIndex,
    start: pd.Timestamp,
    end: pd.Timestamp,
    interval: pd.Timedelta | None = None,
) -> float:
    """Share of ``[start, end)`` covered by heartbeats, each covering one ``interval``.

    A heartbeat at ``t`` covers ``[t, t + interval)``, cut short by the next heartbeat and
    the window's end, so overlapping (early) heartbeats are not counted twice; inside an
    hour the cut is applied to the hour's heartbeats together (see
    :mod:`iotlab.analytics.heartbeats`). ``interval`` defaults to :func:`heartbeat_interval`
    of the heartbeats in the window. With fewer than two heartbeats and no interval given,
    the interval is unknown and each heartbeat covers nothing but itself.
    """
    return uptime_from_hours(hourly_heartbeats(ts, start, end), start, end, interval)


def device_row(store: Store, device_id: str) -> dict[Hashable, Any]:
    """The device's projection row; ``NotFoundError`` for an unknown device."""
    rows = store.read_rows("devices", {"device_id": device_id})
    if rows.empty:
        raise NotFoundError(f"unknown device {device_id!r}: it was never provisioned")
    return rows.iloc[0].to_dict()


@dataclass
class DeviceMetrics:
    """Metrics of one device over a window; ``to_frame()`` gives the per-sensor table."""

    device_id: str
    start: pd.Timestamp | None
    end: pd.Timestamp | None
    status: str
    last_seen: pd.Timestamp | None
    heartbeats: int
    heartbeat_interval: pd.Timedelta | None
    uptime: float
    sensors: pd.DataFrame
    anomalies: dict[str, int] = field(default_factory=dict)
    #: last battery/cpu/memory/signal, battery days to empty (:mod:`iotlab.analytics.health`)
    health: dict[str, float] = field(default_factory=dict)

    @property
    def total_anomalies(self) -> int:
        return sum(self.anomalies.values())

    def summary(self) -> dict[str, object]:
        """The scalar metrics as a dict (one row of a fleet table)."""
        return {
            "device_id": self.device_id,
            "status": self.status,
            "uptime": self.uptime,
            "heartbeat_interval": self.heartbeat_interval,
            "heartbeats": self.heartbeats,
            "readings": int(self.sensors["count"].sum()),
            "anomalies": self.total_anomalies,
            **self.anomalies,
            "last_seen": self.last_seen,
            **self.health,
        }

    def to_frame(self) -> pd.DataFrame:
        """Per-sensor statistics, with the device id as the first column."""
        return self.sensors.assign(device_id=self.device_id)[["device_id", *self.sensors.columns]]

    def _repr_html_(self) -> str:
        facts: dict[str, Any] = {k: v for k, v in self.summary().items() if k not in SEVERITIES}
        facts["uptime"] = f"{self.uptime:.1%}"
        for key, unit in (("battery", "%"), ("cpu", "%"), ("memory", "%"), ("signal", "dBm")):
            if key in facts and pd.notna(facts[key]):
                facts[key] = f"{facts[key]:.0f} {unit}"
        days = facts.pop("battery_days_to_empty", float("nan"))
        facts["battery empty in"] = f"{days:.1f} days" if pd.notna(days) else "not draining"
        facts.update({"window start": self.start, "window end": self.end})
        facts.update({f"anomalies ({s})": n for s, n in self.anomalies.items()})
        return (
            f"<h4>Device {html.escape(str(self.device_id))}</h4>"
            + key_values_html(facts)
            + frame_to_html(self.sensors)
        )


@legacy_call_forms(positional=("start", "end"), store_first=True)
def device_metrics(
    store: Store,
    device_id: str,
    *,
    start: TimeLike | None = None,
    end: TimeLike | None = None,
) -> DeviceMetrics:
    """Reading statistics, anomalies by severity, uptime, last seen and status of a device.

    Statistics come from raw readings, because medians and percentiles cannot be merged
    from roll-ups (for count/min/max/mean alone, see
    :func:`iotlab.analytics.rollup_statistics`, which reads roll-ups). ``start``/``end``
    default to the extent of the device's data: first heartbeat or reading, and one
    heartbeat interval past the last. ``last_seen`` is the latest of the projection's
    ``last_seen`` and the last heartbeat or reading in the window.

    Raises
    ------
    NotFoundError
        The device was never provisioned.
    ValidationError
        ``end`` is not after ``start``.
    """
    low, high = resolve_window(start, end)
    row = device_row(store, device_id)
    return metrics_from_frames(
        row,
        read_heartbeats(store, device_id, start=low, end=high),
        read_readings(store, device_id, start=low, end=high),
        read_anomalies(store, start=low, end=high, devices=[device_id]),
        low,
        high,
    )


def metrics_from_frames(
    device: Mapping[Hashable, Any],
    heartbeats: pd.DataFrame,
    readings: pd.DataFrame,
    anomalies: pd.DataFrame,
    start: pd.Timestamp | None,
    end: pd.Timestamp | None,
) -> DeviceMetrics:
    """:class:`DeviceMetrics` from frames already read (see :func:`device_metrics`).

    Report builders use it so that readings read once serve both metrics and figures.
    """
    interval = heartbeat_interval(heartbeats["ts"])
    seen = pd.concat([heartbeats["ts"], readings["ts"]], ignore_index=True)
    if start is None and len(seen):
        start = seen.min()
    if end is None and len(seen):
        end = seen.max() + (interval or pd.Timedelta(1, "ms"))
    candidates = [
        t
        for t in (device.get("last_seen"), seen.max() if len(seen) else None)
        if t is not None and pd.notna(t)
    ]
    covered = (
        uptime(heartbeats["ts"], start, end, interval)
        if start is not None and end is not None
        else 0.0
    )
    from iotlab.analytics.health import device_health

    state = device_health(heartbeats, now=end) if end is not None else {}
    health = {
        key: float(state.get(key, float("nan")))
        for key in ("battery", "cpu", "memory", "signal", "battery_days_to_empty")
    }
    return DeviceMetrics(
        health=health,
        device_id=str(device["device_id"]),
        start=start,
        end=end,
        status=str(device.get("status")),
        last_seen=max(candidates) if candidates else None,
        heartbeats=len(heartbeats),
        heartbeat_interval=interval,
        uptime=covered,
        sensors=sensor_statistics(readings),
        anomalies=severity_counts(anomalies),
    )
