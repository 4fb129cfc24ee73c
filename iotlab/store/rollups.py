"""Per-minute and per-hour roll-ups (count, sum, min, max) that stay equal to the raw rows.

Correctness rule: a roll-up row always equals what pandas computes from the raw readings
that are stored. Merging a batch's partial aggregates into stored ones is wrong under
re-ingest (rows counted twice) and overlapping batches, so after a batch is written its
roll-ups are *recomputed*, hierarchically:

- a touched minute is recomputed from the stored raw rows of that minute;
- a touched hour is recomputed from the minute roll-ups of that hour (60 rows per
  sensor-hour instead of every raw row).

Re-ingesting the same rows then gives the same roll-ups, and a late row for an old
hour recomputes just that minute and that hour.

How the raw rows are aggregated depends on the backend:

- SQLite aggregates inside the database (``INSERT ... SELECT ... GROUP BY``), so no row
  crosses into Python (:meth:`~iotlab.store.sqlite.SQLiteStore.refresh_rollups_of`; its
  ingest writes raw rows and roll-ups in one transaction, see
  :mod:`iotlab.store._sqlite_ingest`).
- Other backends (Cassandra) read, per touched sensor, the stored hour roll-ups of the
  touched hours (one row per sensor-hour). A touched hour without one had no raw rows
  before this batch (every write is followed by its refresh), so its minutes and the
  hour are the batch's own aggregates: a bulk ingest of new data reads nothing else.
  An hour that already had rows (re-ingest, overlap, late rows, a chunk edge) is
  recomputed from its stored raw rows.

Minute roll-ups of a single reading are the reading itself. A store whose
``capabilities.single_reading_minutes`` is false (Cassandra) keeps
``rollups_minute`` rows only for minutes with more than one reading, so one-a-minute data
is not written twice; :func:`read_minute_rollups` merges the raw readings of the other
minutes back in, and every reader of minute roll-ups goes through it.

A writer that refreshes the same hours again and again (the ingestion service, about
every second) keeps the minute and hour roll-ups of its last refresh in a
:class:`RollupMemory` and, per sensor-hour, trusts them while the stored hour roll-up is
still exactly the one it wrote: then only the minutes the batch touched that already
had rows are re-read from the raw table. Any other writer that changed a minute of that
hour also rewrote the hour, and then the hour is recomputed from its raw rows.

Writers that share sensors (several ingestion workers fed by one MQTT shared
subscription, where any worker may get any sensor's next reading) break the rule that
every write is followed by its own refresh before the next writer's: two refreshes of
one sensor-hour can interleave, and the one that read first may write last. With
``concurrent=True`` a refresh takes nothing from the batch or a memory: it recomputes
the touched minutes from the stored raw rows and the touched hours from the stored
minutes, writes them, then reads the same again and writes again until what it reads
equals what it wrote. The last write of a roll-up is then followed by a read that saw
every raw row written before it, and every later raw row's writer refreshes after it:
the writers converge on the roll-ups of the stored rows (write timestamps being the
writers' clocks, as everywhere in Cassandra). Workers that own their sensors (Kafka
partitions keyed by sensor) need none of this.

Examples
--------
>>> import pandas as pd
>>> raw = pd.DataFrame({"device_id": "d1", "sensor_id": "t",
...     "ts": pd.to_datetime(["2026-01-01 00:00:10", "2026-01-01 00:00:50",
...                           "2026-01-01 00:01:00"], utc=True), "value": [1.0, 3.0, 5.0]})
>>> compute_rollups(raw, "hour")[["bucket_start", "count", "sum", "min", "max"]]
               bucket_start  count  sum  min  max
0 2026-01-01 00:00:00+00:00      3  9.0  1.0  5.0
>>> compute_rollups(raw, "minute")["count"].tolist()
[2, 1]
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

import numpy as np
import pandas as pd

from iotlab._keys import sensor_pairs

if TYPE_CHECKING:
    from iotlab.store.base import Store
    from iotlab.store.sqlite import SQLiteStore

__all__ = [
    "INTERVALS",
    "RollupMemory",
    "compute_rollups",
    "read_minute_rollups",
    "refresh_rollups",
]

logger = logging.getLogger(__name__)

#: Rounds of read-write-check a concurrent refresh makes before it settles for what it
#: wrote (each extra round means another writer changed the same roll-ups meanwhile).
CONCURRENT_ROUNDS = 8

#: roll-up interval -> (table, pandas frequency)
INTERVALS = {"minute": ("rollups_minute", "min"), "hour": ("rollups_hour", "h")}
_WIDTH_MS = {"minute": 60_000, "hour": 3_600_000}
_MINUTE_MS = _WIDTH_MS["minute"]
_HOUR_MS = _WIDTH_MS["hour"]
_COLUMNS = ["device_id", "sensor_id", "bucket_start", "count", "sum", "min", "max"]
_DTYPES = {
    "device_id": "str",
    "sensor_id": "str",
    "bucket_start": "datetime64[ms, UTC]",
    "count": "int64",
    "sum": "float64",
    "min": "float64",
    "max": "float64",
}


@dataclass
class _Aggregates:
    """Roll-up rows as arrays: pair code (index into the pair names), bucket start (ms)."""

    pair: np.ndarray
    start: np.ndarray
    count: np.ndarray
    sum: np.ndarray
    min: np.ndarray
    max: np.ndarray

    def take(self, mask: np.ndarray) -> _Aggregates:
        return _Aggregates(*(getattr(self, f)[mask] for f in _FIELDS))

    def keys(self) -> np.ndarray:
        """One int64 per row: pair and bucket (in minutes) packed together."""
        return _pack(self.pair, self.start // _MINUTE_MS)

    def hour_keys(self) -> np.ndarray:
        """One int64 per row: pair and the hour the row falls in, packed together."""
        return _pack(self.pair, self.start // _HOUR_MS)

    @staticmethod
    def concat(parts: list[_Aggregates]) -> _Aggregates:
        return _Aggregates(*(np.concatenate([getattr(p, f) for p in parts]) for f in _FIELDS))

    @staticmethod
    def empty() -> _Aggregates:
        no_ints, no_floats = np.array([], dtype=np.int64), np.array([], dtype=np.float64)
        return _Aggregates(no_ints, no_ints, no_ints, no_floats, no_floats, no_floats)

    def frame(self, devices: np.ndarray, sensors: np.ndarray) -> pd.DataFrame:
        """The rows as a roll-up table frame (without ``bucket``)."""
        return pd.DataFrame(
            {
                "device_id": pd.array(devices[self.pair], dtype="str"),
                "sensor_id": pd.array(sensors[self.pair], dtype="str"),
                "bucket_start": pd.DatetimeIndex(self.start.astype("datetime64[ms]")).tz_localize(
                    "UTC"
                ),
                "count": self.count.astype(np.int64),
                "sum": self.sum.astype(np.float64),
                "min": self.min.astype(np.float64),
                "max": self.max.astype(np.float64),
            }
        )


_FIELDS = ("pair", "start", "count", "sum", "min", "max")
# Minute and hour numbers before 1970 are negative: biased, they pack into 32 bits.
_BIAS = 1 << 31


def _pack(pair: np.ndarray, number: np.ndarray) -> np.ndarray:
    return pair.astype(np.int64) << 32 | (number + _BIAS)


def _unpack(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return keys >> 32, (keys & 0xFFFFFFFF) - _BIAS


def _aggregate(rows: _Aggregates, width_ms: int) -> _Aggregates:
    """Merge rows into buckets of ``width_ms`` per pair, sorted by (pair, bucket start).

    The sort is stable, so values are summed in their input order: the same rows in the
    same order always give bit-identical sums (re-ingest leaves roll-ups unchanged).
    """
    if len(rows.pair) == 0:
        return rows
    bucket = rows.start // width_ms * width_ms
    order = np.lexsort((bucket, rows.pair))
    pair, bucket = rows.pair[order], bucket[order]
    edge = np.ones(len(pair), dtype=bool)
    edge[1:] = (pair[1:] != pair[:-1]) | (bucket[1:] != bucket[:-1])
    first = np.flatnonzero(edge)
    return _Aggregates(
        pair[first],
        bucket[first],
        np.add.reduceat(rows.count[order], first),
        np.add.reduceat(rows.sum[order], first),
        np.minimum.reduceat(rows.min[order], first),
        np.maximum.reduceat(rows.max[order], first),
    )


def _raw_rows(pair: np.ndarray, ms: np.ndarray, value: np.ndarray) -> _Aggregates:
    return _Aggregates(pair, ms, np.ones(len(pair), dtype=np.int64), value, value, value)


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
    width = _WIDTH_MS[interval]
    if raw.empty:
        return pd.DataFrame({c: pd.Series([], dtype=_DTYPES[c]) for c in _COLUMNS})
    pair, devices, sensors = sensor_pairs(raw["device_id"], raw["sensor_id"])
    rows = _raw_rows(pair, _epoch_ms(raw["ts"]), raw["value"].to_numpy(dtype="float64"))
    return _aggregate(rows, width).frame(devices, sensors)


def refresh_rollups(
    store: Store,
    written: pd.DataFrame,
    *,
    native: bool | None = None,
    memory: RollupMemory | None = None,
    concurrent: bool = False,
) -> int:
    """Recompute the minute and hour roll-ups that ``written`` touched.

    Parameters
    ----------
    store
        The store the readings were written to.
    written
        The readings just written (``device_id, sensor_id, ts, value``).
    native
        Aggregate inside the store where the backend can (SQLite); ``None`` (default)
        asks ``store.capabilities.rollups_in_store``, ``False`` forces the read-based
        path (tests compare both).
    memory
        What this writer's previous refreshes stored, to skip re-reading it (read-based
        path only; see :class:`RollupMemory`). Pass the same memory to every refresh of
        one writer, one refresh at a time.
    concurrent
        Other writers may store and refresh the same sensors at the same time: read
        everything back and repeat until stable (read-based path; ``memory`` unused).
        A backend that refreshes inside the store (``capabilities.rollups_in_store``,
        SQLite) needs none of it: its refresh is one transaction, and writers take turns.

    Returns
    -------
    int
        Number of hour roll-up rows upserted.
    """
    if written.empty:
        return 0
    if native is None:
        native = store.capabilities.rollups_in_store
    if native:  # every touched minute from raw rows, then every touched hour from minutes
        return cast("SQLiteStore", store).refresh_rollups_of(written)
    pair, devices, sensors = sensor_pairs(written["device_id"], written["sensor_id"])
    ms = _epoch_ms(written["ts"])
    batch = _aggregate(_raw_rows(pair, ms, written["value"].to_numpy("float64")), _MINUTE_MS)
    if concurrent:
        return _refresh_concurrent(store, batch, devices, sensors)
    return _refresh_from_reads(store, batch, devices, sensors, memory)


def _refresh_concurrent(
    store: Store, batch: _Aggregates, devices: np.ndarray, sensors: np.ndarray
) -> int:
    """Recompute from what is stored, write, and repeat until a read matches the write
    (see the module docstring)."""
    touched_hours = np.unique(batch.hour_keys())
    pair, hour = _unpack(touched_hours)
    lo, hi = _pair_span(pair, hour * _HOUR_MS, len(devices))
    written: tuple[_Aggregates, _Aggregates] | None = None
    for _ in range(CONCURRENT_ROUNDS):
        # Every raw row of the touched hours: their minutes and the hours themselves.
        raw = _read_aggregates(store, "readings", devices, sensors, lo, hi + _HOUR_MS)
        every = _aggregate(raw, _MINUTE_MS)
        every = every.take(np.isin(every.hour_keys(), touched_hours))
        minutes = every.take(np.isin(every.keys(), batch.keys()))
        hours = _aggregate(every, _HOUR_MS)
        if written is not None and _same(written[0], minutes) and _same(written[1], hours):
            return len(hours.pair)
        kept = minutes
        if not store.capabilities.single_reading_minutes:
            kept = minutes.take(minutes.count > 1)
        store.write_tables(
            {
                "rollups_minute": kept.frame(devices, sensors),
                "rollups_hour": hours.frame(devices, sensors),
            }
        )
        written = (minutes, hours)
    logger.warning(
        "roll-ups of %d sensor-hours still changing after %d rounds: another writer's "
        "refresh, which runs after its own write, settles them",
        len(touched_hours),
        CONCURRENT_ROUNDS,
    )
    return len(touched_hours)


def _same(a: _Aggregates, b: _Aggregates) -> bool:
    return len(a.pair) == len(b.pair) and bool(_same_rows(a, b).all())


def read_minute_rollups(
    store: Store,
    key: Mapping[str, object],
    *,
    start: pd.Timestamp | None = None,
    end: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """Minute roll-ups of ``key`` (``device_id``, ``sensor_id``) with ``bucket_start`` in
    ``[start, end)``, every minute that has readings included.

    On a store that keeps no row for a minute of a single reading, those minutes come
    from the raw readings (a reading is its own count, sum, min and max). Columns and
    order are those of ``store.read_rows("rollups_minute", ...)``.
    """
    rows = store.read_rows("rollups_minute", key, start=start, end=end)
    if store.capabilities.single_reading_minutes:
        return rows
    # A minute starting in [start, end) holds readings up to the end's minute.
    lo = None if start is None else start.ceil("min")
    hi = None if end is None else end.ceil("min")
    if lo is not None and hi is not None and hi <= lo:
        return rows
    raw = store.read_rows(
        "readings", key, start=lo, end=hi, columns=["device_id", "sensor_id", "ts", "value"]
    )
    singles = compute_rollups(raw, "minute")
    singles = singles[singles["count"] == 1]
    if len(rows) and len(singles):  # a row stored earlier (or by another writer) wins
        stored = pd.MultiIndex.from_frame(rows[["device_id", "sensor_id", "bucket_start"]])
        mine = pd.MultiIndex.from_frame(singles[["device_id", "sensor_id", "bucket_start"]])
        singles = singles[~mine.isin(stored)]
    if singles.empty:
        return rows
    singles = singles.reindex(columns=rows.columns)
    both = pd.concat([rows, singles], ignore_index=True) if len(rows) else singles
    both = both.astype({c: rows[c].dtype for c in rows.columns if c in _DTYPES})
    order = ["device_id", "sensor_id", "bucket_start"]
    return both.sort_values(order, kind="stable", ignore_index=True)


def _refresh_from_reads(
    store: Store,
    batch: _Aggregates,
    devices: np.ndarray,
    sensors: np.ndarray,
    memory: RollupMemory | None = None,
) -> int:
    """Backend-neutral refresh with the store's reads (see the module docstring)."""
    n_pairs = len(devices)
    touched = np.unique(batch.hour_keys())
    pair, hour = _unpack(touched)
    first, last = _pair_span(pair, hour * _HOUR_MS, n_pairs)
    stored = _read_aggregates(store, "rollups_hour", devices, sensors, first, last + 1)
    stored = stored.take(np.isin(stored.hour_keys(), touched))
    # Remembered minutes are trusted where the stored hour is still the one remembered.
    known = _Aggregates.empty()
    if memory is not None:  # forgotten until this refresh succeeds: a failure leaves nothing
        known = memory.recall(stored, devices, sensors)
    trusted = np.unique(known.hour_keys())
    fresh = touched[~np.isin(touched, stored.hour_keys())]
    untrusted = touched[np.isin(touched, stored.hour_keys()) & ~np.isin(touched, trusted)]
    # Fresh hours had no rows before: the batch is all of them.
    changed = [batch.take(np.isin(batch.hour_keys(), fresh))]
    # Trusted hours: minutes that already had rows are recomputed from the raw table.
    mine = batch.take(np.isin(batch.hour_keys(), trusted))
    dirty = np.isin(mine.keys(), known.keys())
    if dirty.any():
        dirty_rows = mine.take(dirty)
        lo, hi = _pair_span(dirty_rows.pair, dirty_rows.start, n_pairs)
        raw = _read_aggregates(store, "readings", devices, sensors, lo, hi + _MINUTE_MS)
        recomputed = _aggregate(raw, _MINUTE_MS)
        recomputed = recomputed.take(np.isin(recomputed.hour_keys(), trusted))
        changed.append(recomputed)
        mine = mine.take(~np.isin(mine.keys(), recomputed.keys()))
    changed.append(mine)
    # Hours another writer changed (or this one never saw): all of their raw rows.
    if len(untrusted):
        pair, hour = _unpack(untrusted)
        lo, hi = _pair_span(pair, hour * _HOUR_MS, n_pairs)
        raw = _read_aggregates(store, "readings", devices, sensors, lo, hi + _HOUR_MS)
        rebuilt = _aggregate(raw, _MINUTE_MS)
        changed.append(rebuilt.take(np.isin(rebuilt.hour_keys(), untrusted)))
    minutes = _Aggregates.concat(changed)
    known = known.take(~np.isin(known.keys(), minutes.keys()))
    every = _Aggregates.concat([known, minutes])
    hours = _aggregate(every, _HOUR_MS)
    if not store.capabilities.single_reading_minutes:
        minutes = minutes.take(minutes.count > 1)
    # Both levels are computed by now, so they go out together: one wait on the store.
    store.write_tables(
        {
            "rollups_minute": minutes.frame(devices, sensors),
            "rollups_hour": hours.frame(devices, sensors),
        }
    )
    if memory is not None:
        memory.keep(every, hours, devices, sensors)
    return len(hours.pair)


