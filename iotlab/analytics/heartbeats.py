"""Heartbeat interval and uptime from hourly heartbeat aggregates, raw or rolled up.

Both are defined on what an hour of heartbeats reduces to (count, first, last, longest
gap; the ``heartbeats_hour`` roll-up of :mod:`iotlab.store.heartbeat_rollups`), so a report
gets the *same* numbers from a week of roll-ups as from every raw heartbeat:

- Of the gaps between consecutive heartbeats, those that cross an hour boundary are known
  exactly (first of an hour minus last of the previous non-empty one). Of the ``n - 1``
  gaps inside an hour, the longest is known, and the others by their total, so each of
  them counts as their mean.
- The **interval** is the median of those gaps (rounded to whole milliseconds).
- Each heartbeat covers the time to the next one, but at most one interval; the last one
  covers up to one interval before the window's end. **Uptime** is the covered share of
  the window. For an hour's other gaps (all but the longest) that is
  ``min(their total, their count * interval)``.

This is exactly the per-heartbeat rule (median spacing; each heartbeat covers up to the
next, at most one interval) whenever each hour has at most one gap that is not within
the regular spacing: regular heartbeats with offline periods (the simulator's, and most
devices'). With jitter, a mixed hour may count up to its early heartbeats' shortfall
(seconds) as covered, and the interval is the median of per-hour means instead of raw
gaps; both modes still agree exactly.

Examples
--------
>>> t0 = pd.Timestamp("2026-01-01", tz="UTC")
>>> beats = pd.date_range(t0, periods=12, freq="5min")  # 00:00 .. 00:55
>>> hours = hourly_heartbeats(beats.append(beats + pd.Timedelta("2h")))
>>> hours[["hour_start", "count"]]
                 hour_start  count
0 2026-01-01 00:00:00+00:00     12
1 2026-01-01 02:00:00+00:00     12
>>> summary = summarise_heartbeats(hours, t0, t0 + pd.Timedelta("4h"))
>>> summary.interval, summary.uptime  # 24 heartbeats x 5 min of 4 h
(Timedelta('0 days 00:05:00'), 0.5)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from iotlab.errors import ValidationError
from iotlab.store.heartbeat_rollups import compute_heartbeat_rollups

if TYPE_CHECKING:
    from iotlab.store.base import Store

__all__ = [
    "HOURLY_COLUMNS",
    "HeartbeatSummary",
    "fleet_heartbeat_hours",
    "hourly_heartbeats",
    "interval_from_hours",
    "summarise_heartbeats",
    "uptime_from_hours",
]

HOURLY_COLUMNS = ["hour_start", "count", "first_ts", "last_ts", "max_gap_ms"]
SOURCES = ("rollups", "raw")
_MS = 1_000_000  # ns


@dataclass(frozen=True)
class HeartbeatSummary:
    """Heartbeats of one device in a window: how many, their interval, uptime, last one."""

    count: int
    interval: pd.Timedelta | None
    uptime: float
    last: pd.Timestamp | None


def hourly_heartbeats(
    ts: pd.Series | pd.DatetimeIndex,
    start: pd.Timestamp | None = None,
    end: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """Count, first and last of the heartbeat times ``ts`` in ``[start, end)`` per hour.

    The same rows as the ``heartbeats_hour`` roll-up of those heartbeats
    (:data:`HOURLY_COLUMNS`, sorted by hour).
    """
    values = pd.Series(pd.DatetimeIndex(ts).as_unit("ms"))
    if start is not None:
        values = values[values >= start]
    if end is not None:
        values = values[values < end]
    hours = compute_heartbeat_rollups(pd.DataFrame({"device_id": "", "ts": values}))
    return hours[HOURLY_COLUMNS]


def _ns(column: pd.Series) -> np.ndarray:
    return pd.DatetimeIndex(column.astype("datetime64[ns, UTC]")).asi8


@dataclass(frozen=True)
class _Gaps:
    """What hourly rows tell about the gaps between heartbeats (times in ns)."""

    longest: np.ndarray  # the longest gap of each hour with two heartbeats or more
    rest_total: np.ndarray  # per hour: total of the other gaps inside it
    rest_count: np.ndarray  # per hour: how many other gaps (count - 2, at least 0)
    across: np.ndarray  # gaps from the last heartbeat of an hour to the next one
    last: int | None  # the last heartbeat

    @classmethod
    def of(cls, hours: pd.DataFrame) -> _Gaps:
        count = hours["count"].to_numpy(dtype=np.int64)
        order = np.argsort(_ns(hours["hour_start"]), kind="stable")
        order = order[count[order] > 0]
        first, last = _ns(hours["first_ts"])[order], _ns(hours["last_ts"])[order]
        inside = count[order] - 1
        longest = hours["max_gap_ms"].to_numpy(dtype=np.int64)[order] * _MS
        has = inside > 0
        return cls(
            longest=longest[has],
            rest_total=(last - first - longest)[has],
            rest_count=inside[has] - 1,
            across=first[1:] - last[:-1],
            last=int(last[-1]) if len(last) else None,
        )

    def interval(self) -> pd.Timedelta | None:
        has_rest = self.rest_count > 0
        values = np.concatenate(
            [
                self.longest.astype(np.float64),
                self.rest_total[has_rest] / self.rest_count[has_rest],
                self.across.astype(np.float64),
            ]
        )
        weights = np.concatenate(
            [
                np.ones(len(self.longest), np.int64),
                self.rest_count[has_rest],
                np.ones(len(self.across), np.int64),
            ]
        )
        if weights.sum() == 0:
            return None
        return pd.Timedelta(round(_weighted_median(values, weights) / _MS), unit="ms")

    def uptime(
        self, start: pd.Timestamp, end: pd.Timestamp, interval: pd.Timedelta | None
    ) -> float:
        window = (end - start).value
        if window <= 0 or self.last is None:
            return 0.0
        step = 0 if interval is None else int(interval.value)
        covered = (
            np.minimum(self.longest, step).sum()
            + np.minimum(self.rest_total, self.rest_count * step).sum()
            + np.minimum(self.across, step).sum()
            + min(end.value - self.last, step)
        )
        return float(covered / window)


def _weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    """The median of ``values`` each repeated ``weights`` times (two middles averaged)."""
    order = np.argsort(values, kind="stable")
    ordered, cumulative = values[order], np.cumsum(weights[order])
    total = int(cumulative[-1])
    low = ordered[np.searchsorted(cumulative, (total - 1) // 2, side="right")]
    high = ordered[np.searchsorted(cumulative, total // 2, side="right")]
    return float((low + high) / 2)


def interval_from_hours(hours: pd.DataFrame) -> pd.Timedelta | None:
    """The heartbeat interval (see the module docstring); ``None`` under two heartbeats."""
    return _Gaps.of(hours).interval()


def uptime_from_hours(
    hours: pd.DataFrame,
    start: pd.Timestamp,
    end: pd.Timestamp,
    interval: pd.Timedelta | None = None,
) -> float:
    """Covered share of ``[start, end)`` (see the module docstring).

    ``hours`` must hold only heartbeats in the window. ``interval`` defaults to
    :func:`interval_from_hours`; if that is unknown, heartbeats cover nothing.
    """
    gaps = _Gaps.of(hours)
    return gaps.uptime(start, end, interval if interval is not None else gaps.interval())


def summarise_heartbeats(
    hours: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp
) -> HeartbeatSummary:
    """Count, interval, uptime and last heartbeat of one device from its hourly rows."""
    gaps = _Gaps.of(hours)
    interval = gaps.interval()
    return HeartbeatSummary(
        count=int(hours["count"].sum()),
        interval=interval,
        uptime=gaps.uptime(start, end, interval),
        last=None if gaps.last is None else pd.Timestamp(gaps.last, tz="UTC").as_unit("ms"),
    )


def fleet_heartbeat_hours(
    store: Store,
    device_ids: Sequence[str],
    start: pd.Timestamp,
    end: pd.Timestamp,
    source: str = "rollups",
) -> pd.DataFrame:
    """Hourly heartbeat rows (``device_id`` + :data:`HOURLY_COLUMNS`) of many devices.

    ``source="rollups"`` reads whole hours of ``[start, end)`` from ``heartbeats_hour`` and
    only the partial hours at the edges from raw heartbeats; ``"raw"`` computes every hour
    from raw heartbeats. Both give the same rows. Each source is one ``read_rows`` call for
    all devices, whose partitions the store reads concurrently.
    """
    if source not in SOURCES:
        raise ValidationError(f"must be one of {', '.join(SOURCES)}", field="source")
    ids = [str(d) for d in device_ids]
    if not ids:
        return compute_heartbeat_rollups(pd.DataFrame({"device_id": [], "ts": []}))
    first_hour, last_hour = start.ceil("h"), end.floor("h")
    if source == "raw" or first_hour >= last_hour:
        raw_spans, hourly = [(start, end)], []
    else:
        raw_spans = [(start, first_hour), (last_hour, end)]
        hourly = [
            store.read_rows(
                "heartbeats_hour",
                {"device_id": ids},
                start=first_hour,
                end=last_hour,
                columns=["device_id", *HOURLY_COLUMNS],
            )
        ]
    for low, high in raw_spans:
        if low < high:
            beats = store.read_rows(
                "device_metrics",
                {"device_id": ids},
                start=low,
                end=high,
                columns=["device_id", "ts"],
            )
            hourly.append(compute_heartbeat_rollups(beats))
    rows = pd.concat(hourly, ignore_index=True)
    rows["device_id"] = rows["device_id"].astype(str)
    return rows.sort_values(["device_id", "hour_start"], kind="stable", ignore_index=True)
