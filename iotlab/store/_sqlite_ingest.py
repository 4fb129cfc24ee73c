"""SQLite's bulk path: readings and their minute and hour roll-ups in one transaction.

Used by :meth:`iotlab.store.sqlite.SQLiteStore.write_readings_with_rollups` (what
``ingest_readings`` calls on SQLite) and by the native branch of
:func:`iotlab.store.rollups.refresh_rollups`. The roll-up rule is the one of
:mod:`iotlab.store.rollups`: a touched minute equals the aggregate of its stored raw rows,
a touched hour the aggregate of its stored minute roll-ups. How it stays cheap:

- Rows cross from Python once, as integer pair codes (not two texts a row) into a TEMP
  staging table, with multi-row ``INSERT ... VALUES`` statements: binding hundreds of
  rows a statement is several times faster than ``executemany``'s row-at-a-time loop.
  The raw rows and the roll-ups are then written by ``INSERT ... SELECT`` inside SQLite.
- Before the raw rows land, one index seek per (device, sensor) finds the span of its
  already stored rows in the batch's range. A batch minute outside that span with a
  single batch row has exactly that row once the batch is written, so its roll-up
  (count 1, sum = min = max = value) is copied row by row, with no aggregation. Every
  other touched minute (several rows, or rows stored before: re-ingest, overlap, late
  data) is recomputed from the stored raw rows.
- Recomputations are driven by a TEMP table of the touched (pair, bucket start) keys in
  key order, joined to the source table by range: SQLite then aggregates while it walks
  the primary key, with no sort of the rows (a ``GROUP BY`` on a computed bucket sorts).
  Touched hours are always recomputed from the stored minutes, the same way every time,
  so re-ingesting the same rows gives bit-identical roll-ups.

Everything of a chunk (raw rows, minutes, hours) commits together (``BEGIN IMMEDIATE``),
so an interrupted ingest never leaves roll-ups that disagree with the raw rows.
"""

from __future__ import annotations

import sqlite3
from contextlib import AbstractContextManager
from typing import Protocol

import numpy as np
import pandas as pd

from iotlab._keys import sensor_pairs
from iotlab.errors import ValidationError
from iotlab.store._sqlite_values import insert_many, to_sql_values
from iotlab.store.schema import TableSpec

__all__ = ["SQLiteDatabase", "write_readings_with_rollups"]

_MINUTE_MS = 60_000
_HOUR_MS = 3_600_000
_PAIRS = "temp._iotlab_pairs"
_STAGE = "temp._iotlab_stage"
_BUCKETS = "temp._iotlab_buckets"


class SQLiteDatabase(Protocol):
    """What this bulk path needs of :class:`iotlab.store.sqlite.SQLiteStore`.

    Named here, not imported, so this module does not depend on the store that uses it.
    """

    def _now_ms(self) -> int: ...

    def _spec(self, table: str) -> TableSpec: ...

    def _transaction(self, begin: str = ...) -> AbstractContextManager[sqlite3.Connection]: ...

    def _alive_clause(self, spec: TableSpec) -> tuple[str, list[object]]: ...


_TEMP_TABLES = (
    f"CREATE TABLE IF NOT EXISTS {_PAIRS} (pair INTEGER PRIMARY KEY, device_id TEXT, "
    "sensor_id TEXT, lo INTEGER, hi INTEGER)",
    f"CREATE TABLE IF NOT EXISTS {_STAGE} (pair INTEGER, ts INTEGER, value REAL, "
    "quality INTEGER, status TEXT, copy_minute INTEGER)",
    f"CREATE TABLE IF NOT EXISTS {_BUCKETS} (pair INTEGER, start INTEGER, "
    "PRIMARY KEY (pair, start)) WITHOUT ROWID",
)


