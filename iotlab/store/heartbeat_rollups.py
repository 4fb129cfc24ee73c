"""Hourly heartbeat roll-ups (count, first, last, longest gap) that stay equal to the raw rows.

Uptime and the heartbeat interval of a device over a week need only, per hour, how many
heartbeats arrived, when the first and last of them came and the longest spacing between
them (:mod:`iotlab.analytics.heartbeats`), so a fleet report reads 168 roll-up rows per device
instead of thousands of heartbeats.

Correctness rule, the same as for the reading roll-ups (:mod:`iotlab.store.rollups`): a
roll-up row always equals what pandas computes from the heartbeats that are stored. After
heartbeats are written, every hour they touched is *recomputed* from the stored heartbeats
of that hour and upserted, so re-ingest, overlapping batches and late heartbeats all give
the same rows as computing from scratch.

Examples
--------
>>> import pandas as pd
>>> beats = pd.DataFrame({"device_id": "d1", "ts": pd.to_datetime(
...     ["2026-01-01 00:00", "2026-01-01 00:05", "2026-01-01 00:50", "2026-01-01 01:10"],
...     utc=True)})
>>> compute_heartbeat_rollups(beats)[["count", "first_ts", "last_ts", "max_gap_ms"]]
   count                  first_ts                   last_ts  max_gap_ms
0      3 2026-01-01 00:00:00+00:00 2026-01-01 00:50:00+00:00     2700000
1      1 2026-01-01 01:10:00+00:00 2026-01-01 01:10:00+00:00           0
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from iotlab.store.base import Store

__all__ = ["HEARTBEAT_ROLLUP_COLUMNS", "compute_heartbeat_rollups", "refresh_heartbeat_rollups"]

#: Columns of the ``heartbeats_hour`` table a reader sees (the store hides ``bucket``).
HEARTBEAT_ROLLUP_COLUMNS = [
    "device_id",
    "hour_start",
    "count",
    "first_ts",
    "last_ts",
    "max_gap_ms",
]
_HOUR_MS = 3_600_000
_DTYPES = {
    "device_id": "str",
    "hour_start": "datetime64[ms, UTC]",
    "count": "int64",
    "first_ts": "datetime64[ms, UTC]",
    "last_ts": "datetime64[ms, UTC]",
    "max_gap_ms": "int64",
}


def compute_heartbeat_rollups(heartbeats: pd.DataFrame) -> pd.DataFrame:
    """Count, first and last heartbeat, and the longest gap between them, per device and hour.

    ``max_gap_ms`` is 0 for an hour with one heartbeat.

    Parameters
    ----------
    heartbeats
        Columns ``device_id, ts`` (``ts`` tz-aware UTC); other columns are ignored.

    Returns
    -------
    pandas.DataFrame
        :data:`HEARTBEAT_ROLLUP_COLUMNS`, sorted by device and hour.
    """
    if heartbeats.empty:
        return pd.DataFrame({c: pd.Series([], dtype=t) for c, t in _DTYPES.items()})
    keyed = pd.DataFrame(
        {
            "device_id": heartbeats["device_id"].to_numpy(dtype=object),
            "ts": _epoch_ms(heartbeats["ts"]),
        }
    ).sort_values(["device_id", "ts"], kind="stable", ignore_index=True)
    ts = keyed["ts"].to_numpy()
    keyed["hour_start"] = ts // _HOUR_MS * _HOUR_MS
    # spacing to the previous heartbeat of the same device and hour (0 for the first)
    gap = np.diff(ts, prepend=ts[:1])
    same = np.zeros(len(keyed), dtype=bool)
    same[1:] = (keyed["device_id"].to_numpy()[1:] == keyed["device_id"].to_numpy()[:-1]) & (
        keyed["hour_start"].to_numpy()[1:] == keyed["hour_start"].to_numpy()[:-1]
    )
    keyed["gap"] = np.where(same, gap, 0)
    grouped = keyed.groupby(["device_id", "hour_start"], sort=True)
    out = grouped.agg(
        count=("ts", "count"),
        first_ts=("ts", "min"),
        last_ts=("ts", "max"),
        max_gap_ms=("gap", "max"),
    ).reset_index()
    for column in ("hour_start", "first_ts", "last_ts"):
        out[column] = pd.to_datetime(out[column], unit="ms", utc=True)
    return out[HEARTBEAT_ROLLUP_COLUMNS].astype(_DTYPES)


def refresh_heartbeat_rollups(store: Store, written: pd.DataFrame) -> int:
    """Recompute the ``heartbeats_hour`` rows of every device and hour ``written`` touched.

    Parameters
    ----------
    store
        The store the heartbeats were written to.
    written
        The heartbeats just written (at least ``device_id, ts``).

    Returns
    -------
    int
        Number of roll-up rows upserted.
    """
    if written.empty:
        return 0
    touched = pd.DataFrame(
        {
            "device_id": written["device_id"].to_numpy(dtype=object),
            "hour": _epoch_ms(written["ts"]) // _HOUR_MS * _HOUR_MS,
        }
    ).drop_duplicates()
    # Devices that touched the same hours (a fleet's batch) share one read, so the cost
    # does not grow with per-call overhead; the store reads their partitions concurrently.
    plans: dict[tuple[tuple[int, int], ...], list[str]] = {}
    for device_id, group in touched.groupby("device_id", sort=True):
        runs = tuple(_runs(np.unique(group["hour"].to_numpy())))
        plans.setdefault(runs, []).append(str(device_id))
    frames = [
        store.read_rows(
            "device_metrics",
            {"device_id": devices},
            start=pd.Timestamp(start, unit="ms", tz="UTC"),
            end=pd.Timestamp(end, unit="ms", tz="UTC"),
            columns=["device_id", "ts"],
        )
        for runs, devices in plans.items()
        for start, end in runs
    ]
    # A run covers whole hours, so every hour it names is recomputed from all its rows.
    hourly = compute_heartbeat_rollups(pd.concat(frames, ignore_index=True))
    store.write_rows("heartbeats_hour", hourly)
    advance_last_seen(store, written)
    return len(hourly)


def advance_last_seen(store: Store, written: pd.DataFrame) -> int:
    """Move ``devices.last_seen`` forward to the newest heartbeat in ``written``.

    Only provisioned devices whose ``last_seen`` is older (or unset) change, and only that
    column is written (:meth:`~iotlab.store.base.Store.advance_times`): a late or replayed
    heartbeat never moves it back, and a concurrent lifecycle event's projection is never
    overwritten. Returns the rows asked to move.
    """
    newest = (
        pd.DataFrame({"device_id": written["device_id"].astype(str), "last_seen": written["ts"]})
        .groupby("device_id", as_index=False)[["last_seen"]]
        .max()
    )
    newest["last_seen"] = newest["last_seen"].astype("datetime64[ms, UTC]")
    return store.advance_times("devices", "last_seen", newest)


def _runs(hours: np.ndarray) -> list[tuple[int, int]]:
    """Contiguous runs of sorted hour starts (epoch ms) as ``[start, end)`` pairs."""
    breaks = np.flatnonzero(np.diff(hours) != _HOUR_MS) + 1
    return [(int(run[0]), int(run[-1]) + _HOUR_MS) for run in np.split(hours, breaks)]


def _epoch_ms(ts: pd.Series) -> np.ndarray:
    return pd.DatetimeIndex(pd.Series(ts).astype("datetime64[ms, UTC]")).asi8
