"""Exact count, min, max and mean of a time window from roll-ups instead of raw rows.

A window rarely starts and ends on hour boundaries, so it is cut into pieces that
each table answers exactly: whole hours from ``rollups_hour``, whole minutes at the
edges from ``rollups_minute``, and the sub-minute remainders from raw readings. The
result equals what pandas computes on the raw rows of the window, while reading a
few hundred roll-up rows instead of tens of thousands of readings per sensor.
Medians and percentiles cannot be merged from roll-ups; those need raw rows
(:func:`iotlab.analytics.metrics.sensor_statistics`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from iotlab._compat import legacy_call_forms
from iotlab.store.queries import read_readings, read_rollups
from iotlab.store.rollups import INTERVALS, read_minute_rollups

if TYPE_CHECKING:
    from iotlab.store.base import Store

__all__ = ["ROLLUP_COLUMNS", "fleet_reading_counts", "rollup_statistics", "split_window"]

ROLLUP_COLUMNS = ["sensor_id", "count", "sum", "min", "max", "mean"]


def split_window(
    start: pd.Timestamp, end: pd.Timestamp
) -> list[tuple[str, pd.Timestamp, pd.Timestamp]]:
    """Cut ``[start, end)`` into ``(source, start, end)`` pieces of hours, minutes and raw.

    ``source`` is ``"hour"``, ``"minute"`` or ``"raw"``; the pieces are disjoint, cover the
    window exactly, and each is aligned to its source's granularity.

    Examples
    --------
    >>> t = pd.Timestamp
    >>> for piece in split_window(t("2026-01-01 00:58:30Z"), t("2026-01-01 03:00:20Z")):
    ...     print(piece[0], piece[1].strftime("%H:%M:%S"), piece[2].strftime("%H:%M:%S"))
    hour 01:00:00 03:00:00
    raw 00:58:30 00:59:00
    minute 00:59:00 01:00:00
    raw 03:00:00 03:00:20
    """
    pieces: list[tuple[str, pd.Timestamp, pd.Timestamp]] = []
    first_hour, last_hour = start.ceil("h"), end.floor("h")
    if first_hour < last_hour:
        pieces.append(("hour", first_hour, last_hour))
        edges = [(start, first_hour), (last_hour, end)]
    else:
        edges = [(start, end)]
    for low, high in edges:
        first_minute, last_minute = low.ceil("min"), high.floor("min")
        if first_minute < last_minute:
            parts = [("raw", low, first_minute), ("minute", first_minute, last_minute)]
            parts.append(("raw", last_minute, high))
        else:
            parts = [("raw", low, high)]
        pieces.extend(p for p in parts if p[1] < p[2])
    return pieces


def _partial_from_rollups(rollups: pd.DataFrame) -> pd.DataFrame:
    return rollups[["sensor_id", "count", "sum", "min", "max"]]


def _partial_from_raw(readings: pd.DataFrame) -> pd.DataFrame:
    grouped = readings.groupby("sensor_id", sort=True)["value"]
    return grouped.agg(["count", "sum", "min", "max"]).reset_index()


@legacy_call_forms(store_first=True)
def rollup_statistics(
    store: Store, device_id: str, start: pd.Timestamp, end: pd.Timestamp
) -> pd.DataFrame:
    """Per-sensor ``count, sum, min, max, mean`` of a device's readings in ``[start, end)``.

    Reads hour roll-ups for whole hours, minute roll-ups for whole minutes at the edges and
    raw readings only for the sub-minute remainders (see :func:`split_window`).

    Returns
    -------
    pandas.DataFrame
        Columns ``sensor_id, count, sum, min, max, mean``, one row per sensor with at least
        one reading, sorted by ``sensor_id``.
    """
    partials = []
    for source, low, high in split_window(start, end):
        if source == "raw":
            raw = read_readings(store, device_id, start=low, end=high)
            partials.append(_partial_from_raw(raw))
        else:
            interval = {"hour": "1h", "minute": "1min"}[source]
            rollups = read_rollups(store, device_id, start=low, end=high, interval=interval)
            partials.append(_partial_from_rollups(rollups))
    partials = [p for p in partials if not p.empty]
    if not partials:
        return pd.DataFrame(
            {
                "sensor_id": pd.Series([], dtype=str),
                "count": pd.Series([], dtype="int64"),
                **{c: pd.Series([], dtype="float64") for c in ("sum", "min", "max", "mean")},
            }
        )
    merged = (
        pd.concat(partials, ignore_index=True)
        .groupby("sensor_id", sort=True)
        .agg(count=("count", "sum"), sum=("sum", "sum"), min=("min", "min"), max=("max", "max"))
        .reset_index()
    )
    merged = merged[merged["count"] > 0].reset_index(drop=True)
    merged["count"] = merged["count"].astype("int64")
    merged["sensor_id"] = merged["sensor_id"].astype(str)
    merged["mean"] = merged["sum"] / merged["count"].to_numpy(dtype=np.float64)
    return merged[ROLLUP_COLUMNS]


def fleet_reading_counts(
    store: Store, device_ids: Sequence[str], start: pd.Timestamp, end: pd.Timestamp
) -> pd.Series:
    """Exact number of readings of each device in ``[start, end)``, from roll-ups.

    Like :func:`rollup_statistics` (hour and minute roll-ups, raw readings only for the
    sub-minute edges, the sensors of the ``sensors`` projection), but for many devices at
    once: devices with the same sensors share one ``read_rows`` call per piece of the
    window, whose partitions the store reads concurrently, instead of a few calls each.

    Returns
    -------
    pandas.Series
        ``int64`` counts indexed by ``device_id`` in the order given (0 without readings).
    """
    ids = [str(d) for d in device_ids]
    counts = pd.Series(0, index=pd.Index(ids, dtype=str, name="device_id"), dtype="int64")
    if not ids:
        return counts
    sensors = store.read_rows("sensors", columns=["device_id", "sensor_id"])
    sensors = sensors[sensors["device_id"].astype(str).isin(ids)]
    groups: dict[tuple[str, ...], list[str]] = {}
    for device_id, rows in sensors.groupby("device_id", sort=True):
        groups.setdefault(tuple(sorted(rows["sensor_id"].astype(str))), []).append(str(device_id))
    for sensor_ids, devices in groups.items():
        key = {"device_id": devices, "sensor_id": list(sensor_ids)}
        for source, low, high in split_window(start, end):
            if source == "raw":
                rows = store.read_rows(
                    "readings", key, start=low, end=high, columns=["device_id", "ts"]
                )
                found = rows.groupby("device_id").size()
            elif source == "minute":  # with the minutes a store leaves to their one reading
                rows = read_minute_rollups(store, key, start=low, end=high)
                found = rows.groupby("device_id")["count"].sum()
            else:
                table, _ = INTERVALS[source]
                rows = store.read_rows(
                    table, key, start=low, end=high, columns=["device_id", "count"]
                )
                found = rows.groupby("device_id")["count"].sum()
            found.index = found.index.astype(str)
            counts = counts.add(found.astype("int64"), fill_value=0).astype("int64")
    return counts.reindex(ids)