def write_readings_with_rollups(
    store: SQLiteDatabase, rows: pd.DataFrame, *, write_raw: bool = True
) -> tuple[int, int]:
    """Write ``rows`` to ``readings`` (unless ``write_raw=False``) and refresh their roll-ups.

    With ``write_raw=False`` the rows are taken as already stored, and every minute they
    touch is recomputed from the raw table. Returns the number of rows written (or
    given) and the number of hour roll-ups recomputed.
    """
    if rows.empty:
        return 0, 0
    batch = _Batch.of(store, rows, full=write_raw)
    now = store._now_ms()
    with store._transaction("BEGIN IMMEDIATE") as conn:
        for sql in _TEMP_TABLES:  # they are empty: emptied below, or rolled back
            conn.execute(sql)
        insert_many(
            conn,
            f"INSERT INTO {_PAIRS} VALUES ",
            [
                list(range(len(batch.devices))),
                batch.devices.tolist(),
                batch.sensors.tolist(),
                *(a.tolist() for a in batch.minute_span()),
            ],
        )
        copy = np.zeros(len(batch.pair), dtype=bool)  # minutes copied instead of recomputed
        if write_raw:
            stored = batch.minutes_with_stored_rows(_stored_spans(store, conn))
            copy = batch.single_minute() & ~stored
            _stage(conn, batch, copy, store, now)
        _recompute(store, conn, "readings", "rollups_minute", batch.keys(~copy, _MINUTE_MS), now)
        hours = batch.keys(None, _HOUR_MS)
        _recompute(store, conn, "rollups_minute", "rollups_hour", hours, now)
        for table in (_PAIRS, _STAGE, _BUCKETS):  # free the staged rows' memory
            conn.execute(f"DELETE FROM {table}")
    return len(batch.pair), len(hours[0])


def _stage(
    conn: sqlite3.Connection, batch: _Batch, copy: np.ndarray, store: SQLiteDatabase, now: int
) -> None:
    """Stage the batch, then write its raw rows and its copied minutes from the stage.

    A column with one value in the whole batch (``quality``, ``status`` and the copy flag
    usually) is bound once in the ``INSERT ... SELECT`` instead of once a row.
    """
    signed = bool(batch.ms.min() < 0)
    varying = {"pair": batch.pair, "ts": batch.ms, "value": batch.columns["value"]}
    exprs: dict[str, tuple[str, list[object]]] = {}
    for name, values in (
        ("quality", batch.columns["quality"]),
        ("status", batch.columns["status"]),
        ("copy_minute", copy.astype(np.int64)),
    ):
        if len(values) and (values == values[0]).all():
            exprs[name] = ("?", [values[0].item() if hasattr(values[0], "item") else values[0]])
        else:
            varying[name] = values
            exprs[name] = (f"s.{name}", [])
    insert_many(
        conn,
        f"INSERT INTO {_STAGE} ({', '.join(varying)}) VALUES ",
        [values.tolist() for values in varying.values()],
    )
    conn.execute(
        _raw_from_stage_sql(store, now, exprs["quality"][0], exprs["status"][0], signed),
        exprs["quality"][1] + exprs["status"][1],
    )
    flag, flag_params = exprs["copy_minute"]
    if flag_params != [0]:  # else no minute is copied
        conn.execute(_minutes_from_stage_sql(store, now, signed, filtered=not flag_params))


