"""The Cassandra read path: enumerate partitions, read them concurrently, build a frame.

Each (partition, bucket) is one query; all of them run with a bound on the bulk
session, whose pages arrive as NumPy arrays. Partition-key columns are not
selected (they are constants of the query) but filled in from the key, so the
only per-row Python objects are those of text value columns.
"""

from __future__ import annotations

import itertools
import logging
import random
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from iotlab.errors import ValidationError
from iotlab.store._cql_codec import decode_pages
from iotlab.store._cql_schema import quote
from iotlab.store.schema import TableSpec, bucket_column

__all__ = ["empty_frame", "fetch_pages", "key_tuples", "select_list", "to_pages"]

logger = logging.getLogger(__name__)

#: rows per page of a bulk read; one readings partition (a day at 1 Hz) is 86,400. Each
#: page is one request the node must answer within its read timeout (5 s by default):
#: pages of 50,000 rows timed out on a busy node, 20,000 did not.
FETCH_SIZE = 20_000
#: a closed range spanning more buckets than this asks partition_index which hold rows
MAX_ENUMERATED_BUCKETS = 64
#: partitions read at once at first: dozens at once made a single node time out (58 day
#: partitions of 86,400 rows); after a round with timeouts, the retries go at half that
READ_CONCURRENCY = 16
#: tries per partition read (timeouts, unavailable replicas), and the first backoff (s)
READ_ATTEMPTS = 6
READ_BACKOFF = 0.5


def key_tuples(spec: TableSpec, key: Mapping[str, Any] | None) -> list[tuple]:
    """Sorted partition keys (bucket excluded) that ``key`` names; lists expand.

    Examples
    --------
    >>> from iotlab.store.schema import TABLES
    >>> key_tuples(TABLES["readings"], {"device_id": "d1", "sensor_id": ["t", "h"]})
    [('d1', 'h'), ('d1', 't')]
    """
    bucket = bucket_column(spec)
    names = [c for c in spec.partition_key if c != bucket]
    key = dict(key or {})
    unknown = sorted(set(key) - set(names))
    missing = [c for c in names if c not in key]
    if unknown or missing:
        raise ValidationError(
            f"{spec.name} is read by its partition key ({', '.join(names) or 'none'}); "
            + (f"missing {', '.join(missing)}" if missing else f"unknown {', '.join(unknown)}"),
            field="key",
        )
    choices = []
    for name in names:
        value = key[name]
        values = [value] if isinstance(value, str) or np.ndim(value) == 0 else list(value)
        choices.append(sorted({str(v) for v in values}))
    return list(itertools.product(*choices))


def select_list(spec: TableSpec, columns: Sequence[str]) -> str:
    """CQL select expressions; timestamps as epoch-ms bigints (NumPy-decodable)."""
    exprs = []
    for c in columns:
        if spec.columns[c] == "timestamp":
            exprs.append(f"toUnixTimestamp({quote(c)}) AS {quote(c)}")
        else:
            exprs.append(quote(c))
    return ", ".join(exprs)


def fetch_pages(
    session: Any,
    statements: Sequence[Any],
    columns: Sequence[str],
    *,
    concurrency: int = READ_CONCURRENCY,
    attempts: int = READ_ATTEMPTS,
) -> list[list[dict[str, np.ndarray]]]:
    """The pages of each statement, at most ``concurrency`` in flight.

    A statement whose read times out or finds no replica (a busy or restarting node) is
    run again, all of its pages, up to ``attempts`` times in all, after a backoff with
    jitter and with half the concurrency of the round that failed (a node that timed out
    is overloaded); reads are idempotent. Other errors, and the last attempt's, are
    raised.
    """
    from cassandra.concurrent import execute_concurrent

    from iotlab.store._cql_errors import transient_errors

    transient = transient_errors()
    results: list[list[dict[str, np.ndarray]] | None] = [None] * len(statements)
    pending = list(range(len(statements)))
    for attempt in range(attempts):
        outcomes = execute_concurrent(
            session,
            [(statements[i], None) for i in pending],
            concurrency=concurrency,
            raise_on_first_error=False,
        )
        failed: list[int] = []
        for i, (ok, result) in zip(pending, outcomes):
            try:
                if not ok:
                    raise result
                results[i] = to_pages(result, columns)  # later pages are fetched here
            except transient:
                if attempt == attempts - 1:
                    raise
                failed.append(i)
        if not failed:
            break
        pending = failed
        concurrency = max(1, concurrency // 2)
        logger.warning(
            "%d of %d partition reads timed out; retrying them %d at a time",
            len(failed),
            len(statements),
            concurrency,
        )
        time.sleep(READ_BACKOFF * 2**attempt * random.uniform(0.5, 1.5))
    return [r if r is not None else [] for r in results]


def to_pages(result: Any, columns: Sequence[str]) -> list[dict[str, np.ndarray]]:
    """The pages of a driver result as dicts of arrays, from either session kind."""
    pages = []
    rows: list = []
    for item in result:
        if isinstance(item, Mapping):  # NumPy protocol handler: one dict per page
            pages.append(dict(item))
        else:
            rows.append(item)
    if rows:
        cols = list(zip(*rows))
        pages.append({c: np.array(v, dtype=object) for c, v in zip(columns, cols)})
    return pages


_EMPTY = {
    "text": "object",
    "int": "int64",
    "double": "float64",
    "timestamp": "datetime64[ms, UTC]",
    "bool": "bool",
}


def empty_frame(spec: TableSpec, columns: Sequence[str]) -> pd.DataFrame:
    """A zero-row frame with the contract dtypes."""
    return pd.DataFrame({c: pd.Series([], dtype=_EMPTY[spec.columns[c]]) for c in columns})


def read_partitions(
    session: Any,
    statement: Any,
    spec: TableSpec,
    requests: list[tuple[tuple, list]],
    key_names: Sequence[str],
    selected: Sequence[str],
    columns: Sequence[str],
) -> pd.DataFrame:
    """Run one bound query per request ``(key values, params)``; return the frame."""
    if not requests:
        return empty_frame(spec, columns)
    statements = []
    for _, params in requests:
        bound = statement.bind(params)
        bound.fetch_size = FETCH_SIZE
        statements.append(bound)
    pages: list[dict] = []
    counts: list[int] = []
    for got in fetch_pages(session, statements, selected):
        pages.extend(got)
        counts.append(sum(len(next(iter(p.values()))) for p in got) if got else 0)
    total = sum(counts)
    if total == 0:
        return empty_frame(spec, columns)
    data: dict[str, object] = {}
    for i, name in enumerate(key_names):
        values = np.array([k[i] for k, _ in requests], dtype=object)
        data[name] = np.repeat(values, counts)
    pages = [p for p in pages if len(next(iter(p.values())))]
    data.update(decode_pages(pages, selected, spec.columns))
    return pd.DataFrame({c: data[c] for c in columns})
