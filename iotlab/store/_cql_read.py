"""The Cassandra read path: enumerate partitions, read them concurrently, build a frame.

Each (partition, bucket) is one query; all of them run with a bound on the bulk
session, whose pages arrive as NumPy arrays. Partition-key columns are not
selected (they are constants of the query) but filled in from the key, so the
only per-row Python objects are those of text value columns.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from iotlab.errors import ValidationError
from iotlab.store._cql_codec import decode_pages
from iotlab.store._cql_io import run_concurrent
from iotlab.store._cql_schema import quote
from iotlab.store.schema import TableSpec, bucket_column

__all__ = ["empty_frame", "key_tuples", "select_list", "to_pages"]

#: rows per page of a bulk read; one readings partition (a day at 1 Hz) is 86,400
FETCH_SIZE = 50_000
#: a closed range spanning more buckets than this asks partition_index which hold rows
MAX_ENUMERATED_BUCKETS = 64


def key_tuples(spec: TableSpec, key: Mapping[str, object] | None) -> list[tuple]:
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
        statements.append((bound, None))
    results = run_concurrent(session, statements)
    pages: list[dict] = []
    counts: list[int] = []
    for _success, result in results:
        got = to_pages(result, selected)
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
