"""Column-at-a-time conversion between pandas and the CQL wire format.

Writes: each column becomes a list of already-serialised CQL values (``bytes`` or
``None`` for null), built with NumPy (``astype('>i8').view('V8').tolist()`` turns a
column into big-endian 8-byte values in C), so a million rows cost a few list
operations instead of a million driver ``bind()`` calls.

Reads: the bulk session's NumPy protocol handler returns each page as a dict of
(masked) arrays; :func:`page_columns` turns them into the contract dtypes.
Timestamps are selected as ``toUnixTimestamp(col)`` (bigint) because the handler
only has NumPy types for numbers; a ``timestamp`` column would arrive as one Python
``datetime`` per row.

Examples
--------
>>> import pandas as pd
>>> encode_column(pd.Series([1, 2]), "int", "quality")
[b'\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x01', b'\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x02']
>>> encode_column(pd.Series(["a", None]), "text", "status")
[b'a', None]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from iotlab._time import to_epoch_ms
from iotlab.errors import ValidationError

__all__ = ["decode_pages", "encode_column", "epoch_ms", "python_value"]

_NAT = np.iinfo(np.int64).min


def epoch_ms(series: pd.Series, field: str) -> tuple[np.ndarray, np.ndarray]:
    """``(int64 epoch ms, null mask)`` of a tz-aware timestamp column."""
    if not isinstance(series.dtype, pd.DatetimeTZDtype):
        raise ValidationError(
            f"must be tz-aware UTC timestamps (datetime64[ms, UTC]), got {series.dtype}",
            field=field,
        )
    mask = series.isna().to_numpy()
    return to_epoch_ms(series), mask


def _fixed_width(values: np.ndarray, dtype: str, mask: np.ndarray | None) -> list:
    width = np.dtype(dtype).itemsize
    out = np.ascontiguousarray(values, dtype=dtype).view(f"V{width}").tolist()
    if mask is not None and mask.any():
        for i in np.flatnonzero(mask).tolist():
            out[i] = None
    return out


def encode_column(series: pd.Series, logical: str, field: str) -> list:
    """Serialise one column to CQL values (``bytes``; ``None`` is null).

    Doubles keep NaN as NaN (pandas cannot tell NaN from null in float64); the other
    types send null for missing values.
    """
    if logical == "text":
        codes, uniques = pd.factorize(series, use_na_sentinel=True)
        table = np.array([*(str(u).encode("utf-8") for u in uniques), None], dtype=object)
        return table[codes].tolist()  # code -1 picks the trailing None
    if logical == "timestamp":
        values, mask = epoch_ms(series, field)
        return _fixed_width(values, ">i8", mask)
    mask = series.isna().to_numpy()
    try:
        if logical == "double":
            return _fixed_width(series.to_numpy("float64", na_value=np.nan), ">f8", None)
        if logical == "int":
            return _fixed_width(series.to_numpy("int64", na_value=0), ">i8", mask)
        if logical == "bool":
            return _fixed_width(series.to_numpy("bool", na_value=False), "?", mask)
    except (TypeError, ValueError) as exc:
        raise ValidationError(
            f"cannot store {series.dtype} as {logical}: {exc}", field=field
        ) from exc
    raise ValueError(f"unknown logical type {logical!r}")


def python_value(value: Any, logical: str) -> object:
    """One value as the driver binds it (timestamps as epoch ms); for small writes."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    if logical == "timestamp":
        ts = pd.Timestamp(value)
        if ts.tzinfo is None:
            raise ValidationError("must be tz-aware UTC", field=str(value))
        return int(ts.value // 1_000_000)
    if logical == "int":
        return int(value)
    if logical == "double":
        return float(value)
    if logical == "bool":
        return bool(value)
    return str(value)


def _as_array(chunks: list) -> np.ndarray:
    if len(chunks) == 1:
        return chunks[0]
    return (
        np.ma.concatenate(chunks)
        if any(np.ma.isMaskedArray(c) for c in chunks)
        else (np.concatenate(chunks))
    )


def _column(chunks: list, logical: str) -> object:
    data = _as_array(chunks)
    if data.dtype.kind == "O":
        if logical == "timestamp":  # plain session: ints from toUnixTimestamp
            values = pd.array(data.tolist(), dtype="Int64")
            ms = values.to_numpy("int64", na_value=_NAT)
            return pd.DatetimeIndex(ms.astype("datetime64[ms]")).tz_localize("UTC")
        if logical == "int":
            values = pd.array(data.tolist(), dtype="Int64")
            return values if values.isna().any() else values.to_numpy("int64")
        if logical == "double":
            return np.array([np.nan if v is None else v for v in data.tolist()], dtype="float64")
        if logical == "bool":
            values = pd.array(data.tolist(), dtype="boolean")
            return values if values.isna().any() else values.to_numpy("bool")
        return data
    mask = np.ma.getmaskarray(data) if np.ma.isMaskedArray(data) else None
    raw = np.ma.getdata(data)
    if logical == "timestamp":
        ms = raw.astype("int64", copy=False)
        if mask is not None and mask.any():
            ms = np.where(mask, _NAT, ms)
        return pd.DatetimeIndex(ms.astype("datetime64[ms]")).tz_localize("UTC")
    if logical == "double":
        values = raw.astype("float64", copy=False)
        return np.where(mask, np.nan, values) if mask is not None and mask.any() else values
    if logical == "int":
        values = raw.astype("int64", copy=False)
        if mask is not None and mask.any():
            return pd.arrays.IntegerArray(values, mask)
        return values
    return raw


def decode_pages(
    pages: Sequence[dict[str, np.ndarray]], columns: Sequence[str], types: dict[str, str]
) -> dict[str, object]:
    """Concatenate per-page column arrays and convert them to the contract dtypes."""
    return {c: _column([p[c] for p in pages], types[c]) for c in columns}