class _Batch:
    """A batch as NumPy arrays sorted by (pair, ts), duplicates dropped (the last wins)."""

    def __init__(
        self,
        pair: np.ndarray,
        ms: np.ndarray,
        devices: np.ndarray,
        sensors: np.ndarray,
        columns: dict[str, np.ndarray],
    ) -> None:
        self.pair, self.ms, self.devices, self.sensors = pair, ms, devices, sensors
        self.columns = columns
        self.minute = ms // _MINUTE_MS * _MINUTE_MS

    @classmethod
    def of(cls, store: SQLiteDatabase, rows: pd.DataFrame, *, full: bool) -> _Batch:
        spec = store._spec("readings")
        needed = [
            "device_id",
            "sensor_id",
            "ts",
            *(("value", "quality", "status") if full else ()),
        ]
        missing = [c for c in needed if c not in rows.columns]
        if missing:
            raise ValidationError(
                f"missing column(s) {', '.join(missing)} for table readings", field=missing[0]
            )
        for column in ("device_id", "sensor_id", "ts"):
            empty = np.flatnonzero(rows[column].isna().to_numpy())
            if len(empty):
                raise ValidationError("key column is missing", field=column, rows=empty)
        ms = to_sql_values(rows["ts"], "timestamp", "ts")
        pair, devices, sensors = sensor_pairs(
            rows["device_id"].astype(str).to_numpy(object),
            rows["sensor_id"].astype(str).to_numpy(object),
        )
        by_key = np.lexsort((ms, pair))  # stable: among equal keys the later row stays last
        order = None if (np.diff(by_key) == 1).all() else by_key
        if order is not None:
            pair, ms = pair[order], ms[order]
        last = np.ones(len(pair), dtype=bool)  # the last row of each (pair, ts) wins
        last[:-1] = (pair[1:] != pair[:-1]) | (ms[1:] != ms[:-1])
        keep = None if last.all() else last
        if keep is not None:
            pair, ms = pair[keep], ms[keep]
        columns: dict[str, np.ndarray] = {}
        if full:
            for name in ("value", "quality", "status"):
                values = to_sql_values(rows[name], spec.columns[name], name)
                if order is not None:
                    values = values[order]
                if keep is not None:
                    values = values[keep]
                columns[name] = values
        return cls(pair, ms, devices, sensors, columns)

    def minute_span(self) -> tuple[np.ndarray, np.ndarray]:
        """Per pair: first minute start and end of the last minute of the batch."""
        edges = np.flatnonzero(np.diff(self.pair)) + 1
        starts = np.concatenate([[0], edges])
        ends = np.concatenate([edges, [len(self.pair)]]) - 1
        return self.minute[starts], self.minute[ends] + _MINUTE_MS

    def single_minute(self) -> np.ndarray:
        """Rows alone in their (pair, minute) within the batch."""
        new = np.ones(len(self.pair) + 1, dtype=bool)
        new[1:-1] = (self.pair[1:] != self.pair[:-1]) | (self.minute[1:] != self.minute[:-1])
        return new[:-1] & new[1:]

    def minutes_with_stored_rows(self, spans: dict[int, tuple[int, int]]) -> np.ndarray:
        """Rows whose minute lies in the span of rows stored before the batch (per pair)."""
        dirty = np.zeros(len(self.pair), dtype=bool)
        if not spans:
            return dirty
        lo = np.full(len(self.devices), np.iinfo(np.int64).max, dtype=np.int64)
        hi = np.full(len(self.devices), np.iinfo(np.int64).min, dtype=np.int64)
        for pair, (first, last) in spans.items():
            lo[pair], hi[pair] = first // _MINUTE_MS * _MINUTE_MS, last
        return (self.minute >= lo[self.pair]) & (self.minute <= hi[self.pair])

    def keys(self, mask: np.ndarray | None, width: int) -> tuple[list[int], list[int]]:
        """Distinct (pair, bucket start) of the rows in ``mask``, in key order."""
        pair = self.pair if mask is None else self.pair[mask]
        start = (self.ms if mask is None else self.ms[mask]) // width * width
        new = np.ones(len(pair), dtype=bool)
        new[1:] = (pair[1:] != pair[:-1]) | (start[1:] != start[:-1])
        return pair[new].tolist(), start[new].tolist()


def _stored_spans(store: SQLiteDatabase, conn: sqlite3.Connection) -> dict[int, tuple[int, int]]:
    """Per pair, first and last ``ts`` already stored (and alive) in its batch range."""
    alive, params = store._alive_clause(store._spec("readings"))
    alive = f" AND r.{alive}" if alive else ""
    where = (
        'r."device_id" = p.device_id AND r."sensor_id" = p.sensor_id '
        f'AND r."ts" >= p.lo AND r."ts" < p.hi{alive}'
    )
    sql = (
        f'SELECT pair, (SELECT MIN(r."ts") FROM readings AS r WHERE {where}), '
        f'(SELECT MAX(r."ts") FROM readings AS r WHERE {where}) FROM {_PAIRS} AS p'
    )
    found = conn.execute(sql, params * 2).fetchall()
    return {pair: (lo, hi) for pair, lo, hi in found if lo is not None}


