"""Values crossing between pandas and SQLite, shared by the store and its bulk path.

:mod:`iotlab.store.sqlite` and :mod:`iotlab.store._sqlite_ingest` both use these; keeping
them here lets the bulk path depend on neither the store class nor the other way round.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

import numpy as np
import pandas as pd

from iotlab.errors import ValidationError

__all__ = ["insert_many", "to_sql_values"]

_ROWS_PER_STATEMENT = 500  # measured: 200 to 1,000 rows a statement are equally fast


def insert_many(conn: sqlite3.Connection, head: str, columns: Sequence[Sequence[object]]) -> None:
    """Run ``head`` (``INSERT ... VALUES``) for the rows given as column lists.

    Rows go in order, a few hundred per statement, so with ``INSERT OR REPLACE`` a later
    duplicate still wins.
    """
    n_params = len(columns)
    n_rows = len(columns[0]) if columns else 0
    limit = conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    per_statement = max(1, min(_ROWS_PER_STATEMENT, limit // max(n_params, 1)))
    flat: list[object] = [None] * (n_params * n_rows)
    for i, column in enumerate(columns):
        flat[i::n_params] = column
    row = f"({', '.join('?' * n_params)})"
    full = head + ", ".join([row] * per_statement)
    for first in range(0, n_rows, per_statement):
        params = flat[n_params * first : n_params * (first + per_statement)]
        count = len(params) // n_params
        conn.execute(full if count == per_statement else head + ", ".join([row] * count), params)


def to_sql_values(column: pd.Series, kind: str, name: str) -> np.ndarray:
    """A column as a NumPy array of SQLite-ready values (object where NULLs are possible)."""
    if kind == "timestamp":
        if not isinstance(column.dtype, pd.DatetimeTZDtype):
            raise ValidationError(
                f"must be tz-aware datetime64 (UTC), got {column.dtype}", field=name
            )
        ms = pd.DatetimeIndex(column.astype("datetime64[ms, UTC]")).asi8.copy()
        missing = column.isna().to_numpy()
        if missing.any():
            values = ms.astype(object)
            values[missing] = None
            return values
        return ms
    if kind in ("int", "bool"):
        if column.isna().any():
            return column.astype(object).where(column.notna(), None).to_numpy()
        return column.to_numpy(dtype="int64")
    if kind == "double":
        values = column.to_numpy(dtype="float64", na_value=np.nan)
        return values  # SQLite stores NaN as NULL
    if column.isna().any():
        return column.astype(object).where(column.notna(), None).to_numpy()
    return column.astype(str).to_numpy(dtype=object)
