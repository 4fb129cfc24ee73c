"""The embedded backend: one SQLite file (or memory), no server.

Tables are rendered from :mod:`iotlab.store.schema`: the primary key is the partition
key (minus the derived ``bucket``/``day`` column, which is still stored) followed by
the clustering columns, in a ``WITHOUT ROWID`` table so a partition's rows sit together
on disk in key order, the way Cassandra keeps them. Timestamps are ``INTEGER`` epoch
milliseconds.

TTL rule
--------
Every table has a hidden ``_written_at`` column (epoch ms of the last write of the row).
A row of a table with ``ttl_seconds`` is *expired* once
``_written_at + ttl_seconds * 1000 <= now``: reads skip it and :meth:`purge_expired`
deletes it. Like Cassandra's default TTL, the clock starts at the write, and writing
the row again restarts it.

Concurrency
-----------
One connection per store, guarded by a lock (``check_same_thread=False``), so a store can
be shared by threads. Several processes may open the same file: writes use WAL mode and
a busy timeout (``?timeout=`` seconds in the URL, default 30), and
:meth:`append_events` takes the write lock up front (``BEGIN IMMEDIATE``) so its
version check and insert are one atomic step across processes.

Examples
--------
>>> import pandas as pd
>>> from iotlab.store import open_store
>>> store = open_store("sqlite://")
>>> rows = pd.DataFrame({"device_id": ["d1"], "sensor_id": ["t"],
...     "ts": pd.to_datetime(["2026-01-01 00:00:30"], utc=True),
...     "value": [21.5], "quality": [100], "status": ["ok"]})
>>> store.write_rows("readings", rows)
1
>>> store.read_rows("readings", {"device_id": "d1", "sensor_id": "t"})[["ts", "value"]]
                         ts  value
0 2026-01-01 00:00:30+00:00   21.5
>>> store.close()
"""

from __future__ import annotations

import itertools
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from iotlab._reasons import NAIVE_TIMESTAMP
from iotlab.errors import (
    ConcurrencyError,
    InvalidURLError,
    SchemaMismatchError,
    StoreConnectionError,
    StoreError,
    StoreUnavailableError,
    ValidationError,
)
from iotlab.store._sqlite_ingest import write_readings_with_rollups
from iotlab.store._sqlite_values import insert_many, to_sql_values
from iotlab.store.base import Capabilities, Store, range_bounds, selected_columns
from iotlab.store.schema import TableSpec, bucket_column
from iotlab.store.url import StoreURL, URLParts, check_options, validate_identifier

__all__ = ["SQLiteStore"]

_SQL_TYPES = {"text": "TEXT", "int": "INTEGER", "double": "REAL", "timestamp": "INTEGER"}
_SQL_TYPES["bool"] = "INTEGER"
_WRITTEN_AT = "_written_at"
_CHUNK_ROWS = 100_000


def _quote(name: str) -> str:
    return f'"{name}"'


