"""UTC timestamp helpers shared by every layer.

The rule for naive input (documented in the README): a timestamp without a time
zone is *rejected* at data boundaries (ingest), because guessing a zone silently
shifts data; parameters such as ``start``/``end`` given as naive values are read
as UTC, because they are typed by a person into a notebook and UTC is the
platform's only zone.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from iotlab.errors import ValidationError

TimeLike = str | dt.datetime | dt.date | pd.Timestamp | np.datetime64 | int | float

__all__ = ["TimeLike", "to_epoch_ms", "utc_timestamp", "utc_timestamp_or_none"]


def utc_timestamp(value: TimeLike, *, field: str = "time") -> pd.Timestamp:
    """Parse a user-supplied time parameter as a tz-aware UTC ``Timestamp``.

    Naive values are taken as UTC; aware values are converted to UTC.

    Examples
    --------
    >>> utc_timestamp("2026-01-01")
    Timestamp('2026-01-01 00:00:00+0000', tz='UTC')
    >>> utc_timestamp("2026-01-01T01:00+01:00")
    Timestamp('2026-01-01 00:00:00+0000', tz='UTC')
    """
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"cannot parse {value!r} as a time", field=field) from exc
    if ts is pd.NaT:
        raise ValidationError("is missing (NaT)", field=field)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def utc_timestamp_or_none(value: TimeLike | None, *, field: str = "time") -> pd.Timestamp | None:
    """Like :func:`utc_timestamp` but passes ``None`` through.

    Examples
    --------
    >>> utc_timestamp_or_none(None) is None
    True
    """
    return None if value is None else utc_timestamp(value, field=field)


def to_epoch_ms(ts: pd.Series | pd.DatetimeIndex) -> np.ndarray:
    """Convert tz-aware timestamps to int64 epoch milliseconds (sub-ms is truncated).

    Examples
    --------
    >>> to_epoch_ms(pd.DatetimeIndex(["1970-01-01 00:00:01.5"], tz="UTC")).tolist()
    [1500]
    """
    values = ts.dt.tz_convert("UTC") if isinstance(ts, pd.Series) else ts.tz_convert("UTC")
    return np.asarray(values.astype("datetime64[ms, UTC]").astype("int64"))
