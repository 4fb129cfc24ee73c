"""Validate, write and roll up readings and heartbeats, on any backend.

Examples
--------
>>> import pandas as pd
>>> from iotlab.store import open_store
>>> store = open_store("sqlite://")
>>> readings = pd.DataFrame({"device_id": ["d1", "d1"], "sensor_id": ["t", "t"],
...     "ts": pd.to_datetime(["2026-01-01 00:00", "2026-01-01 00:01"], utc=True),
...     "value": [20.5, float("nan")]})
>>> result = ingest_readings(store, readings, require_provisioned=False, progress=False)
>>> result
IngestResult(written=1, rejected=1: value is missing or NaN ×1)
>>> result.rejected[["row", "reason"]]
   row                  reason
0    1  value is missing or NaN
>>> store.close()
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from iotlab.store.heartbeat_rollups import refresh_heartbeat_rollups
from iotlab.store.rollups import refresh_rollups
from iotlab.store.validate import validate_metrics, validate_readings

if TYPE_CHECKING:
    from iotlab.store.base import Store

__all__ = ["IngestResult", "ingest_metrics", "ingest_readings"]

#: frames smaller than this get no progress bar
_PROGRESS_MIN_ROWS = 50_000


@dataclass(frozen=True, eq=False)  # eq would compare DataFrames elementwise
class IngestResult:
    """What an ingest did: rows written, and the rejected rows with a ``reason`` column."""

    written: int
    rejected: pd.DataFrame

    def reason_counts(self) -> pd.Series:
        """How many rows were rejected for each reason, most frequent first."""
        return self.rejected["reason"].value_counts()

    def __repr__(self) -> str:
        if self.rejected.empty:
            return f"IngestResult(written={self.written}, rejected=0)"
        reasons = ", ".join(f"{r} ×{n}" for r, n in self.reason_counts().head(3).items())
        more = ", ..." if self.rejected["reason"].nunique() > 3 else ""
        return (
            f"IngestResult(written={self.written}, rejected={len(self.rejected)}: {reasons}{more})"
        )

    def _repr_html_(self) -> str:
        head = (
            f"<p><b>IngestResult</b>: {self.written:,} rows written, "
            f"{len(self.rejected):,} rejected</p>"
        )
        if self.rejected.empty:
            return head
        counts = self.reason_counts().rename("rows").to_frame().to_html()
        sample = self.rejected.head(10).to_html(index=False)
        return f"{head}{counts}<p>first rejected rows:</p>{sample}"


def ingest_readings(
    store: Store,
    df: pd.DataFrame,
    *,
    require_provisioned: bool = True,
    progress: bool = True,
    chunk_rows: int = 200_000,
) -> IngestResult:
    """Validate readings, write the valid ones in chunks, then refresh their roll-ups.

    Parameters
    ----------
    store
        Target store.
    df
        Columns ``device_id, sensor_id, ts, value`` and optionally ``quality, status``;
        see :mod:`iotlab.store.validate` for the rules.
    require_provisioned
        Reject readings of sensors not in the ``sensors`` projection.
    progress
        Show a progress bar (only for large frames).
    chunk_rows
        Rows per write; each chunk's roll-ups are refreshed right after it lands, so
        memory stays bounded and an interrupted ingest leaves consistent roll-ups.

    Returns
    -------
    IngestResult
    """
    clean, rejected = validate_readings(df, store, require_provisioned=require_provisioned)
    # Key order keeps each partition's rows in one chunk (except at chunk edges), so
    # each hour is recomputed about once.
    clean = _sorted_by_key(clean)
    written = _write_chunks(store, "readings", clean, progress, chunk_rows, rollups=True)
    return IngestResult(written, rejected)


def ingest_metrics(
    store: Store,
    df: pd.DataFrame,
    *,
    require_provisioned: bool = True,
    progress: bool = True,
    chunk_rows: int = 200_000,
) -> IngestResult:
    """Validate device heartbeats (``device_id, ts, cpu, memory, battery, signal``) and write them.

    Heartbeats of devices missing from the ``devices`` projection are rejected unless
    ``require_provisioned=False``.
    """
    clean, rejected = validate_metrics(df, store, require_provisioned=require_provisioned)
    written = _write_chunks(store, "device_metrics", clean, progress, chunk_rows, rollups=False)
    refresh_heartbeat_rollups(store, clean)  # uptime reads these instead of every heartbeat
    return IngestResult(written, rejected)


def _sorted_by_key(clean: pd.DataFrame) -> pd.DataFrame:
    """``clean`` in (device_id, sensor_id, ts) order; sorting integer codes beats text."""
    if len(clean) < 2:
        return clean
    devices = pd.factorize(clean["device_id"].to_numpy(), sort=True)[0]
    sensors = pd.factorize(clean["sensor_id"].to_numpy(), sort=True)[0]
    ts = clean["ts"].to_numpy("datetime64[ms]").view("int64")
    order = np.lexsort((ts, sensors, devices))
    if (np.diff(order) == 1).all():  # already in order: no copy
        return clean
    return clean.take(order).reset_index(drop=True)


def _write_chunks(
    store: Store,
    table: str,
    clean: pd.DataFrame,
    progress: bool,
    chunk_rows: int,
    *,
    rollups: bool,
) -> int:
    from tqdm.auto import tqdm

    show = progress and len(clean) >= _PROGRESS_MIN_ROWS
    # A backend that aggregates in the store (SQLite) writes a chunk's raw rows and its
    # roll-ups in one transaction (and faster).
    combined = rollups and store.capabilities.rollups_in_store
    written = 0
    with tqdm(total=len(clean), unit="rows", desc=f"ingest {table}", disable=not show) as bar:
        for first in range(0, len(clean), chunk_rows):
            chunk = clean.iloc[first : first + chunk_rows]
            if combined:
                written += store.write_readings_with_rollups(chunk)
            else:
                written += store.write_rows(table, chunk)
                if rollups:
                    with store.rollup_lock:
                        refresh_rollups(store, chunk, memory=store.rollup_memory)
            bar.update(len(chunk))
    return written