class RollupMemory:
    """The minute and hour roll-ups one writer's last refresh stored, per sensor-hour.

    Without it, each refresh of an hour that already had rows re-reads the hour's raw
    rows. With it, a refresh reads one hour roll-up per sensor-hour and uses its
    remembered minutes where that row is still exactly the one it wrote. Another writer
    that changed any minute of an hour rewrote that hour's roll-up too, so the check
    sends such hours (and hours it never saw) back to the raw rows.
    It holds the sensor-hours of the last refresh only. Not thread-safe: one refresh at
    a time, as :meth:`iotlab.ingest.IngestionService` runs them.

    Examples
    --------
    >>> import pandas as pd
    >>> from iotlab.store import open_store
    >>> from iotlab.store.queries import read_rollups
    >>> store = open_store("sqlite://")
    >>> memory = RollupMemory()
    >>> for minute in range(3):
    ...     rows = pd.DataFrame({"device_id": "d", "sensor_id": "t", "value": [1.0],
    ...         "ts": [pd.Timestamp("2026-01-01", tz="UTC") + pd.Timedelta(minutes=minute)],
    ...         "quality": 0, "status": "ok"})
    ...     _ = store.write_rows("readings", rows)
    ...     _ = refresh_rollups(store, rows, native=False, memory=memory)
    >>> read_rollups(store, "d", sensors="t", interval="1h")["count"].tolist()
    [3]
    >>> store.close()
    """

    def __init__(self) -> None:
        self._devices = np.array([], dtype=object)
        self._sensors = np.array([], dtype=object)
        self._minutes = self._hours = _Aggregates.empty()

    def __len__(self) -> int:
        """Number of sensor-hours remembered."""
        return len(self._hours.pair)

    def keep(
        self, minutes: _Aggregates, hours: _Aggregates, devices: np.ndarray, sensors: np.ndarray
    ) -> None:
        """Remember what a refresh stored: the minutes of its hours, and those hours."""
        self._devices, self._sensors = devices, sensors
        self._minutes, self._hours = minutes, hours

    def recall(
        self, stored_hours: _Aggregates, devices: np.ndarray, sensors: np.ndarray
    ) -> _Aggregates:
        """The remembered minutes (pair codes of ``devices, sensors``) of the hours whose
        stored roll-up (``stored_hours``, as read) is still exactly the one remembered.
        Forgets everything (a refresh keeps what it stores once it has succeeded)."""
        minutes, hours = self._recoded(devices, sensors)
        self.keep(_Aggregates.empty(), _Aggregates.empty(), devices[:0], sensors[:0])
        trusted = hours.take(_same_rows(hours, stored_hours)).hour_keys()
        return minutes.take(np.isin(minutes.hour_keys(), trusted))

    def _recoded(self, devices: np.ndarray, sensors: np.ndarray) -> tuple[_Aggregates, ...]:
        """The remembered rows with their pairs coded as ``devices, sensors`` (pairs not
        among them dropped)."""
        names = pd.MultiIndex.from_arrays([devices, sensors])
        code = names.get_indexer(pd.MultiIndex.from_arrays([self._devices, self._sensors]))
        recoded = []
        for rows in (self._minutes, self._hours):
            new_pair = code[rows.pair]
            kept = rows.take(new_pair >= 0)
            kept.pair = new_pair[new_pair >= 0]
            recoded.append(kept)
        return tuple(recoded)


