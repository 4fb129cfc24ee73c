"""The storage protocol every backend implements.

A backend knows how to create the tables of :mod:`iotlab.store.schema`, upsert
rows, read a partition's time range, and append events atomically. Everything
above it (validation, roll-ups, projections, detection) is backend-neutral and
lives in other modules, so a new backend is one small module.

Data contract at this boundary
------------------------------
- DataFrames carry exactly the table's columns (``TableSpec.columns``), except the
  derived bucket column (``bucket``/``day``): the store computes it from
  ``bucket_source`` and never returns it.
- ``timestamp`` columns are ``datetime64[ms, UTC]`` (tz-aware) both ways;
  ``double`` is float64, ``int`` int64, ``text`` str (object or string dtype).
- Rows are upserted by primary key: writing the same row twice leaves one row.

A new backend
-------------
Subclass :class:`Store`, implement the abstract methods and :meth:`Store.parse_url` for
its URLs, state its :class:`Capabilities`, register it for a URL scheme
(:mod:`iotlab.store.registry`) and run the contract suite of :mod:`iotlab.testing`
against it. Code above the store asks a store what it can do (``store.capabilities``,
``store.url.is_local_file``), never which class it is.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar, cast

import pandas as pd

from iotlab._time import TimeLike, utc_timestamp
from iotlab.errors import InvalidURLError, ValidationError
from iotlab.store.rollups import RollupMemory
from iotlab.store.schema import TABLES, TableSpec, bucket_column
from iotlab.store.url import StoreURL, URLParts, check_options

__all__ = ["Capabilities", "Store", "range_bounds", "selected_columns"]


@dataclass(frozen=True)
class Capabilities:
    """What a backend does beyond the protocol's required methods.

    Backend-neutral code (roll-ups, ingest, history) reads these instead of testing a
    store's class, so a new backend changes behaviour above it by stating its facts.

    Attributes
    ----------
    concurrent_writers
        Writes from several threads proceed in parallel (Cassandra: each event append
        is its own Paxos round, so keeping many in flight hides their latency). ``False``
        where one lock serialises writes (SQLite): threads then only add switching.
    rollups_in_store
        The backend aggregates roll-ups inside the database: it implements
        :meth:`Store.write_readings_with_rollups` and :meth:`Store.refresh_rollups_of`,
        which ingest and :func:`iotlab.store.rollups.refresh_rollups` then use instead of
        the backend-neutral read, aggregate and write path.
    single_reading_minutes
        ``rollups_minute`` holds a row for a minute with a single reading. Where it does
        not (Cassandra: at one reading a minute such rows doubled the rows written), that
        minute's roll-up is its raw reading, merged in at read time
        (:func:`iotlab.store.rollups.read_minute_rollups`).
    """

    concurrent_writers: bool = True
    rollups_in_store: bool = False
    single_reading_minutes: bool = True


def selected_columns(spec: TableSpec, columns: Sequence[str] | None) -> list[str]:
    """The columns a read returns: ``columns`` (default all), minus the derived bucket."""
    bucket = bucket_column(spec)
    visible = [c for c in spec.columns if c != bucket]
    wanted = [c for c in (visible if columns is None else columns) if c != bucket]
    unknown = [c for c in wanted if c not in visible]
    if unknown:
        raise ValidationError(
            f"{spec.name} has no column(s) {', '.join(unknown)}", field="columns"
        )
    return wanted


def range_bounds(
    spec: TableSpec, start: TimeLike | None, end: TimeLike | None
) -> tuple[str | None, int | None, int | None]:
    """``(column, low, high)``: what ``start``/``end`` of a read bound, as integers.

    The bound column is the first clustering column: a time (bounds in epoch ms; naive
    values read as UTC) or an integer such as the events' ``version``.

    Examples
    --------
    >>> range_bounds(TABLES["events"], 5, None)
    ('version', 5, None)
    >>> range_bounds(TABLES["readings"], "1970-01-01 00:00:01", None)
    ('ts', 1000, None)
    """
    if start is None and end is None:
        return None, None, None
    first = spec.clustering[0] if spec.clustering else None
    if first is None or spec.columns[first] not in ("timestamp", "int"):
        raise ValidationError(
            f"table {spec.name} has no time or version clustering column", field="start"
        )
    if spec.columns[first] == "int":
        # A version range: bounds are numbers (or their text), not times.
        low, high = (None if b is None else int(cast("int | str", b)) for b in (start, end))
        return first, low, high
    low, high = (
        None if b is None else utc_timestamp(b, field=f).value // 1_000_000
        for b, f in ((start, "start"), (end, "end"))
    )
    return first, low, high


class Store(ABC):
    """Abstract storage backend; see the module docstring for the data contract."""

    #: URL scheme this backend serves, e.g. ``"sqlite"``.
    scheme: str = ""
    #: What this backend does beyond the required methods (see :class:`Capabilities`).
    capabilities: ClassVar[Capabilities] = Capabilities()
    #: Query options its URLs accept: name -> what it means.
    url_options: ClassVar[dict[str, str]] = {}

    @classmethod
    def parse_url(cls, parts: URLParts) -> StoreURL:
        """Check a split URL of this backend's scheme and return it parsed; no I/O.

        Raise ``InvalidURLError`` (or ``InvalidIdentifierError``) naming the part at
        fault. This default accepts ``scheme://`` with the options in
        :attr:`url_options` and nothing else; backends with an address or a file
        override it.
        """
        check_options(parts, cls.url_options)
        if parts.netloc or parts.path or parts.username:
            raise InvalidURLError(
                f"{parts.scheme} URLs take no host, path or user: "
                f"'{parts.scheme}://[?option=value]'"
            )
        return StoreURL(parts.scheme, options=parts.options)

    def __init__(self, url: StoreURL, tables: Mapping[str, TableSpec] | None = None) -> None:
        self.url = url
        self.tables: dict[str, TableSpec] = dict(tables or TABLES)
        #: The roll-ups the last read-based refresh of an ingest through this store
        #: wrote, and the lock that lets one such refresh use it at a time: a notebook
        #: that ingests minute after minute then reads one hour roll-up per sensor, not
        #: every raw row of the hour so far (see :class:`~iotlab.store.rollups.RollupMemory`,
        #: which checks each remembered hour against the stored one before trusting it).
        self.rollup_memory = RollupMemory()
        self.rollup_lock = threading.Lock()

    # -- lifecycle -------------------------------------------------------------------------
    @abstractmethod
    def create_schema(self) -> None:
        """Create missing tables (and keyspace); never drop or alter existing data.

        Raises ``SchemaMismatchError`` if an existing table lacks a needed column or has
        one of another type. Calling it twice is a no-op.
        """

    @abstractmethod
    def close(self) -> None:
        """Release connections. Idempotent."""

    @abstractmethod
    def describe(self) -> dict[str, object]:
        """Backend facts for people: ``{"backend", "server_version", "location", ...}``."""

    # -- rows -------------------------------------------------------------------------------
    @abstractmethod
    def write_rows(self, table: str, rows: pd.DataFrame, *, progress: bool = False) -> int:
        """Upsert ``rows`` into ``table``; return how many rows were written."""

    def write_tables(self, frames: Mapping[str, pd.DataFrame]) -> dict[str, int]:
        """Upsert rows into several tables (``{table: rows}``); return rows written to each.

        The same as :meth:`write_rows` per table; a backend that can send several
        tables' rows at once (Cassandra: one concurrent wave) overrides it, so a live
        batch of readings, heartbeats and anomalies does not wait for each in turn.
        """
        return {
            table: self.write_rows(table, rows) if len(rows) else 0
            for table, rows in frames.items()
        }

    @abstractmethod
    def read_rows(
        self,
        table: str,
        key: Mapping[str, object] | None = None,
        *,
        start: pd.Timestamp | int | None = None,
        end: pd.Timestamp | int | None = None,
        columns: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """Rows of ``table`` whose partition-key columns equal ``key``.

        ``key`` holds the partition key without the bucket column; a value may be a list
        to read several partitions (read concurrently where the backend can). ``start``
        (inclusive) and ``end`` (exclusive) bound the first clustering column (a time, or an
        integer for ``int`` columns such as the events' ``version``), and for bucketed
        tables decide which buckets are read. ``key=None`` reads the whole
        table and is only allowed for small, unbucketed tables (devices, sensors).
        Rows come sorted by the primary key.
        """

    def advance_times(self, table: str, column: str, rows: pd.DataFrame) -> int:
        """Move the timestamp ``column`` of existing rows forward, touching nothing else.

        ``rows`` holds the table's primary key and ``column``; a row's value is written
        only where it is later than the stored one (or that is unset), so concurrent
        writers of other columns (a projection) are never overwritten. Rows that do not
        exist are skipped. Returns how many rows were asked to move. This default reads
        and rewrites whole rows; the backends override it with a one-column update.
        """
        spec = self.tables[table]
        key = spec.partition_key[0]
        stored = self.read_rows(table, {key: rows[key].tolist()})
        merged = stored.merge(rows[[key, column]], on=key, suffixes=("", "_new"))
        later = merged[column].isna() | (merged[f"{column}_new"] > merged[column])
        updated = merged[later].assign(**{column: merged.loc[later, f"{column}_new"]})
        self.write_rows(table, updated[list(stored.columns)])
        return int(later.sum())

    @abstractmethod
    def delete_rows(self, table: str, key: Mapping[str, object]) -> int:
        """Delete whole partitions of ``table`` (projections rebuild); return rows deleted."""

    # -- optional fast paths (see Capabilities.rollups_in_store) ----------------------------
    def write_readings_with_rollups(self, rows: pd.DataFrame) -> int:
        """Write ``readings`` rows and refresh their minute and hour roll-ups, atomically.

        Only for backends with ``capabilities.rollups_in_store``; the result must equal
        :meth:`write_rows` followed by :func:`iotlab.store.rollups.refresh_rollups`.
        Returns the number of rows written.
        """
        raise NotImplementedError(
            f"{type(self).__name__} does not aggregate roll-ups in the store "
            "(capabilities.rollups_in_store is False)"
        )

    def refresh_rollups_of(self, written: pd.DataFrame) -> int:
        """Recompute, inside the store, the roll-ups of stored readings ``written`` touched.

        Only for backends with ``capabilities.rollups_in_store``. Columns
        ``device_id, sensor_id, ts`` are enough. Returns the number of hour roll-ups
        recomputed.
        """
        raise NotImplementedError(
            f"{type(self).__name__} does not aggregate roll-ups in the store "
            "(capabilities.rollups_in_store is False)"
        )

    # -- events -----------------------------------------------------------------------------
    @abstractmethod
    def append_events(self, device_id: str, expected_version: int, events: pd.DataFrame) -> None:
        """Append ``events`` (columns of the ``events`` table, versions expected+1, +2, ...).

        Atomic per version: raises ``ConcurrencyError`` if any of those versions exists,
        and then writes none of the later ones.
        """

    # -- housekeeping -----------------------------------------------------------------------
    @abstractmethod
    def purge_expired(self) -> int:
        """Delete rows past their TTL where the backend does not do it itself."""

    @abstractmethod
    def stats(self) -> pd.DataFrame:
        """One row per table: ``table, rows, partitions, first, last``."""

    # -- context manager --------------------------------------------------------------------
    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.url}>"
