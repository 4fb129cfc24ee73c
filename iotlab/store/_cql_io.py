"""The Cassandra bulk write and read paths.

Write: rows are sorted by partition, serialised column by column
(:mod:`iotlab.store._cql_codec`), cut into UNLOGGED batches and sent with a bounded
number in flight (``execute_concurrent``), with Python's cyclic garbage collector paused
(:func:`collector_paused`). A partition with many rows fills single-partition batches of
its own, sized to the partition (up to :data:`PARTITION_BATCH_ROWS`); the few rows of
small partitions (a live micro-batch holds one or two rows per sensor) are packed
together with those of other partitions *on the same replica set*, at most
:data:`BATCH_PARTITIONS` per batch, so the coordinator the batch is routed to (by token)
owns every partition in it. That is the Spark Cassandra connector's
``batch.grouping.key=replica_set``: one request per ten sensors instead of one per
sensor, without the coordinator fan-out that makes arbitrary multi-partition batches an
anti-pattern. Batches are upserts, so they are marked idempotent and the retry policy
may retry them.

``partition_index`` entries the store wrote recently are remembered
(:class:`IndexMemory`), so a stream does not rewrite them with every batch.

Read: one query per (partition, bucket), run concurrently with a bound; each
result page arrives as NumPy arrays on the bulk session.
"""

from __future__ import annotations

import contextlib
import gc
import json
import threading
import time
from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from typing import Any

import numpy as np
import pandas as pd

from iotlab.store._cql_codec import encode_column, epoch_ms
from iotlab.store.schema import TableSpec, bucket_column

__all__ = [
    "IndexMemory",
    "collector_paused",
    "WritePlan",
    "index_key",
    "run_concurrent",
    "write_frame",
    "write_frames",
]

#: rows per UNLOGGED batch packing small partitions; with BATCH_BYTES keeps such batches
#: under the 5 KiB warning (``batch_size_warn_threshold``)
BATCH_ROWS = 50
BATCH_BYTES = 4000
#: rows per single-partition batch. Cassandra checks batch size only for batches that
#: span partitions, and one partition's rows are one mutation on each replica: batches of
#: ~200 rows cut a 500k-row write from ~30,000 requests to ~5,000 (the node's CPU per row
#: fell by a third, no warning in its log). Bytes bound it for wide rows.
PARTITION_BATCH_ROWS = 200
PARTITION_BATCH_BYTES = 48_000
#: partitions per UNLOGGED batch: Cassandra warns above 10
#: (``unlogged_batch_across_partitions_warn_threshold``)
BATCH_PARTITIONS = 10
#: requests in flight
CONCURRENCY = 96
#: rows serialised at a time (bounds memory; one progress step)
CHUNK_ROWS = 200_000


def index_key(values: Sequence[object]) -> str:
    """The ``partition_index.key`` text of a partition key (bucket excluded).

    Examples
    --------
    >>> index_key(["dev-1", "temp"])
    '["dev-1","temp"]'
    """
    return json.dumps([str(v) for v in values], separators=(",", ":"))