def _same_rows(rows: _Aggregates, stored: _Aggregates) -> np.ndarray:
    """Which of ``rows`` have a row in ``stored`` with the same key and equal values."""
    if not len(stored.pair):
        return np.zeros(len(rows.pair), dtype=bool)
    stored_keys = stored.keys()
    order = np.argsort(stored_keys, kind="stable")
    at = order[np.minimum(np.searchsorted(stored_keys[order], rows.keys()), len(order) - 1)]
    return (
        (stored_keys[at] == rows.keys())
        & (stored.count[at] == rows.count)
        & (stored.sum[at] == rows.sum)
        & (stored.min[at] == rows.min)
        & (stored.max[at] == rows.max)
    )


def _read_aggregates(
    store: Store,
    table: str,
    devices: np.ndarray,
    sensors: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
) -> _Aggregates:
    """Rows of ``table`` in ``[lo[i], hi[i])`` of every pair ``i`` with ``hi > lo``.

    Pairs sharing a time range (a batch of a fleet usually covers the same minutes for
    every sensor) and devices sharing a sensor set are read with one ``read_rows`` call,
    which reads their partitions concurrently.
    """
    raw = table == "readings"
    time_column = "ts" if raw else "bucket_start"
    columns = ["device_id", "sensor_id", time_column, *(["value"] if raw else _COLUMNS[3:])]
    wanted = np.flatnonzero(hi > lo)
    plans: dict[tuple[int, int, tuple[str, ...]], list[str]] = {}
    by_range = pd.DataFrame(
        {"device": devices[wanted], "sensor": sensors[wanted], "lo": lo[wanted], "hi": hi[wanted]}
    )
    for (device, start, end), group in by_range.groupby(["device", "lo", "hi"], sort=True):
        sensor_set = tuple(group["sensor"].tolist())
        lo_ms, hi_ms = cast("tuple[int, int]", (start, end))  # groupby keys are Hashable
        plans.setdefault((int(lo_ms), int(hi_ms), sensor_set), []).append(str(device))
    frames = [
        store.read_rows(
            table,
            {"device_id": devs, "sensor_id": list(sensor_set)},
            start=pd.Timestamp(start, unit="ms", tz="UTC"),
            end=pd.Timestamp(end, unit="ms", tz="UTC"),
            columns=columns,
        )
        for (start, end, sensor_set), devs in plans.items()
    ]
    frames = [f for f in frames if len(f)]
    if not frames:
        return _Aggregates.empty()
    rows = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    names = pd.MultiIndex.from_arrays([devices, sensors])
    pair = names.get_indexer(
        pd.MultiIndex.from_arrays(
            [rows["device_id"].to_numpy(dtype=object), rows["sensor_id"].to_numpy(dtype=object)]
        )
    ).astype(np.int64)
    ms = _epoch_ms(rows[time_column])
    if raw:
        return _raw_rows(pair, ms, rows["value"].to_numpy(dtype="float64"))
    return _Aggregates(
        pair,
        ms,
        rows["count"].to_numpy(dtype=np.int64),
        *(rows[c].to_numpy(dtype="float64") for c in ("sum", "min", "max")),
    )


def _pair_span(pair: np.ndarray, ms: np.ndarray, n_pairs: int) -> tuple[np.ndarray, np.ndarray]:
    """First and last ``ms`` of each pair (pairs without rows get ``lo > hi``)."""
    first = np.full(n_pairs, np.iinfo(np.int64).max, dtype=np.int64)
    last = np.full(n_pairs, np.iinfo(np.int64).min // 2, dtype=np.int64)
    np.minimum.at(first, pair, ms)
    np.maximum.at(last, pair, ms)
    return first, last


def _epoch_ms(ts: pd.Series) -> np.ndarray:
    return pd.DatetimeIndex(ts.astype("datetime64[ms, UTC]")).asi8