def _floor(expr: str, width: int, *, signed: bool = True) -> str:
    """SQL for ``expr`` floored to a multiple of ``width``.

    SQLite's ``%`` truncates toward zero, so times before 1970 (``signed``) need the longer
    form; a batch without them gets the short one, evaluated a few million times less.
    """
    if not signed:
        return f"({expr} - {expr} % {width:d})"
    return f"({expr} - ((({expr}) % {width:d}) + {width:d}) % {width:d})"


def _raw_from_stage_sql(
    store: SQLiteDatabase, now: int, quality: str, status: str, signed: bool
) -> str:
    bucket = _floor("s.ts", store._spec("readings").bucket_ms, signed=signed)
    # CROSS JOIN keeps the stage (in key order) as the outer loop: the b-tree appends.
    return (
        'INSERT OR REPLACE INTO readings ("device_id", "sensor_id", "bucket", "ts", "value", '
        '"quality", "status", _written_at) '
        f"SELECT p.device_id, p.sensor_id, {bucket}, s.ts, s.value, {quality}, {status}, "
        f"{now:d} FROM {_STAGE} AS s CROSS JOIN {_PAIRS} AS p WHERE p.pair = s.pair"
    )


def _minutes_from_stage_sql(
    store: SQLiteDatabase, now: int, signed: bool, *, filtered: bool
) -> str:
    """Copy the staged minutes (only those flagged ``copy_minute`` if ``filtered``)."""
    minute = _floor("s.ts", _MINUTE_MS, signed=signed)
    bucket = _floor(minute, store._spec("rollups_minute").bucket_ms, signed=signed)
    only = "s.copy_minute AND " if filtered else ""
    return (
        f"{_rollup_insert('rollups_minute')} "
        f"SELECT p.device_id, p.sensor_id, {bucket}, {minute}, 1, s.value, s.value, s.value, "
        f"{now:d} FROM {_STAGE} AS s CROSS JOIN {_PAIRS} AS p WHERE {only}p.pair = s.pair"
    )


def _rollup_insert(target: str) -> str:
    return (
        f'INSERT OR REPLACE INTO "{target}" ("device_id", "sensor_id", "bucket", '
        '"bucket_start", "count", "sum", "min", "max", _written_at)'
    )


def _recompute(
    store: SQLiteDatabase,
    conn: sqlite3.Connection,
    source: str,
    target: str,
    keys: tuple[list[int], list[int]],
    now: int,
) -> None:
    """Recompute the ``target`` buckets ``keys`` (pair codes, starts) from ``source``."""
    if not keys[0]:
        return
    src, dst = store._spec(source), store._spec(target)
    width = _MINUTE_MS if target == "rollups_minute" else _HOUR_MS
    conn.execute(f"DELETE FROM {_BUCKETS}")
    insert_many(conn, f"INSERT INTO {_BUCKETS} VALUES ", list(keys))
    if source == "readings":
        time_col, aggregates = "ts", 'COUNT(*), SUM(r."value"), MIN(r."value"), MAX(r."value")'
    else:
        time_col = "bucket_start"
        aggregates = 'SUM(r."count"), SUM(r."sum"), MIN(r."min"), MAX(r."max")'
    alive, params = store._alive_clause(src)
    alive = f" AND r.{alive}" if alive else ""
    dst_width = dst.bucket_ms
    # CROSS JOIN fixes the loop order: buckets (in key order) outside, so the GROUP BY
    # follows the loop and SQLite needs no sort; each bucket is one primary-key seek.
    sql = (
        f"{_rollup_insert(target)} "
        f"SELECT p.device_id, p.sensor_id, {_floor('b.start', dst_width)}, b.start, "
        f"{aggregates}, {now:d} FROM {_BUCKETS} AS b CROSS JOIN {_PAIRS} AS p "
        f'CROSS JOIN "{source}" AS r WHERE p.pair = b.pair AND r."device_id" = p.device_id '
        f'AND r."sensor_id" = p.sensor_id AND r."{time_col}" >= b.start '
        f'AND r."{time_col}" < b.start + {width:d}{alive} GROUP BY b.pair, b.start'
    )
    conn.execute(sql, params)
