"""Per-minute and per-hour roll-ups (count, sum, min, max) that stay equal to the raw rows.

Correctness rule: a roll-up row always equals what pandas computes from the raw readings
that are stored. Merging a batch's partial aggregates into stored ones is wrong under
re-ingest (rows counted twice) and overlapping batches, so instead, after a batch is
written, every hour it touched is *recomputed* from the stored raw rows of that hour and
its minute and hour roll-ups are upserted. Re-ingesting the same rows then gives the same
roll-ups, and a late row for an old hour just recomputes that hour.

Examples
--------
>>> import pandas as pd
>>> raw = pd.DataFrame({"device_id": "d1", "sensor_id": "t",
...     "ts": pd.to_datetime(["2026-01-01 00:00:10", "2026-01-01 00:00:50",
...                           "2026-01-01 00:01:00"], utc=True), "value": [1.0, 3.0, 5.0]})
>>> compute_rollups(raw, "hour")[["bucket_start", "count", "sum", "min", "max"]]
               bucket_start  count  sum  min  max
0 2026-01-01 00:00:00+00:00      3  9.0  1.0  5.0
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from iotlab.store.base import Store

__all__ = ["INTERVALS", "compute_rollups", "refresh_rollups"]

#: roll-up interval -> (table, pandas frequency)
INTERVALS = {"minute": ("rollups_minute", "min"), "hour": ("rollups_hour", "h")}
_HOUR_MS = 3_600_000


def compute_rollups(raw: pd.DataFrame, interval: str) -> pd.DataFrame:
    """Count, sum, min and max of ``raw`` readings per device, sensor and interval.

    Parameters
    ----------
    raw
        Columns ``device_id, sensor_id, ts, value`` (``ts`` tz-aware UTC).
    interval
        ``"minute"`` or ``"hour"``.

    Returns
    -------
    pandas.DataFrame
        Columns of the roll-up tables (without ``bucket``), sorted by key.
    """
    _, freq = INTERVALS[interval]
    columns = ["device_id", "sensor_id", "bucket_start", "count", "sum", "min", "max"]
    if raw.empty:
        return pd.DataFrame({c: pd.Series([], dtype=_DTYPES[c]) for c in columns})
    keyed = pd.DataFrame(
        {
            "device_id": raw["device_id"].to_numpy(),
            "sensor_id": raw["sensor_id"].to_numpy(),
            "bucket_start": raw["ts"].dt.floor(freq),
            "value": raw["value"].to_numpy(dtype="float64"),
        }
    )
    grouped = keyed.groupby(["device_id", "sensor_id", "bucket_start"], sort=True)["value"]
    out = grouped.agg(["count", "sum", "min", "max"]).reset_index()
    out["count"] = out["count"].astype("int64")
    out["bucket_start"] = out["bucket_start"].astype("datetime64[ms, UTC]")
    return out[columns]


_DTYPES = {
    "device_id": "str",
    "sensor_id": "str",
    "bucket_start": "datetime64[ms, UTC]",
    "count": "int64",
    "sum": "float64",
    "min": "float64",
    "max": "float64",
}


def refresh_rollups(store: Store, written: pd.DataFrame) -> int:
    """Recompute the minute and hour roll-ups of every hour ``written`` touched.

    Parameters
    ----------
    store
        The store the readings were written to.
    written
        The readings just written (at least ``device_id, sensor_id, ts``).

    Returns
    -------
    int
        Number of hour roll-up rows upserted.
    """
    if written.empty:
        return 0
    hours = _epoch_ms(written["ts"]) // _HOUR_MS * _HOUR_MS
    touched = pd.DataFrame(
        {
            "device_id": written["device_id"].to_numpy(dtype=object),
            "sensor_id": written["sensor_id"].to_numpy(dtype=object),
            "hour": hours,
        }
    ).drop_duplicates()
    # Devices that touched the same sensors and hours (the usual case: one batch of a
    # fleet) are read with one call, so the cost does not grow with per-call overhead.
    plans: dict[tuple[tuple[str, ...], tuple[tuple[int, int], ...]], list[str]] = {}
    for device_id, group in touched.groupby("device_id", sort=True):
        sensors = tuple(sorted(group["sensor_id"].unique()))
        runs = tuple(_runs(np.unique(group["hour"].to_numpy())))
        plans.setdefault((sensors, runs), []).append(str(device_id))
    frames = []
    for (sensors, runs), devices in plans.items():
        for start, end in runs:
            frames.append(
                store.read_rows(
                    "readings",
                    {"device_id": devices, "sensor_id": list(sensors)},
                    start=pd.Timestamp(start, unit="ms", tz="UTC"),
                    end=pd.Timestamp(end, unit="ms", tz="UTC"),
                    columns=["device_id", "sensor_id", "ts", "value"],
                )
            )
    raw = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    # A run covers whole hours of the listed sensors; hours of those sensors that the batch
    # did not touch are recomputed too, which is harmless (same result) and keeps reads few.
    store.write_rows("rollups_minute", compute_rollups(raw, "minute"))
    hourly = compute_rollups(raw, "hour")
    store.write_rows("rollups_hour", hourly)
    return len(hourly)


def _runs(hours: np.ndarray) -> list[tuple[int, int]]:
    """Contiguous runs of sorted hour starts (epoch ms) as ``[start, end)`` pairs."""
    breaks = np.flatnonzero(np.diff(hours) != _HOUR_MS) + 1
    return [(int(run[0]), int(run[-1]) + _HOUR_MS) for run in np.split(hours, breaks)]


def _epoch_ms(ts: pd.Series) -> np.ndarray:
    return np.asarray(ts.astype("datetime64[ms, UTC]").array.asi8)
