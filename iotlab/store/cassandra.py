"""The Cassandra backend: bucketed time-series tables on one or many nodes.

Opened by :func:`iotlab.store.open_store` for ``cassandra://`` URLs, which is the
only place this module (and so the driver) is imported. The connection settings
are in :mod:`._cql_connect`, the DDL and migration in :mod:`._cql_schema`, the bulk
write path in :mod:`._cql_io`, the read path in :mod:`._cql_read`.

A URL is checked before any I/O; e.g. an unsafe keyspace never reaches a socket:

>>> from iotlab.store.url import StoreURL
>>> CassandraStore(StoreURL("cassandra", ("127.0.0.1",), 9042, keyspace="x; DROP"))
Traceback (most recent call last):
...
iotlab.errors.InvalidIdentifierError: invalid keyspace 'x; DROP': ...
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from iotlab.errors import ConcurrencyError, SchemaMismatchError, StoreError, ValidationError
from iotlab.store._cql_codec import python_value
from iotlab.store._cql_connect import Connection, connect_cluster
from iotlab.store._cql_errors import driver_errors
from iotlab.store._cql_io import (
    BATCH_ROWS,
    IndexMemory,
    WritePlan,
    index_key,
    run_concurrent,
)
from iotlab.store._cql_io import write_frame as _write_frame
from iotlab.store._cql_io import write_frames as _write_frames
from iotlab.store._cql_read import key_tuples, read_partitions, select_list
from iotlab.store._cql_schema import (
    create_keyspace_cql,
    create_table_cql,
    group_columns,
    plan_migration,
    quote,
)
from iotlab.store._cql_url import CASSANDRA_OPTIONS, parse_cassandra_url
from iotlab.store.base import Capabilities, Store, range_bounds, selected_columns
from iotlab.store.schema import TableSpec, bucket_column
from iotlab.store.url import StoreURL, URLParts, validate_identifier

__all__ = ["CassandraStore"]

logger = logging.getLogger(__name__)

_MAX_ENUMERATED_BUCKETS = 64
#: Timeout of one schema change (s), and how often an idempotent one is sent.
_DDL_TIMEOUT_S = 60.0
_DDL_ATTEMPTS = 3
_HOUR_MS = 3600 * 1000
#: closed ranges up to this long read several partitions per query: at most 50, and at
#: most 100 partition-hours, so a query stays small even on 1 Hz data (360k rows)
_GROUPED_SPAN_MS = 8 * _HOUR_MS
_GROUPED_PARTITIONS = 50
_GROUPED_PARTITION_MS = 100 * _HOUR_MS


def _partitions_per_query(start_ms: int | None, end_ms: int | None) -> int:
    """How many partitions one query of this range may read (0: one query each)."""
    if start_ms is None or end_ms is None or end_ms - start_ms > _GROUPED_SPAN_MS:
        return 0
    span = max(end_ms - start_ms, _HOUR_MS)
    return max(1, min(_GROUPED_PARTITIONS, _GROUPED_PARTITION_MS // span))


class CassandraStore(Store):
    """Store on Apache Cassandra (4.0+; tested on 5.0).

    Parameters
    ----------
    url
        A parsed ``cassandra://`` URL: hosts, port, keyspace, options.
    tables
        Table specs (default: :data:`iotlab.store.schema.TABLES`); tests pass
        variants, e.g. a short TTL.
    batch_rows
        Rows per UNLOGGED batch.
    """

    scheme = "cassandra"
    # A minute with one reading has no roll-up row: its raw row is that roll-up.
    capabilities = Capabilities(single_reading_minutes=False)
    url_options = CASSANDRA_OPTIONS

    @classmethod
    def parse_url(cls, parts: URLParts) -> StoreURL:
        """``cassandra://[user[:password]@]host1[,host2...][:port]/keyspace[?options]``."""
        return parse_cassandra_url(parts)

    def __init__(
        self,
        url: StoreURL,
        tables: Mapping[str, TableSpec] | None = None,
        *,
        batch_rows: int = BATCH_ROWS,
    ) -> None:
        super().__init__(url, tables)
        self.keyspace = validate_identifier(url.keyspace or "", what="keyspace")
        for name in self.tables:
            validate_identifier(name, what="table name")
        self.batch_rows = batch_rows
        self._conn: Connection | None = None
        self._prepared: dict[str, Any] = {}
        self._index_memory = IndexMemory()
        self._closed = False

    # -- connection -------------------------------------------------------------------------
    @property
    def connection(self) -> Connection:
        """The open cluster and sessions (connects on first use)."""
        if self._closed:
            raise StoreError(f"store {self.url} is closed")
        if self._conn is None:
            self._conn = connect_cluster(self.url)
        return self._conn

    @property
    def session(self) -> Any:
        return self.connection.session

    def _execute(self, query: Any, params: Any = None) -> Any:
        # Driver errors pass through: the public methods (``driver_errors``) name them.
        return self.session.execute(query, params)

    def _prepare(self, cql: str, *, idempotent: bool = True, bulk: bool = False) -> Any:
        """Prepared statements, cached per store (the cache is this instance's state)."""
        cache_key = f"{bulk}:{cql}"
        if cache_key not in self._prepared:
            conn = self.connection
            session = conn.bulk if bulk and conn.bulk is not None else conn.session
            statement = session.prepare(cql)
            statement.is_idempotent = idempotent
            self._prepared[cache_key] = statement
        return self._prepared[cache_key]

    def close(self) -> None:
        if self._conn is not None:
            self._conn.cluster.shutdown()
            self._conn = None
        self._prepared.clear()
        self._closed = True

    @driver_errors("reading the cluster's description")
    def describe(self) -> dict[str, object]:
        row = self._execute("SELECT release_version, data_center FROM system.local").one()
        return {
            "backend": "cassandra",
            "server_version": row[0],
            "location": str(self.url),
            "hosts": list(self.url.hosts),
            "port": self.url.port,
            "keyspace": self.keyspace,
            "datacenter": row[1],
        }

    # -- schema -----------------------------------------------------------------------------
    def _existing_columns(self) -> dict[str, dict]:
        rows = self._execute(
            "SELECT table_name, column_name, kind, position, type, clustering_order "
            "FROM system_schema.columns WHERE keyspace_name = %s",
            (self.keyspace,),
        )
        return group_columns(rows)

    @driver_errors("creating the schema in keyspace")
    def create_schema(self) -> None:
        exists = self._execute(
            "SELECT keyspace_name FROM system_schema.keyspaces WHERE keyspace_name = %s",
            (self.keyspace,),
        ).one()
        if exists is None:
            rf = int(self.url.options.get("replication_factor", "1"))
            self._ddl(
                create_keyspace_cql(
                    self.keyspace, replication_factor=rf, dc=self.url.options.get("dc")
                )
            )
        existing = self._existing_columns()
        # Check every existing table before changing anything: a mismatch changes nothing.
        alters = [
            stmt
            for name, spec in self.tables.items()
            if name in existing
            for stmt in self._migration(spec, existing[name])
        ]
        for name, spec in self.tables.items():
            if name not in existing:
                self._ddl(create_table_cql(self.keyspace, spec))
        for stmt in alters:
            self._ddl(stmt)

    def _migration(self, spec: TableSpec, existing: dict) -> list[str]:
        """:func:`plan_migration`, with the way out when only the key grew (see
        :mod:`iotlab.store.migrate`): Cassandra cannot change a primary key in place."""
        try:
            return plan_migration(self.keyspace, spec, existing)
        except SchemaMismatchError as exc:
            from iotlab.store.migrate import key_only_grew

            if key_only_grew(spec, existing):
                raise SchemaMismatchError(
                    f"{exc}. This table predates a key change that iotlab can migrate "
                    f"without losing rows: run `iotlab migrate --store {self.url}`"
                ) from None
            raise

    def _ddl(self, cql: str) -> None:
        """Run a schema change and wait until every node has it.

        Schema changes are slow on a busy cluster (every node applies and gossips them),
        so they get a longer timeout than a read or write; a ``CREATE ... IF NOT EXISTS``
        that still times out (a node too busy to answer its connection's heartbeat) is
        sent again, as it changes nothing if it did land.
        """
        from cassandra import OperationTimedOut

        attempts = _DDL_ATTEMPTS if "IF NOT EXISTS" in cql else 1
        for attempt in range(1, attempts + 1):
            try:
                self.session.execute(cql, timeout=_DDL_TIMEOUT_S)
                break
            except OperationTimedOut:
                if attempt == attempts:
                    raise
                logger.warning("schema change timed out (attempt %d), sending it again", attempt)
        if not self.connection.cluster.control_connection.wait_for_schema_agreement():
            raise StoreError(f"nodes did not agree on the schema after: {cql[:80]}")

    def _spec(self, table: str) -> TableSpec:
        try:
            return self.tables[table]
        except KeyError:
            raise ValidationError(
                f"unknown table {table!r}; known: {', '.join(self.tables)}", field="table"
            ) from None

    # -- writes -----------------------------------------------------------------------------
    def _write_plan(self, spec: TableSpec) -> WritePlan:
        columns = tuple(spec.columns)
        insert = self._prepare(
            f"INSERT INTO {self.keyspace}.{spec.name} ({', '.join(quote(c) for c in columns)}) "
            f"VALUES ({', '.join('?' for _ in columns)})"
        )
        index = self._prepare(
            f"INSERT INTO {self.keyspace}.partition_index (table_name, key, bucket) "
            "VALUES (?, ?, ?)"
        )
        return WritePlan(
            self.keyspace,
            spec,
            insert,
            columns,
            index,
            self.batch_rows,
            replica_set=self._replica_set,
            index_memory=self._index_memory,
        )

    def _replica_set(self, parts: list[bytes]) -> frozenset:
        """The nodes owning the partition whose serialised key columns are ``parts``."""
        # A composite key's token is hashed over each part as <length><bytes>0x00.
        key = (
            parts[0]
            if len(parts) == 1
            else b"".join(len(p).to_bytes(2, "big") + p + b"\x00" for p in parts)
        )
        return frozenset(self.connection.cluster.metadata.get_replicas(self.keyspace, key))

    def _check_rows(self, spec: TableSpec, rows: pd.DataFrame) -> pd.DataFrame:
        bucket = bucket_column(spec)
        wanted = [c for c in spec.columns if c != bucket]
        missing = [c for c in wanted if c not in rows.columns]
        if missing:
            raise ValidationError(
                f"{spec.name} rows lack column(s) {', '.join(missing)}", field=missing[0]
            )
        for column in spec.primary_key:
            if column != bucket and rows[column].isna().any():
                bad = np.flatnonzero(rows[column].isna().to_numpy()).tolist()
                raise ValidationError("key column must not be missing", field=column, rows=bad)
        return rows[wanted]

    def _planned(self, table: str, rows: pd.DataFrame) -> tuple[WritePlan, pd.DataFrame]:
        """The write plan of ``table`` and ``rows`` checked against it (raises if bad)."""
        spec = self._spec(table)
        return self._write_plan(spec), self._check_rows(spec, rows)

    @driver_errors("writing")
    def write_rows(self, table: str, rows: pd.DataFrame, *, progress: bool = False) -> int:
        if len(rows) == 0:
            return 0
        plan, rows = self._planned(table, rows)
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(rows), desc=f"write {table}", unit="rows")
        try:
            return _write_frame(self.session, plan, rows, on_progress=bar.update if bar else None)
        finally:
            if bar is not None:
                bar.close()

    @driver_errors("writing")
    def write_tables(self, frames: Mapping[str, pd.DataFrame]) -> dict[str, int]:
        """Every table's rows in the same concurrent waves (see :meth:`Store.write_tables`)."""
        writes = {table: self._planned(table, rows) for table, rows in frames.items() if len(rows)}
        written = _write_frames(self.session, list(writes.values()))
        return {table: 0 for table in frames} | dict(zip(writes, written))

    # -- reads ------------------------------------------------------------------------------
    def _index_buckets(
        self, spec: TableSpec, keys: list[tuple], lo: int | None, hi: int | None
    ) -> list[list[int]]:
        """Buckets partition_index lists for each key, within ``[lo, hi]`` if given."""
        cql = (
            f"SELECT toUnixTimestamp(bucket) FROM {self.keyspace}.partition_index "
            "WHERE table_name = ? AND key = ?"
        )
        params: list[object] = []
        if lo is not None:
            cql += " AND bucket >= ?"
            params.append(lo)
        if hi is not None:
            cql += " AND bucket <= ?"
            params.append(hi)
        statement = self._prepare(cql)
        results = run_concurrent(
            self.session, ((statement, (spec.name, index_key(k), *params)) for k in keys)
        )
        return [sorted(int(r[0]) for r in result) for _ok, result in results]

    def _buckets(
        self, spec: TableSpec, keys: list[tuple], start: int | None, end: int | None
    ) -> list[list[int]]:
        width = spec.bucket_ms
        if start is not None and end is not None and end <= start:
            return [[] for _ in keys]
        lo = None if start is None else start // width * width
        hi = None if end is None else (end - 1) // width * width
        if lo is not None and hi is not None and (hi - lo) // width < _MAX_ENUMERATED_BUCKETS:
            return [list(range(lo, hi + 1, width)) for _ in keys]
        return self._index_buckets(spec, keys, lo, hi)

    @driver_errors("reading")
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
        bucket = bucket_column(spec)
        columns = selected_columns(spec, columns)
        key_names = [c for c in spec.partition_key if c != bucket]
        first, start_ms, end_ms = range_bounds(spec, start, end)
        if first is not None and spec.columns[first] == "int" and key is None:
            raise ValidationError(f"{table}: a version range needs a key", field="key")
        if key is None and bucket is None:
            return self._read_all(spec, columns, start_ms, end_ms)
        keys = key_tuples(spec, key)
        selected = [c for c in columns if c not in key_names] or [
            (spec.clustering or spec.partition_key)[0]
        ]
        where = [f"{quote(c)} = ?" for c in spec.partition_key]
        bounds: list[int] = []
        for value, op in ((start_ms, ">="), (end_ms, "<")):
            if value is not None and first is not None:
                where.append(f"{quote(first)} {op} ?")
                bounds.append(value)
        statement = self._prepare(
            f"SELECT {select_list(spec, selected)} FROM {self.keyspace}.{spec.name} "
            f"WHERE {' AND '.join(where)}",
            bulk=True,
        )
        conn = self.connection
        session = conn.bulk if conn.bulk is not None else conn.session
        if bucket is None:
            requests = [(k, [*k, *bounds]) for k in keys]
        else:
            per_key = self._buckets(spec, keys, start_ms, end_ms)
            budget = _partitions_per_query(start_ms, end_ms)
            if budget > 1 and len(keys) > 1 and per_key.count(per_key[0]) == len(per_key):
                return self._read_grouped(
                    session, spec, keys, per_key[0], columns, first, bounds, budget
                )
            requests = [
                (k, [*k, b, *bounds]) for k, buckets in zip(keys, per_key) for b in buckets
            ]
        frame = read_partitions(session, statement, spec, requests, key_names, selected, columns)
        return frame.reset_index(drop=True)

    def _read_grouped(
        self,
        session: Any,
        spec: TableSpec,
        keys: list[tuple],
        buckets: list[int],
        columns: list[str],
        first: str | None,
        bounds: list[int],
        budget: int,
    ) -> pd.DataFrame:
        """Read a short range of many partitions with a few multi-partition queries.

        A live roll-up refresh reads a handful of rows from each of hundreds of
        partitions; one query per partition would make the request overhead the whole
        cost. ``keys`` is a product of per-column choices (see ``key_tuples``) with the
        same buckets, so ``IN`` on every partition-key column names exactly them; about
        ``budget`` partitions go into one query, all on the bulk session.
        """
        bucket = bucket_column(spec)
        assert bucket is not None  # read() groups the partitions of bucketed tables only
        names = [c for c in spec.partition_key if c != bucket]
        choices = [sorted({k[i] for k in keys}) for i in range(len(names))]
        others = int(np.prod([len(c) for c in choices[1:]])) * max(len(buckets), 1)
        per_query = max(1, budget // others)
        order = [*names, *([first] if first is not None else [])]
        selected = list(dict.fromkeys([*order, *columns]))  # sort keys, even if not asked
        where = [f"{quote(c)} IN ?" for c in [*names, bucket]]
        if first is not None:
            where += [f"{quote(first)} {op} ?" for op in (">=", "<")][: len(bounds)]
        statement = self._prepare(
            f"SELECT {select_list(spec, selected)} FROM {self.keyspace}.{spec.name} "
            f"WHERE {' AND '.join(where)}",
            bulk=True,
        )
        head = choices[0]
        requests = [
            ((), [head[i : i + per_query], *choices[1:], buckets, *bounds])
            for i in range(0, len(head), per_query)
        ]
        frame = read_partitions(session, statement, spec, requests, [], selected, selected)
        frame = frame.sort_values(order, kind="stable", ignore_index=True)
        return frame[columns]

    def _read_all(
        self, spec: TableSpec, columns: list[str], start: int | None, end: int | None
    ) -> pd.DataFrame:
        """Whole-table read of a small unbucketed table (devices, sensors)."""
        statement = self._prepare(
            f"SELECT {select_list(spec, list(spec.columns))} FROM {self.keyspace}.{spec.name}"
        )
        frame = read_partitions(
            self.session, statement, spec, [((), [])], [], list(spec.columns), list(spec.columns)
        )
        first = spec.clustering[0] if spec.clustering else None
        if first is not None and spec.columns[first] == "timestamp" and len(frame):
            ms = frame[first].to_numpy("datetime64[ms]").astype("int64")
            keep = np.ones(len(frame), bool)
            if start is not None:
                keep &= ms >= start
            if end is not None:
                keep &= ms < end
            frame = frame[keep]
        order = list(spec.primary_key)
        ascending = [c not in spec.descending for c in order]
        frame = frame.sort_values(order, ascending=ascending, kind="stable")
        return frame[columns].reset_index(drop=True)

    def advance_times(self, table: str, column: str, rows: pd.DataFrame) -> int:
        """One-column ``UPDATE`` per row, concurrently, only for rows read as existing
        (an UPDATE would otherwise create a row) and only where the value is later.
        Last write wins between concurrent writers of the same column."""
        spec = self._spec(table)
        if bucket_column(spec) is not None or len(spec.partition_key) != 1:
            return super().advance_times(table, column, rows)
        key = spec.partition_key[0]
        stored = self.read_rows(table, {key: rows[key].tolist()}, columns=[key, column])
        merged = stored.merge(rows[[key, column]], on=key, suffixes=("", "_new"))
        later = merged[merged[column].isna() | (merged[f"{column}_new"] > merged[column])]
        statement = self._prepare(
            f"UPDATE {self.keyspace}.{spec.name} SET {quote(column)} = ? "
            f"WHERE {' AND '.join(f'{quote(c)} = ?' for c in spec.primary_key)}"
        )
        run_concurrent(
            self.session,
            (
                (statement, [python_value(t, "timestamp"), k])
                for k, t in zip(later[key], later[f"{column}_new"])
            ),
        )
        return len(later)

    # -- deletes ----------------------------------------------------------------------------
    @driver_errors("deleting from")
    def delete_rows(self, table: str, key: Mapping[str, object]) -> int:
        spec = self._spec(table)
        bucket = bucket_column(spec)
        keys = key_tuples(spec, key)
        where = " AND ".join(f"{quote(c)} = ?" for c in spec.partition_key)
        count = self._prepare(f"SELECT COUNT(*) FROM {self.keyspace}.{spec.name} WHERE {where}")
        delete = self._prepare(f"DELETE FROM {self.keyspace}.{spec.name} WHERE {where}")
        if bucket is None:
            targets = [list(k) for k in keys]
        else:
            per_key = self._index_buckets(spec, keys, None, None)
            targets = [[*k, b] for k, buckets in zip(keys, per_key) for b in buckets]
        counted = run_concurrent(self.session, ((count, t) for t in targets))
        deleted = sum(int(result.one()[0]) for _ok, result in counted)
        run_concurrent(self.session, ((delete, t) for t in targets))
        if bucket is not None:
            drop_index = self._prepare(
                f"DELETE FROM {self.keyspace}.partition_index WHERE table_name = ? AND key = ?"
            )
            run_concurrent(self.session, ((drop_index, (spec.name, index_key(k))) for k in keys))
            for k in keys:
                self._index_memory.forget(spec.name, tuple(k))
        return deleted

    # -- events -----------------------------------------------------------------------------
    @driver_errors("appending events to", table_arg=False)
    def append_events(self, device_id: str, expected_version: int, events: pd.DataFrame) -> None:
        from cassandra import ConsistencyLevel
        from cassandra.query import BatchStatement

        spec = self._spec("events")
        if len(events) == 0:
            return
        versions = events["version"].astype("int64").tolist()
        if versions != sorted(versions):  # sorting a frame costs more than the check
            events = events.sort_values("version", kind="stable")
            versions.sort()
        wanted = list(range(expected_version + 1, expected_version + 1 + len(versions)))
        if versions != wanted:
            raise ValidationError(
                f"versions must be {wanted[0]}..{wanted[-1]} after version {expected_version}",
                field="version",
            )
        if any(str(d) != str(device_id) for d in events["device_id"].tolist()):
            raise ValidationError(f"events must all belong to {device_id}", field="device_id")
        columns = list(spec.columns)
        # A lightweight transaction: not idempotent, so the driver never retries it blindly.
        insert = self._prepare(
            f"INSERT INTO {self.keyspace}.events ({', '.join(quote(c) for c in columns)}) "
            f"VALUES ({', '.join('?' for _ in columns)}) IF NOT EXISTS",
            idempotent=False,
        )
        # Plain lists, not itertuples (which builds a namedtuple class per call): on
        # Cassandra provisioning is bound by this per-append client work.
        rows = [
            [python_value(v, spec.columns[c]) for c, v in zip(columns, row)]
            for row in zip(*(events[c].tolist() for c in columns))
        ]
        # One conditional batch per chunk: all events of a chunk land or none do (one
        # partition, so Paxos covers them together). Chunks keep a batch under Cassandra's
        # batch_size_fail_threshold; a conflict can only hit the first chunk unless another
        # writer read this stream mid-save, so a save is all-or-nothing in practice.
        # LOCAL_SERIAL when the URL names a datacenter (Paxos among its replicas only),
        # else SERIAL: the connection's setting, which the batch must be given itself.
        serial = self.connection.serial_consistency or ConsistencyLevel.SERIAL
        for chunk in _event_chunks(rows):
            batch = BatchStatement(serial_consistency_level=serial)
            for values in chunk:
                batch.add(insert, values)
            if not self._execute(batch).was_applied:
                raise ConcurrencyError(str(device_id), expected_version)

    # -- housekeeping -----------------------------------------------------------------------
    @driver_errors("purging expired rows")
    def purge_expired(self) -> int:
        """Cassandra expires rows itself (table ``default_time_to_live``): nothing to do."""
        return 0

    @driver_errors("reading table statistics")
    def stats(self) -> pd.DataFrame:
        index: dict[str, list[tuple[str, int]]] = {}
        for table_name, key, bucket in self._execute(
            f"SELECT table_name, key, toUnixTimestamp(bucket) FROM {self.keyspace}.partition_index"
        ):
            index.setdefault(table_name, []).append((key, int(bucket)))
        records = [
            self._table_stats(spec, index.get(name, [])) for name, spec in self.tables.items()
        ]
        frame = pd.DataFrame(records, columns=["table", "rows", "partitions", "first", "last"])
        for column in ("first", "last"):
            frame[column] = pd.to_datetime(frame[column], unit="ms", utc=True).astype(
                "datetime64[ms, UTC]"
            )
        return frame.astype({"rows": "int64", "partitions": "int64"})

    def _table_stats(self, spec: TableSpec, entries: list[tuple[str, int]]) -> tuple:
        import json

        bucket = bucket_column(spec)
        time_col = _time_column(spec)
        span = f", min({quote(time_col)}), max({quote(time_col)})" if time_col else ""
        aggregates = "COUNT(*)" + span
        if bucket is None:
            row = self._execute(f"SELECT {aggregates} FROM {self.keyspace}.{spec.name}").one()
            parts = self._execute(
                f"SELECT DISTINCT {', '.join(quote(c) for c in spec.partition_key)} "
                f"FROM {self.keyspace}.{spec.name}"
            )
            n_parts = sum(1 for _ in parts)
            results = [row]
        else:
            where = " AND ".join(f"{quote(c)} = ?" for c in spec.partition_key)
            statement = self._prepare(
                f"SELECT {aggregates} FROM {self.keyspace}.{spec.name} WHERE {where}"
            )
            params = [(*json.loads(key), b) for key, b in entries]
            results = [
                r.one()
                for _ok, r in run_concurrent(self.session, ((statement, p) for p in params))
            ]
            results = [r for r in results if r and r[0]]
            n_parts = len(results)
        rows = sum(int(r[0]) for r in results)
        firsts = [_dt_ms(r[1]) for r in results if time_col and r[1] is not None]
        lasts = [_dt_ms(r[2]) for r in results if time_col and r[2] is not None]
        return (
            spec.name,
            rows,
            n_parts,
            min(firsts) if firsts else None,
            max(lasts) if lasts else None,
        )


def _dt_ms(value: Any) -> int:
    """Epoch ms of a naive-UTC ``datetime`` the driver returns for a timestamp."""
    return int(pd.Timestamp(value).tz_localize(None).value // 1_000_000)


def _time_column(spec: TableSpec) -> str | None:
    """The column whose span ``stats`` reports (as the SQLite backend does)."""
    if spec.bucket_seconds is not None:
        return spec.bucket_source if spec.bucket_source in spec.columns else None
    candidates = [*spec.clustering, *spec.columns]
    return next((c for c in candidates if spec.columns[c] == "timestamp"), None)


def _event_chunks(rows: list[list[Any]], max_bytes: int = 32_000) -> list[list[list[Any]]]:
    """Split event rows into batches under ``max_bytes`` of payload (Cassandra fails >50 KiB)."""
    chunks: list[list[list[Any]]] = [[]]
    size = 0
    for row in rows:
        row_size = sum(len(v) if isinstance(v, str) else 8 for v in row)
        if chunks[-1] and size + row_size > max_bytes:
            chunks.append([])
            size = 0
        chunks[-1].append(row)
        size += row_size
    return chunks
