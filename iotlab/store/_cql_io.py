"""The Cassandra bulk write and read paths.

Write: rows are sorted by partition, serialised column by column
(:mod:`iotlab.store._cql_codec`), cut into small UNLOGGED batches that each hold
one partition (so a batch is one mutation on one replica set and routes by token),
and sent with a bounded number in flight (``execute_concurrent``). Batches are
upserts, so they are marked idempotent and the retry policy may retry them.

Read: one query per (partition, bucket), run concurrently with a bound; each
result page arrives as NumPy arrays on the bulk session.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from itertools import repeat
from typing import Any

import numpy as np
import pandas as pd

from iotlab.errors import StoreError
from iotlab.store._cql_codec import encode_column, epoch_ms
from iotlab.store.schema import TableSpec, bucket_column

__all__ = [
    "WritePlan",
    "bucket_column",
    "index_key",
    "run_concurrent",
    "write_frame",
]

#: rows per UNLOGGED batch (all of one partition); keeps batches under the 5 KiB warning
BATCH_ROWS = 50
BATCH_BYTES = 4000
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


def run_concurrent(session: Any, statements: Any, concurrency: int = CONCURRENCY) -> list:
    """Execute ``(statement, params)`` pairs with a bound; driver errors become StoreError."""
    from cassandra import DriverException
    from cassandra.concurrent import execute_concurrent

    try:
        return execute_concurrent(
            session, statements, concurrency=concurrency, raise_on_first_error=True
        )
    except DriverException as exc:
        raise StoreError(f"Cassandra request failed: {type(exc).__name__}: {exc}") from exc


@dataclass
class WritePlan:
    """What a table's write needs: its prepared INSERTs and settings."""

    keyspace: str
    spec: TableSpec
    insert: Any  # PreparedStatement for every column, bucket included
    insert_columns: tuple[str, ...]
    index_insert: Any  # PreparedStatement on partition_index
    batch_rows: int = BATCH_ROWS
    concurrency: int = CONCURRENCY


def _partition_order(frame: pd.DataFrame, keys: list[str]) -> tuple[pd.DataFrame, np.ndarray]:
    """Rows sorted by partition (stable, so later duplicates still win) and group ids."""
    codes = frame.groupby(keys, sort=False, dropna=False).ngroup().to_numpy()
    if len(codes) > 1 and (np.diff(codes) < 0).any():
        order = np.argsort(codes, kind="stable")
        return frame.iloc[order], codes[order]
    return frame, codes


def _batches(plan: WritePlan, encoded: list[list], codes: np.ndarray) -> Iterator[tuple]:
    """UNLOGGED single-partition batches of pre-serialised rows."""
    from cassandra.query import BatchStatement, BatchType

    rows = list(zip(*encoded))
    if not rows:
        return
    pk_positions = [plan.insert_columns.index(c) for c in plan.spec.partition_key]
    row_bytes = sum(len(v) for v in rows[0] if v is not None) + 4 * len(rows[0])
    per_batch = max(1, min(plan.batch_rows, BATCH_BYTES // max(row_bytes, 1)))
    query_id = plan.insert.query_id
    starts = [0, *(np.flatnonzero(np.diff(codes)) + 1).tolist()]
    ends = [*starts[1:], len(rows)]
    for start, end in zip(starts, ends):
        parts = [rows[start][i] for i in pk_positions]
        for lo in range(start, end, per_batch):
            batch = BatchStatement(batch_type=BatchType.UNLOGGED)
            # Pre-serialised values skip BoundStatement.bind(), the client's main cost
            # per row; the driver writes them to the wire as they are.
            batch._statements_and_parameters = list(
                zip(repeat(True), repeat(query_id), rows[lo : min(lo + per_batch, end)])
            )
            batch.routing_key = parts  # token-aware routing of the whole batch
            batch.keyspace = plan.keyspace
            batch.is_idempotent = True  # an upsert: safe to retry
            yield batch, None


def _index_entries(
    plan: WritePlan, frame: pd.DataFrame, bucket: str, bucket_ms: np.ndarray, seen: set
) -> list[tuple[str, str, int]]:
    keys = [c for c in plan.spec.partition_key if c != bucket]
    pairs = pd.DataFrame({**{k: frame[k].astype(str).to_numpy() for k in keys}, bucket: bucket_ms})
    entries = []
    for row in pairs.drop_duplicates().itertuples(index=False):
        entry = (plan.spec.name, index_key(row[:-1]), int(row[-1]))
        if entry not in seen:
            seen.add(entry)
            entries.append(entry)
    return entries


def write_frame(
    session: Any,
    plan: WritePlan,
    rows: pd.DataFrame,
    *,
    on_progress: Callable[[int], None] | None = None,
) -> int:
    """Upsert ``rows`` (contract columns, bucket derived here); return rows written."""
    spec = plan.spec
    bucket = bucket_column(spec)
    seen: set = set()
    written = 0
    for lo in range(0, len(rows), CHUNK_ROWS):
        chunk = rows.iloc[lo : lo + CHUNK_ROWS]
        bucket_ms = None
        if bucket is not None:
            source_ms, mask = epoch_ms(chunk[spec.bucket_source], spec.bucket_source)
            width = spec.bucket_seconds * 1000
            bucket_ms = source_ms // width * width
            chunk = chunk.assign(
                **{bucket: pd.DatetimeIndex(bucket_ms.astype("datetime64[ms]")).tz_localize("UTC")}
            )
            # The index is written first: rows are never unreachable by an open-range read.
            entries = _index_entries(plan, chunk, bucket, bucket_ms, seen)
            run_concurrent(session, ((plan.index_insert, e) for e in entries))
        chunk, codes = _partition_order(chunk, list(spec.partition_key))
        encoded = [encode_column(chunk[c], spec.columns[c], c) for c in plan.insert_columns]
        run_concurrent(session, _batches(plan, encoded, codes), plan.concurrency)
        written += len(chunk)
        if on_progress is not None:
            on_progress(len(chunk))
    return written