class SQLiteStore(Store):
    """Store backed by SQLite; see the module docstring for layout, TTL and locking.

    Parameters
    ----------
    url
        A parsed ``sqlite://`` URL (no path: in memory).
    tables
        Table specs to use instead of :data:`iotlab.store.schema.TABLES`.
    clock
        Returns "now" in epoch seconds; only tests replace it (to expire rows).
    """

    scheme = "sqlite"
    # One lock serialises writes; provisioning from threads measured 10-30% slower.
    capabilities = Capabilities(concurrent_writers=False, rollups_in_store=True)
    url_options = {"timeout": "seconds to wait for a locked database"}

    @classmethod
    def parse_url(cls, parts: URLParts) -> StoreURL:
        """``sqlite:///relative.db``, ``sqlite:////absolute.db``; ``sqlite://`` is in memory.

        Examples
        --------
        >>> from iotlab.store.url import split_store_url
        >>> SQLiteStore.parse_url(split_store_url("sqlite:////srv/iot.db")).path
        '/srv/iot.db'
        >>> SQLiteStore.parse_url(split_store_url("sqlite://iot.db"))
        Traceback (most recent call last):
        ...
        iotlab.errors.InvalidURLError: sqlite URL needs three slashes before a path: ...
        """
        check_options(parts, cls.url_options)
        scheme = parts.scheme
        if parts.netloc or parts.username:
            rest = parts.shown().split("://", 1)[1].partition("?")[0]
            raise InvalidURLError(
                f"{scheme} URL needs three slashes before a path: '{scheme}:///{rest}' "
                f"(relative) or '{scheme}:////abs/{rest}' (absolute)"
            )
        if parts.path in ("", ":memory:"):
            return StoreURL(scheme, options=parts.options)
        if Path(parts.path).is_dir():
            raise InvalidURLError(
                f"{scheme} path {parts.path!r} is a directory, not a database file"
            )
        return StoreURL(scheme, path=parts.path, options=parts.options)

    def __init__(
        self,
        url: StoreURL,
        tables: Mapping[str, TableSpec] | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(url, tables)
        for name in self.tables:
            validate_identifier(name, what="table name")
        self._clock = clock
        self._lock = threading.RLock()
        timeout = float(url.options.get("timeout", 30))
        self._timeout = timeout
        try:
            self._conn: sqlite3.Connection | None = self._connect(timeout)
        except sqlite3.Error as exc:
            raise StoreConnectionError(f"cannot open sqlite database {url.path!r}: {exc}") from exc
        try:
            # Bigger pages mean fewer b-tree splits on bulk inserts; only a new file takes it.
            self._conn.execute("PRAGMA page_size=16384")
            if url.path:
                # The first statement that reads the file: a CSV or any other non-database
                # file fails here, and is named as such rather than as sqlite's riddle.
                self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute("PRAGMA temp_store=MEMORY")
            self._conn.execute("PRAGMA cache_size=-65536")  # 64 MiB
        except sqlite3.DatabaseError as exc:
            self._conn.close()
            self._conn = None
            where = os.path.abspath(url.path) if url.path else ":memory:"
            raise StoreConnectionError(
                f"{where} is not an SQLite database ({exc}); point the store URL at a "
                "new or existing iotlab database file"
            ) from exc

    def _connect(self, timeout: float) -> sqlite3.Connection:
        """Open the database the URL names (a subclass may open another kind)."""
        return sqlite3.connect(
            self.url.path or ":memory:",
            timeout=timeout,
            isolation_level=None,  # we issue BEGIN/COMMIT ourselves
            check_same_thread=False,
        )

    # -- lifecycle -------------------------------------------------------------------------
    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError(f"{self!r} is closed")
        return self._conn

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def describe(self) -> dict[str, object]:
        return {
            "backend": self.scheme,
            "server_version": sqlite3.sqlite_version,
            "location": self.url.path or ":memory:",
        }

    @contextmanager
    def _transaction(self, begin: str = "BEGIN") -> Iterator[sqlite3.Connection]:
        """One transaction; a database locked by another writer for longer than the busy
        timeout raises :class:`StoreUnavailableError` saying nothing of it was committed."""
        with self._lock:
            conn = self.conn
            try:
                conn.execute(begin)
                try:
                    yield conn
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
                raise StoreUnavailableError(
                    f"SQLite database {self.url} stayed locked by another writer for over "
                    f"{self._timeout:g} s ({exc}): this transaction was rolled back, nothing "
                    "of it was committed; retry it (writes are upserts)"
                ) from exc

    def create_schema(self) -> None:
        with self._lock:
            for spec in self.tables.values():
                existing = self._existing_columns(spec.name)
                if existing:
                    self._check_shape(spec, existing)
                    self._widen_key(spec)
                else:
                    self.conn.execute(self._create_sql(spec))

    def _existing_columns(self, table: str) -> dict[str, str]:
        info = self.conn.execute(f"PRAGMA table_info({_quote(table)})").fetchall()
        return {row[1]: row[2].upper() for row in info}

    def _existing_key(self, table: str) -> list[str]:
        info = self.conn.execute(f"PRAGMA table_info({_quote(table)})").fetchall()
        return [row[1] for row in sorted(info, key=lambda r: r[5]) if row[5] > 0]

    def _widen_key(self, spec: TableSpec) -> None:
        """Bring a table whose primary key lacks trailing columns up to ``spec``'s key.

        Only a key that *adds* columns at the end is migrated (anomalies gained the
        detector): every old row stays unique under the new key, so the copy keeps all
        of them. It runs in one transaction: the old table is renamed, the new one
        created, the rows copied (a NULL in a new key column becomes ``"unknown"``),
        the counts compared, and the old table dropped; any failure rolls it all back.
        Any other key difference raises ``SchemaMismatchError``.
        """
        have, wanted = self._existing_key(spec.name), self._key_columns(spec)
        if have == wanted:
            return
        if wanted[: len(have)] != have:
            raise SchemaMismatchError(
                f"table {spec.name} in {self.url}: primary key is ({', '.join(have)}), "
                f"iotlab needs ({', '.join(wanted)}); nothing was changed: migrate or use "
                "another database file"
            )
        added = wanted[len(have) :]
        old = _quote(f"{spec.name}__before_key_change")
        columns = [*spec.columns, _WRITTEN_AT]
        select = ", ".join(
            f"COALESCE({_quote(c)}, 'unknown')" if c in added else _quote(c) for c in columns
        )
        with self._transaction("BEGIN IMMEDIATE") as conn:
            conn.execute(f"ALTER TABLE {_quote(spec.name)} RENAME TO {old}")
            conn.execute(self._create_sql(spec))
            names = ", ".join(_quote(c) for c in columns)
            conn.execute(f"INSERT INTO {_quote(spec.name)} ({names}) SELECT {select} FROM {old}")
            (before,) = conn.execute(f"SELECT COUNT(*) FROM {old}").fetchone()
            (after,) = conn.execute(f"SELECT COUNT(*) FROM {_quote(spec.name)}").fetchone()
            if before != after:  # cannot happen when the key only grows; checked anyway
                raise SchemaMismatchError(
                    f"table {spec.name}: {before} rows before the key change, {after} after; "
                    "rolled back, nothing was changed"
                )
            conn.execute(f"DROP TABLE {old}")

    def _create_sql(self, spec: TableSpec) -> str:
        columns = [f"{_quote(c)} {_SQL_TYPES[t]}" for c, t in spec.columns.items()]
        columns.append(f"{_WRITTEN_AT} INTEGER NOT NULL")
        key = ", ".join(_quote(c) for c in self._key_columns(spec))
        return (
            f"CREATE TABLE IF NOT EXISTS {_quote(spec.name)} "
            f"({', '.join(columns)}, PRIMARY KEY ({key})) WITHOUT ROWID"
        )

    def _check_shape(self, spec: TableSpec, existing: dict[str, str]) -> None:
        wanted = {c: _SQL_TYPES[t] for c, t in spec.columns.items()} | {_WRITTEN_AT: "INTEGER"}
        missing = [c for c in wanted if c not in existing]
        if missing:
            raise SchemaMismatchError(
                f"table {spec.name} in {self.url} lacks column(s) {', '.join(missing)}; "
                "iotlab never drops data: migrate or use another database file"
            )
        wrong = [f"{c} is {existing[c]}, need {t}" for c, t in wanted.items() if existing[c] != t]
        if wrong:
            raise SchemaMismatchError(f"table {spec.name} in {self.url}: {'; '.join(wrong)}")

    @staticmethod
    def _key_columns(spec: TableSpec) -> list[str]:
        bucket = bucket_column(spec)
        return [c for c in spec.primary_key if c != bucket]

    def _spec(self, table: str) -> TableSpec:
        try:
            return self.tables[table]
        except KeyError:
            raise ValidationError(
                f"unknown table {table!r}; known: {', '.join(self.tables)}", field="table"
            ) from None

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    def _alive_clause(self, spec: TableSpec) -> tuple[str, list[object]]:
        if spec.ttl_seconds is None:
            return "", []
        return f"{_WRITTEN_AT} > ?", [self._now_ms() - spec.ttl_seconds * 1000]

    # -- rows -------------------------------------------------------------------------------
    def write_rows(self, table: str, rows: pd.DataFrame, *, progress: bool = False) -> int:
        spec = self._spec(table)
        bucket = bucket_column(spec)
        stored = [c for c in spec.columns if c != bucket]
        missing = [c for c in stored if c not in rows.columns]
        if missing:
            raise ValidationError(
                f"missing column(s) {', '.join(missing)} for table {table}", field=missing[0]
            )
        if rows.empty:
            return 0
        arrays = {c: to_sql_values(rows[c], spec.columns[c], c) for c in stored}
        for column in self._key_columns(spec):
            if arrays[column].dtype == object:
                empty = np.flatnonzero(pd.isna(arrays[column]))
                if len(empty):
                    raise ValidationError("key column is missing", field=column, rows=empty)
        if bucket is not None:
            width = spec.bucket_ms
            arrays[bucket] = _bucket_of(arrays[spec.bucket_source], width)
        # Insert in primary-key order: the b-tree then appends instead of splitting pages.
        # lexsort is stable, so among duplicate keys the later row still wins.
        order = np.lexsort([_sort_key(arrays[c]) for c in reversed(self._key_columns(spec))])
        columns = [*stored, *([bucket] if bucket else [])]
        total = len(rows)
        from tqdm.auto import tqdm

        with tqdm(
            total=total, unit="rows", desc=f"write {table}", disable=not progress, leave=False
        ) as bar:
            for first in range(0, total, _CHUNK_ROWS):
                part = order[first : first + _CHUNK_ROWS]
                values = [arrays[c][part].tolist() for c in columns]
                names = ", ".join(_quote(c) for c in [*columns, _WRITTEN_AT])
                try:
                    with self._transaction() as conn:
                        # the write time (for the TTL rule), the same for every row of a chunk
                        values.append([self._now_ms()] * len(part))
                        insert_many(
                            conn,
                            f"INSERT OR REPLACE INTO {_quote(table)} ({names}) VALUES ",
                            values,
                        )
                except StoreUnavailableError as exc:
                    if first == 0:
                        raise
                    raise StoreUnavailableError(
                        f"{exc}; {first} of the {total} rows for {table} were committed "
                        "before it, in primary-key order"
                    ) from exc.__cause__
                bar.update(len(part))
        return total

    def write_readings_with_rollups(self, rows: pd.DataFrame) -> int:
        """Write readings and refresh their minute and hour roll-ups in one transaction.

        What ``ingest_readings`` uses on SQLite: the same result as :meth:`write_rows`
        followed by :func:`iotlab.store.rollups.refresh_rollups`, faster, and atomic (an
        interruption leaves neither raw rows nor roll-ups of the chunk). ``rows`` has the
        ``readings`` columns; see :mod:`iotlab.store._sqlite_ingest` for how it works.
        Returns the number of rows written.

        Examples
        --------
        >>> import pandas as pd
        >>> from iotlab.store import open_store
        >>> store = open_store("sqlite://")
        >>> rows = pd.DataFrame({"device_id": "d", "sensor_id": "t",
        ...     "ts": pd.to_datetime(["2026-01-01 00:00:10", "2026-01-01 00:00:20",
        ...                           "2026-01-01 00:01:00"], utc=True),
        ...     "value": [1.0, 2.0, 4.0], "quality": 100, "status": "ok"})
        >>> store.write_readings_with_rollups(rows)
        3
        >>> store.read_rows("rollups_hour", {"device_id": "d", "sensor_id": "t"})[
        ...     ["count", "sum", "min", "max"]]
           count  sum  min  max
        0      3  7.0  1.0  4.0
        >>> store.close()
        """
        return write_readings_with_rollups(self, rows)[0]

    def refresh_rollups_of(self, written: pd.DataFrame) -> int:
        """Recompute the minute and hour roll-ups of stored readings ``written`` touched.

        Columns ``device_id, sensor_id, ts`` are enough. Returns the number of hour
        roll-ups recomputed.
        """
        return write_readings_with_rollups(self, written, write_raw=False)[1]

    def read_rows(
        self,
        table: str,
        key: Mapping[str, object] | None = None,
        *,
        start: pd.Timestamp | int | None = None,
        end: pd.Timestamp | int | None = None,
        columns: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        spec = self._spec(table)
        wanted = selected_columns(spec, columns)
        key = self._normalise_key(spec, key)
        where: list[str] = []
        params: list[object] = []
        first, low, high = range_bounds(spec, start, end)
        for bound, op in ((low, ">="), (high, "<")):
            if bound is not None and first is not None:
                where.append(f"{_quote(first)} {op} ?")
                params.append(bound)
        alive, alive_params = self._alive_clause(spec)
        if alive:
            where.append(alive)
            params.extend(alive_params)
        kinds = {c: spec.columns[c] for c in wanted}
        fixed_columns: list[str] = []
        fixed_values: list[tuple[object, ...]] = []
        counts: list[int] = []
        rows: list[tuple] = []
        for fixed, free in _partitions(spec, key):
            fixed_columns = list(fixed)
            part = self._read_partition(spec, fixed, free, where, params, kinds)
            rows.extend(part)
            fixed_values.append(tuple(fixed.values()))
            counts.append(len(part))
        # Key columns fixed per partition are filled in here, not fetched row by row.
        fetched = {c: k for c, k in kinds.items() if c not in fixed_columns}
        frame = _frame(rows, fetched)
        for i, col in enumerate(fixed_columns):
            if col in kinds:
                values = np.array([v[i] for v in fixed_values], dtype=object)
                frame[col] = _column(np.repeat(values, counts), kinds[col])
        return frame[list(kinds)]

    def _read_partition(
        self,
        spec: TableSpec,
        fixed: dict[str, object],
        free: dict[str, list[object]],
        where: list[str],
        params: list[object],
        kinds: dict[str, str],
    ) -> list[tuple]:
        """Rows of one key combination, without the fixed key columns.

        Fetching fewer columns matters: building Python objects is most of a read's cost.
        """
        clauses = [f"{_quote(c)} = ?" for c in fixed]
        values: list[object] = list(fixed.values())
        for col, options in free.items():
            clauses.append(f"{_quote(col)} IN ({', '.join('?' * len(options))})")
            values.extend(options)
        clauses += where
        fetched = [c for c in kinds if c not in fixed]
        order = ", ".join(
            _quote(c) + (" DESC" if c in spec.descending else "")
            for c in self._key_columns(spec)
            if c not in fixed
        )
        sql = (
            f"SELECT {', '.join(_quote(c) for c in fetched) or 'NULL'} FROM {_quote(spec.name)}"
            + (f" WHERE {' AND '.join(clauses)}" if clauses else "")
            + (f" ORDER BY {order}" if order else "")
        )
        with self._lock:
            return self.conn.execute(sql, [*values, *params]).fetchall()

    def _normalise_key(
        self, spec: TableSpec, key: Mapping[str, Any] | None
    ) -> dict[str, list[object]]:
        """``key`` as column -> sorted distinct bound values; checks it is a partition key."""
        if key is None:
            if spec.bucket_seconds is not None:
                raise ValidationError(
                    f"table {spec.name} is bucketed: give its partition key", field="key"
                )
            return {}
        bucket = bucket_column(spec)
        normal: dict[str, list[Any]] = {}
        for col, value in key.items():
            if col not in spec.partition_key or col == bucket:
                raise ValidationError(
                    f"{col!r} is not a partition-key column of {spec.name}", field="key"
                )
            values = [value] if isinstance(value, str) or not _is_sequence(value) else value
            normal[col] = sorted({_bind(v, spec.columns[col]) for v in values})
        return normal

    def _key_clause(
        self, spec: TableSpec, key: Mapping[str, object] | None
    ) -> tuple[list[str], list[object]]:
        where: list[str] = []
        params: list[object] = []
        for col, values in self._normalise_key(spec, key).items():
            where.append(f"{_quote(col)} IN ({', '.join('?' * len(values))})")
            params.extend(values)
        return where, params

    def advance_times(self, table: str, column: str, rows: pd.DataFrame) -> int:
        spec = self._spec(table)
        key = self._key_columns(spec)
        values = [[_bind(r[c], spec.columns[c]) for c in key] for r in rows.to_dict("records")]
        times = to_sql_values(rows[column], spec.columns[column], column).tolist()
        where = " AND ".join(f"{_quote(c)} = ?" for c in key)
        sql = (
            f"UPDATE {_quote(table)} SET {_quote(column)} = ?, {_WRITTEN_AT} = ? "
            f"WHERE {where} AND ({_quote(column)} IS NULL OR {_quote(column)} < ?)"
        )
        with self._transaction() as conn:
            now = self._now_ms()
            conn.executemany(sql, [[t, now, *k, t] for t, k in zip(times, values)])
        return len(rows)

    def delete_rows(self, table: str, key: Mapping[str, object]) -> int:
        spec = self._spec(table)
        if not key:
            raise ValidationError(f"name the partitions of {table} to delete", field="key")
        where, params = self._key_clause(spec, key)
        sql = f"DELETE FROM {_quote(table)}" + (f" WHERE {' AND '.join(where)}" if where else "")
        with self._transaction() as conn:
            return conn.execute(sql, params).rowcount

    # -- events -----------------------------------------------------------------------------
    def append_events(self, device_id: str, expected_version: int, events: pd.DataFrame) -> None:
        if events.empty:
            return
        versions = events["version"].astype("int64").tolist()
        wanted = list(range(expected_version + 1, expected_version + 1 + len(events)))
        if versions != wanted:
            raise ValidationError(
                f"versions must be {wanted[0]}..{wanted[-1]} after expected version "
                f"{expected_version}, got {versions}",
                field="version",
            )
        if (events["device_id"] != device_id).any():
            raise ValidationError(f"every event must belong to {device_id}", field="device_id")
        spec = self._spec("events")
        columns = list(spec.columns)
        arrays = [to_sql_values(events[c], spec.columns[c], c).tolist() for c in columns]
        names = ", ".join(_quote(c) for c in [*columns, _WRITTEN_AT])
        sql = f"INSERT INTO events ({names}) VALUES ({', '.join('?' * (len(columns) + 1))})"
        now = [self._now_ms()] * len(events)
        try:
            # IMMEDIATE takes the write lock now, so no other process can slip in between.
            with self._transaction("BEGIN IMMEDIATE") as conn:
                conn.executemany(sql, zip(*arrays, now))
        except sqlite3.IntegrityError:
            raise ConcurrencyError(device_id, expected_version) from None

    # -- housekeeping -----------------------------------------------------------------------
    def purge_expired(self) -> int:
        deleted = 0
        with self._transaction() as conn:
            for spec in self.tables.values():
                if spec.ttl_seconds is not None:
                    cutoff = self._now_ms() - spec.ttl_seconds * 1000
                    sql = f"DELETE FROM {_quote(spec.name)} WHERE {_WRITTEN_AT} <= ?"
                    deleted += conn.execute(sql, [cutoff]).rowcount
        return deleted

    def stats(self) -> pd.DataFrame:
        records = []
        with self._lock:
            for spec in self.tables.values():
                alive, params = self._alive_clause(spec)
                where = f" WHERE {alive}" if alive else ""
                time_col = _time_column(spec)
                span = (
                    f"MIN({_quote(time_col)}), MAX({_quote(time_col)})"
                    if time_col
                    else "NULL, NULL"
                )
                table = _quote(spec.name)
                rows, first, last = self.conn.execute(
                    f"SELECT COUNT(*), {span} FROM {table}{where}", params
                ).fetchone()
                partition = ", ".join(_quote(c) for c in spec.partition_key)
                (partitions,) = self.conn.execute(
                    f"SELECT COUNT(*) FROM (SELECT DISTINCT {partition} FROM {table}{where})",
                    params,
                ).fetchone()
                records.append((spec.name, rows, partitions, first, last))
        frame = pd.DataFrame(records, columns=["table", "rows", "partitions", "first", "last"])
        for col in ("first", "last"):
            frame[col] = pd.to_datetime(frame[col].astype("float64"), unit="ms", utc=True)
            frame[col] = frame[col].astype("datetime64[ms, UTC]")
        return frame.astype({"rows": "int64", "partitions": "int64"})


# -- conversions between pandas columns and SQLite values -----------------------------------
def _time_column(spec: TableSpec) -> str | None:
    """The column whose span ``stats`` reports: the bucket source, else the first timestamp."""
    if spec.bucket_seconds is not None:
        return spec.bucket_source
    candidates = [*spec.clustering, *spec.columns]
    return next((c for c in candidates if spec.columns[c] == "timestamp"), None)


def _bucket_of(source: np.ndarray, width: int) -> np.ndarray:
    if source.dtype != object:
        return source - source % width
    return np.array([None if v is None else v - v % width for v in source], dtype=object)


def _partitions(
    spec: TableSpec, key: dict[str, list[object]]
) -> Iterator[tuple[dict[str, object], dict[str, list[object]]]]:
    """Split a key into (fixed column values, columns left as IN lists) per query.

    The leading partition-key columns given in ``key`` are enumerated one combination at
    a time, in sorted order, so concatenating the results keeps primary-key order.
    """
    bucket = bucket_column(spec)
    prefix: list[str] = []
    for col in spec.partition_key:
        if col == bucket or col not in key:
            break
        prefix.append(col)
    free = {c: v for c, v in key.items() if c not in prefix}
    if any(not v for v in key.values()):
        return
    for combo in itertools.product(*(key[c] for c in prefix)):
        yield dict(zip(prefix, combo)), free


def _is_sequence(value: object) -> bool:
    return isinstance(value, (list, tuple, set, frozenset, np.ndarray, pd.Index, pd.Series))


def _epoch_ms(value: Any) -> int:
    ts = pd.Timestamp(value)
    if ts.tzinfo is None:
        raise ValidationError(NAIVE_TIMESTAMP, field="time")
    return int(ts.value // 1_000_000)


def _bind(value: Any, kind: str) -> int | float | str:
    if kind == "timestamp":
        return _epoch_ms(value)
    if kind in ("int", "bool"):
        return int(value)
    if kind == "double":
        return float(value)
    return str(value)


def _sort_key(values: np.ndarray) -> np.ndarray:
    if values.dtype != object:
        return values
    codes, _ = pd.factorize(values, sort=True)  # hashing: far faster than comparing str
    return codes


def _frame(rows: list[tuple], kinds: dict[str, str]) -> pd.DataFrame:
    """Build a DataFrame from fetched tuples column by column, without per-row objects."""
    n = len(rows)
    table = np.array(rows, dtype=object).reshape(n, len(kinds))  # faster than zip(*rows)
    data = {name: _column(table[:, i], kind) for i, (name, kind) in enumerate(kinds.items())}
    return pd.DataFrame(data, columns=list(kinds))


def _column(values: np.ndarray, kind: str) -> pd.Series | np.ndarray:
    if kind == "text":
        return pd.Series(values, dtype="str")
    try:
        numbers = values.astype("float64" if kind == "double" else "int64")
    except TypeError:  # NULLs present
        numbers = np.array([np.nan if v is None else v for v in values], dtype="float64")
        if kind == "double":
            return numbers
        if kind == "timestamp":
            return pd.Series(pd.to_datetime(numbers, unit="ms", utc=True)).astype(
                "datetime64[ms, UTC]"
            )
        return pd.Series(numbers).astype("Int64" if kind == "int" else "boolean")
    if kind == "timestamp":
        return pd.Series(numbers.view("datetime64[ms]")).dt.tz_localize("UTC")
    return numbers.astype(bool) if kind == "bool" else numbers