_gc_lock = threading.Lock()
_gc_state = {"pausers": 0, "was_enabled": True}


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while the block runs.

    A bulk write allocates millions of short-lived tuples, each of which counts towards
    the collector's next generation-0 pass: the collector took about a third of the
    client's CPU during a 500k-row write. Reference counting still frees every row; the
    cycles the block leaves are collected when it ends. Nested and concurrent blocks
    (the ingestion service's threads) count: the collector runs again after the last.

    Examples
    --------
    >>> was = gc.isenabled()
    >>> with collector_paused():
    ...     gc.isenabled()
    False
    >>> gc.isenabled() == was
    True
    """
    with _gc_lock:
        if _gc_state["pausers"] == 0:
            _gc_state["was_enabled"] = gc.isenabled()
        _gc_state["pausers"] += 1
        gc.disable()
    try:
        yield
    finally:
        with _gc_lock:
            _gc_state["pausers"] -= 1
            if _gc_state["pausers"] == 0 and _gc_state["was_enabled"]:
                gc.enable()


def run_concurrent(session: Any, statements: Any, concurrency: int = CONCURRENCY) -> list:
    """Execute ``(statement, params)`` pairs with a bound. Driver errors pass through:
    the store's public methods turn them into errors naming the host and table."""
    from cassandra.concurrent import execute_concurrent

    return execute_concurrent(
        session, statements, concurrency=concurrency, raise_on_first_error=True
    )


class IndexMemory:
    """The partitions whose ``partition_index`` rows a store wrote in the last ``ttl`` s.

    A stream writes to the same partitions batch after batch; their index rows only
    need writing once. A partition is ``(table, *key values, bucket epoch ms)``. All
    are forgotten after ``ttl`` seconds (or beyond ``max_entries``), so an index row
    deleted by another process is rewritten soon.

    Examples
    --------
    >>> memory = IndexMemory(ttl=60, clock=lambda: 0.0)
    >>> memory.new([("readings", "d", "t", 0), ("readings", "d", "t", 0)])
    [('readings', 'd', 't', 0)]
    >>> memory.remember([("readings", "d", "t", 0)])
    >>> memory.new([("readings", "d", "t", 0)])
    []
    >>> memory.forget("readings", ("d", "t"))
    >>> memory.new([("readings", "d", "t", 0)])
    [('readings', 'd', 't', 0)]
    """

    def __init__(
        self,
        ttl: float = 300.0,
        *,
        max_entries: int = 1_000_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._clock = clock
        self._partitions: set[tuple] = set()
        self._since = clock()

    def new(self, partitions: Sequence[tuple]) -> list[tuple]:
        """``partitions`` not written recently, each once, in order."""
        if self._clock() - self._since > self.ttl or len(self._partitions) > self.max_entries:
            self._partitions.clear()
            self._since = self._clock()
        return [p for p in dict.fromkeys(partitions) if p not in self._partitions]

    def remember(self, partitions: Sequence[tuple]) -> None:
        """Note ``partitions`` as indexed (call once the index writes succeeded)."""
        self._partitions.update(partitions)

    def forget(self, table: str, key: tuple) -> None:
        """Drop every bucket of one partition key (its rows were deleted)."""
        prefix = (table, *key)
        self._partitions = {p for p in self._partitions if p[:-1] != prefix}


@dataclass
class WritePlan:
    """What a table's write needs: its prepared INSERTs and settings.

    ``replica_set(parts)`` names the replica set owning the partition whose serialised
    key columns are ``parts``; rows of small partitions sharing one are batched together.
    """

    keyspace: str
    spec: TableSpec
    insert: Any  # PreparedStatement for every column, bucket included
    insert_columns: tuple[str, ...]
    index_insert: Any  # PreparedStatement on partition_index
    batch_rows: int = BATCH_ROWS
    concurrency: int = CONCURRENCY
    replica_set: Callable[[list[bytes]], Hashable] = field(default=lambda parts: None)
    index_memory: IndexMemory | None = None


def _partition_order(frame: pd.DataFrame, keys: list[str]) -> tuple[pd.DataFrame, np.ndarray]:
    """Rows sorted by partition (stable, so later duplicates still win) and group ids."""
    codes = frame.groupby(keys, sort=False, dropna=False).ngroup().to_numpy()
    if len(codes) > 1 and (np.diff(codes) < 0).any():
        order = np.argsort(codes, kind="stable")
        return frame.iloc[order], codes[order]
    return frame, codes


class _Packer:
    """Rows of small partitions of one replica set, waiting to fill a batch."""

    def __init__(self) -> None:
        self.rows: list[tuple] = []
        self.routing: list[bytes] | None = None
        self.partitions = 0


def _batches(plan: WritePlan, encoded: list[list], codes: np.ndarray) -> Iterator[tuple]:
    """UNLOGGED batches of pre-serialised rows (see the module docstring)."""
    rows = list(zip(*encoded))
    if not rows:
        return
    pk_positions = [plan.insert_columns.index(c) for c in plan.spec.partition_key]
    row_bytes = sum(len(v) for v in rows[0] if v is not None) + 4 * len(rows[0])
    per_batch = max(1, min(plan.batch_rows, BATCH_BYTES // max(row_bytes, 1)))
    per_partition = max(1, min(PARTITION_BATCH_ROWS, PARTITION_BATCH_BYTES // max(row_bytes, 1)))
    starts = [0, *(np.flatnonzero(np.diff(codes)) + 1).tolist()]
    ends = [*starts[1:], len(rows)]
    packers: dict[Hashable, _Packer] = {}
    for start, end in zip(starts, ends):
        parts = [rows[start][i] for i in pk_positions]
        if end - start >= per_batch:  # a partition of its own: batches of equal size
            pieces = -(-(end - start) // per_partition)
            edges = np.linspace(start, end, pieces + 1).round().astype(int).tolist()
            for lo, hi in zip(edges[:-1], edges[1:]):
                yield _batch(plan, rows[lo:hi], parts), None
            continue
        packer = packers.setdefault(plan.replica_set(parts), _Packer())
        if len(packer.rows) + end - start > per_batch or packer.partitions == BATCH_PARTITIONS:
            yield _batch(plan, packer.rows, packer.routing), None
            packer.rows, packer.routing, packer.partitions = [], None, 0
        packer.rows.extend(rows[start:end])
        packer.routing = packer.routing or parts
        packer.partitions += 1
    for packer in packers.values():
        if packer.rows:
            yield _batch(plan, packer.rows, packer.routing), None


def _batch(plan: WritePlan, rows: list[tuple], routing: list[bytes] | None) -> Any:
    from cassandra.query import BatchStatement, BatchType

    batch = BatchStatement(batch_type=BatchType.UNLOGGED)
    # Pre-serialised values skip BoundStatement.bind(), the client's main cost per row;
    # the driver writes them to the wire as they are.
    batch._statements_and_parameters = list(zip(repeat(True), repeat(plan.insert.query_id), rows))
    batch.routing_key = routing  # token-aware: a replica of every partition in the batch
    batch.keyspace = plan.keyspace
    batch.is_idempotent = True  # an upsert: safe to retry
    return batch


def _partitions(plan: WritePlan, frame: pd.DataFrame, bucket: str, bucket_ms: np.ndarray) -> list:
    """``(table, *key values, bucket ms)`` of each partition ``frame`` writes to."""
    keys = [c for c in plan.spec.partition_key if c != bucket]
    pairs = pd.DataFrame({**{k: frame[k].to_numpy(dtype=object) for k in keys}, bucket: bucket_ms})
    rows = pairs.drop_duplicates().itertuples(index=False, name=None)
    return [(plan.spec.name, *row[:-1], int(row[-1])) for row in rows]


def _index_batches(plan: WritePlan, partitions: list[tuple]) -> Iterator[tuple]:
    """``partition_index`` upserts, packed by replica set like the rows they index."""
    from cassandra.query import BatchStatement, BatchType

    groups: dict[Hashable, list[tuple[list[bytes], tuple]]] = {}
    for table, *key, bucket_ms in partitions:
        entry = (table, index_key(key), bucket_ms)
        parts = [entry[0].encode(), entry[1].encode()]
        groups.setdefault(plan.replica_set(parts), []).append((parts, entry))
    for members in groups.values():
        for lo in range(0, len(members), BATCH_PARTITIONS):
            batch = BatchStatement(batch_type=BatchType.UNLOGGED)
            for _parts, entry in members[lo : lo + BATCH_PARTITIONS]:
                batch.add(plan.index_insert, entry)
            batch.routing_key = members[lo][0]
            batch.keyspace = plan.keyspace
            batch.is_idempotent = True
            yield batch, None


def write_frame(
    session: Any,
    plan: WritePlan,
    rows: pd.DataFrame,
    *,
    on_progress: Callable[[int], object] | None = None,
) -> int:
    """Upsert ``rows`` (contract columns, bucket derived here); return rows written."""
    return write_frames(session, [(plan, rows)], on_progress=on_progress)[0]


def write_frames(
    session: Any,
    writes: Sequence[tuple[WritePlan, pd.DataFrame]],
    *,
    on_progress: Callable[[int], object] | None = None,
) -> list[int]:
    """Upsert several tables' rows together; return the rows written to each.

    Chunk by chunk, the ``partition_index`` rows of every table go out in one concurrent
    wave, then the rows of every table in another: a live batch that stores readings,
    heartbeats and anomalies waits for two round trips, not two per table.
    """
    with collector_paused():
        return _write_frames(session, writes, on_progress)


def _write_frames(
    session: Any,
    writes: Sequence[tuple[WritePlan, pd.DataFrame]],
    on_progress: Callable[[int], object] | None,
) -> list[int]:
    written = [0] * len(writes)
    for lo in range(0, max((len(rows) for _, rows in writes), default=0), CHUNK_ROWS):
        chunks = [
            (i, plan, rows.iloc[lo : lo + CHUNK_ROWS])
            for i, (plan, rows) in enumerate(writes)
            if len(rows) > lo
        ]
        prepared = [_prepared_chunk(plan, chunk) for _, plan, chunk in chunks]
        # The index is written first: rows are never unreachable by an open-range read.
        run_concurrent(session, (b for p in prepared for b in _index_batches(p.plan, p.fresh)))
        for p in prepared:
            if p.plan.index_memory is not None:
                p.plan.index_memory.remember(p.fresh)
        concurrency = max(plan.concurrency for _, plan, _ in chunks)
        row_batches = (b for p in prepared for b in _batches(p.plan, p.encoded, p.codes))
        run_concurrent(session, row_batches, concurrency)
        for i, _, chunk in chunks:
            written[i] += len(chunk)
            if on_progress is not None:
                on_progress(len(chunk))
    return written


@dataclass
class _PreparedChunk:
    """One table's chunk, serialised: its new index partitions and its encoded rows."""

    plan: WritePlan
    fresh: list[tuple]
    encoded: list[list]
    codes: np.ndarray


def _prepared_chunk(plan: WritePlan, chunk: pd.DataFrame) -> _PreparedChunk:
    spec = plan.spec
    bucket = bucket_column(spec)
    memory = plan.index_memory if plan.index_memory is not None else IndexMemory()
    fresh: list[tuple] = []
    if bucket is not None:
        source_ms, _ = epoch_ms(chunk[spec.bucket_source], spec.bucket_source)
        width = spec.bucket_ms
        bucket_ms = source_ms // width * width
        chunk = chunk.assign(
            **{bucket: pd.DatetimeIndex(bucket_ms.astype("datetime64[ms]")).tz_localize("UTC")}
        )
        fresh = memory.new(_partitions(plan, chunk, bucket, bucket_ms))
    chunk, codes = _partition_order(chunk, list(spec.partition_key))
    encoded = [encode_column(chunk[c], spec.columns[c], c) for c in plan.insert_columns]
    return _PreparedChunk(plan, fresh, encoded, codes)
