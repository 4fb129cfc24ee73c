"""Backend-neutral validation of readings and heartbeats before they are written.

Every check is vectorised and gives each bad row one reason (the first check it fails);
the valid rows of the batch are still written. Whole-batch problems (a required column
is missing) raise :class:`~iotlab.errors.ValidationError` instead.

Rules
-----
- ``ts`` must carry a time zone. A naive timestamp is **rejected** with the reason
  ``"naive timestamp: give a time zone"`` (guessing a zone would silently shift data);
  aware timestamps in another zone are converted to UTC. Strings are parsed (ISO 8601,
  with ``Z`` or an offset); what cannot be parsed is rejected as ``"unparseable timestamp"``.
- ``ts`` must lie in pandas' nanosecond range (years 1678-2261); with ``not_after``,
  also no later than that (the live service's guard against device clocks running ahead).
- ``value`` must be a finite number: NaN/missing, infinite and unparseable values are
  rejected, and so are magnitudes over 1e300 (a roll-up sum of them would overflow).
  Heartbeat metrics may be missing (NaN: the device did not report it) but not infinite,
  over 1e300 or unparseable.
- Missing ``quality`` becomes 100 and missing ``status`` becomes ``"ok"``; ``quality``
  must be a whole number in the 32-bit range (1e20 is refused, not wrapped).
- ``device_id``, ``sensor_id`` and ``status`` must be UTF-8 text (no lone surrogates) of
  at most 1024 bytes.
- Duplicate keys within a batch: the last row wins; earlier ones are rejected with
  ``"duplicate key in batch (a later row wins)"``.
- Readings of a (device, sensor) not in the ``sensors`` projection are rejected with
  ``"sensor not provisioned"`` unless ``require_provisioned=False``; heartbeats of a
  device not in the ``devices`` projection likewise (``"device not provisioned"``).

Rejected rows keep their original columns plus ``row`` (position in the input) and
``reason``.

Examples
--------
>>> import pandas as pd
>>> frame = pd.DataFrame({"device_id": ["d1", "d1"], "sensor_id": ["t", "t"],
...     "ts": ["2026-01-01T00:00:00Z", "2026-01-01 00:01"], "value": [1.0, 2.0]})
>>> clean, rejected = validate_readings(frame, require_provisioned=False)
>>> clean[["ts", "value", "quality", "status"]]
                         ts  value  quality status
0 2026-01-01 00:00:00+00:00    1.0      100     ok
>>> rejected[["row", "reason"]]
   row                             reason
0    1  naive timestamp: give a time zone
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from iotlab._limits import MAX_ABS_VALUE, QUALITY_MAX, QUALITY_MIN, text_problem
from iotlab._reasons import NAIVE_TIMESTAMP
from iotlab.errors import ValidationError

if TYPE_CHECKING:
    from iotlab.store.base import Store

__all__ = [
    "DUPLICATE_REASON",
    "FUTURE_REASON",
    "METRIC_COLUMNS",
    "NAIVE_REASON",
    "NOT_PROVISIONED",
    "empty_rejected",
    "provisioned_keys",
    "validate_metrics",
    "validate_readings",
]

NAIVE_REASON = NAIVE_TIMESTAMP
#: Reason for rows of unprovisioned sensors (readings) or devices (heartbeats), by table.
NOT_PROVISIONED = {
    "readings": "sensor not provisioned",
    "device_metrics": "device not provisioned",
}
_PROJECTIONS = {
    "readings": ("sensors", ["device_id", "sensor_id"]),
    "device_metrics": ("devices", ["device_id"]),
}
DUPLICATE_REASON = "duplicate key in batch (a later row wins)"
#: Reason for rows dated after ``not_after`` (a device clock running ahead).
FUTURE_REASON = "ts in the future (later than the receive time allows)"
_RANGE_REASON = "ts outside the supported range (years 1678-2261)"
_TS_LOW = pd.Timestamp.min.ceil("ms").tz_localize("UTC")
_TS_HIGH = pd.Timestamp.max.floor("ms").tz_localize("UTC")
METRIC_COLUMNS = ("cpu", "memory", "battery", "signal")
_TZ_SUFFIX = re.compile(r"(?:Z|[+-]\d\d(?::?\d\d)?)$", re.IGNORECASE)


def empty_rejected(columns: Iterable[str] = ()) -> pd.DataFrame:
    """An empty rejected frame: ``columns`` plus ``row`` and ``reason``.

    Examples
    --------
    >>> list(empty_rejected(["device_id"]).columns)
    ['device_id', 'row', 'reason']
    """
    empty = {c: np.array([], dtype=object) for c in columns if c not in ("row", "reason")}
    return pd.DataFrame(
        {**empty, "row": np.array([], dtype=np.int64), "reason": pd.array([], dtype="str")}
    )


def validate_readings(
    frame: pd.DataFrame,
    store: Store | None = None,
    *,
    require_provisioned: bool = True,
    known: pd.DataFrame | None = None,
    not_after: pd.Timestamp | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split raw readings into rows ready for the ``readings`` table and rejected rows.

    Parameters
    ----------
    frame
        Columns ``device_id, sensor_id, ts, value`` and optionally ``quality, status``.
    store
        Where to look up provisioned sensors; required when ``require_provisioned``.
    require_provisioned
        Reject readings of sensors missing from the ``sensors`` projection.
    known
        That projection's ``device_id, sensor_id`` if the caller holds a copy (the live
        service does); read from ``store`` otherwise.
    not_after
        Reject rows dated later than this (UTC), with :data:`FUTURE_REASON`.

    Returns
    -------
    clean, rejected
        ``clean`` has exactly the readings columns (``ts`` as ``datetime64[ms, UTC]``);
        ``rejected`` is described in the module docstring.
    """
    _require(frame, ("device_id", "sensor_id", "ts", "value"))
    reasons = _Reasons(len(frame))
    device = _ids(frame["device_id"], "device_id", reasons)
    sensor = _ids(frame["sensor_id"], "sensor_id", reasons)
    ts = _timestamps(frame["ts"], reasons, not_after)
    value = _numbers(frame["value"], "value", reasons, allow_missing=False)
    quality = _quality(frame, reasons)
    status = (
        frame["status"].astype(object).where(frame["status"].notna(), "ok").astype(str)
        if "status" in frame
        else pd.Series("ok", index=frame.index, dtype=object)
    )
    _check_text(status.to_numpy(dtype=object), "status", reasons)
    clean = pd.DataFrame(
        {
            "device_id": device,
            "sensor_id": sensor,
            "ts": ts,
            "value": value,
            "quality": quality,
            "status": status.to_numpy(dtype=object),
        }
    )
    if require_provisioned:
        if known is None:
            known = provisioned_keys(store, "readings")
        _reject_unknown(
            clean, ["device_id", "sensor_id"], known, NOT_PROVISIONED["readings"], reasons
        )
    _reject_duplicates(clean, ["device_id", "sensor_id", "ts"], reasons)
    return _split(frame, clean, reasons, int_columns=("quality",))


def validate_metrics(
    frame: pd.DataFrame,
    store: Store | None = None,
    *,
    require_provisioned: bool = True,
    known: pd.DataFrame | None = None,
    not_after: pd.Timestamp | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split raw heartbeats into rows for ``device_metrics`` and rejected rows.

    ``frame`` needs ``device_id``, ``ts`` and at least one metric column; missing metric
    columns are stored as NaN.
    The other parameters are those of :func:`validate_readings`.

    Examples
    --------
    >>> import pandas as pd
    >>> beats = pd.DataFrame({"device_id": ["d1"], "ts": pd.to_datetime(["2026-01-01"], utc=True),
    ...     "cpu": [float("inf")]})
    >>> validate_metrics(beats, require_provisioned=False)[1]["reason"].tolist()
    ['cpu is infinite']
    """
    _require(frame, ("device_id", "ts"))
    if not any(name in frame.columns for name in METRIC_COLUMNS):
        # Readings given as heartbeats would land as all-NaN heartbeats over real ones.
        raise ValidationError(
            f"no heartbeat metric column: need one or more of {', '.join(METRIC_COLUMNS)} "
            f"(have {', '.join(map(str, frame.columns))})",
            field="cpu",
        )
    reasons = _Reasons(len(frame))
    clean = pd.DataFrame(
        {
            "device_id": _ids(frame["device_id"], "device_id", reasons),
            "ts": _timestamps(frame["ts"], reasons, not_after),
        }
    )
    for name in METRIC_COLUMNS:
        column = frame[name] if name in frame else pd.Series(np.nan, index=frame.index)
        clean[name] = _numbers(column, name, reasons, allow_missing=True)
    if require_provisioned:
        if known is None:
            known = provisioned_keys(store, "device_metrics")
        _reject_unknown(clean, ["device_id"], known, NOT_PROVISIONED["device_metrics"], reasons)
    _reject_duplicates(clean, ["device_id", "ts"], reasons)
    return _split(frame, clean, reasons)


# -- the checks ------------------------------------------------------------------------------
class _Reasons:
    """The first reason each row failed, or ``None``."""

    def __init__(self, n: int) -> None:
        self.values = np.full(n, None, dtype=object)
        self._failed = np.zeros(n, dtype=bool)  # comparing the object array is far slower

    def add(self, mask: np.ndarray, reason: str | np.ndarray) -> None:
        fresh = np.asarray(mask, dtype=bool) & ~self._failed
        if not fresh.any():
            return
        if isinstance(reason, np.ndarray):
            self.values[fresh] = reason[fresh]
        else:
            self.values[fresh] = reason
        self._failed |= fresh

    @property
    def ok(self) -> np.ndarray:
        return ~self._failed


def _require(frame: pd.DataFrame, columns: Sequence[str]) -> None:
    if not isinstance(frame, pd.DataFrame):
        raise ValidationError(f"expected a pandas DataFrame, got {type(frame).__name__}")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValidationError(
            f"required column(s) missing: {', '.join(missing)} "
            f"(have {', '.join(map(str, frame.columns))})",
            field=missing[0],
        )


def _ids(column: pd.Series, name: str, reasons: _Reasons) -> np.ndarray:
    missing = column.isna().to_numpy()
    text = column.astype(object).where(~missing, "").astype(str).to_numpy(dtype=object)
    reasons.add(missing | (text == ""), f"missing {name}")
    _check_text(text, name, reasons)
    return text


def _check_text(text: np.ndarray, name: str, reasons: _Reasons) -> None:
    """Reject text no store can hold: lone surrogates, over-long identifiers."""
    codes, unique = pd.factorize(text)  # a batch has few distinct ids: check each once
    problems = [text_problem(str(u), name) for u in unique]
    if not any(problems):
        return
    failed = np.array([p is not None for p in problems] + [False])[codes]  # -1: missing
    reasons.add(failed, np.array([*problems, None], dtype=object)[codes])


def _timestamps(
    column: pd.Series, reasons: _Reasons, not_after: pd.Timestamp | None = None
) -> pd.DatetimeIndex:
    """UTC epoch-ms datetimes; naive, missing, unparseable, out-of-range and (with
    ``not_after``) future values get a reason."""
    n = len(column)
    missing = column.isna().to_numpy()
    if isinstance(column.dtype, pd.DatetimeTZDtype):
        parsed = column.dt.tz_convert("UTC")
    elif pd.api.types.is_datetime64_dtype(column.dtype):
        reasons.add(np.ones(n, dtype=bool) & ~missing, NAIVE_REASON)
        parsed = column.dt.tz_localize("UTC")
    else:
        parsed, naive, bad, outside = _parse_objects(column)
        reasons.add(outside, _RANGE_REASON)
        reasons.add(bad & ~missing, "unparseable timestamp")
        reasons.add(naive & ~missing, NAIVE_REASON)
    reasons.add(missing, "missing timestamp")
    parsed = pd.DatetimeIndex(parsed).tz_convert("UTC")
    outside = np.asarray((parsed < _TS_LOW) | (parsed > _TS_HIGH), dtype=bool)
    reasons.add(outside, _RANGE_REASON)
    if outside.any():
        parsed = pd.DatetimeIndex(parsed.where(~outside))  # out of range: NaT
    if not_after is not None:
        reasons.add(np.asarray(parsed > not_after, dtype=bool), FUTURE_REASON)
    return parsed.as_unit("ms")


def _parse_objects(column: pd.Series) -> tuple[pd.Series, np.ndarray, np.ndarray, np.ndarray]:
    values = column.astype(object)
    is_text = values.map(lambda v: isinstance(v, str)).to_numpy(dtype=bool)
    is_time = values.map(lambda v: hasattr(v, "tzinfo") and hasattr(v, "year")).to_numpy(bool)
    text = values.where(is_text, None).astype(str)
    naive = is_text & ~text.str.strip().str.contains(_TZ_SUFFIX).to_numpy(dtype=bool)
    naive |= is_time & values.map(lambda v: getattr(v, "tzinfo", None) is None).to_numpy(bool)
    parsed = pd.Series(pd.NaT, index=column.index, dtype="datetime64[ns, UTC]")
    out_of_range = np.zeros(len(column), dtype=bool)
    usable = is_text | is_time
    if usable.any():
        converted = pd.to_datetime(
            values[usable].map(lambda v: v.strip() if isinstance(v, str) else v),
            utc=True,
            errors="coerce",
            format="mixed",
        )
        # Out of the nanosecond range, pandas parses to a coarser unit: keep it as a
        # range error (not a failure of the whole frame when stored into ``parsed``).
        outside = ((converted < _TS_LOW) | (converted > _TS_HIGH)).to_numpy(dtype=bool)
        out_of_range[usable] = outside
        parsed.loc[usable] = converted.where(~outside, pd.NaT).dt.as_unit("ns")
    bad = parsed.isna().to_numpy() & ~out_of_range
    return parsed, naive & ~bad & ~out_of_range, bad, out_of_range


def _numbers(
    column: pd.Series, name: str, reasons: _Reasons, *, allow_missing: bool
) -> np.ndarray:
    missing = column.isna().to_numpy()
    if pd.api.types.is_bool_dtype(column.dtype) or not (
        pd.api.types.is_numeric_dtype(column.dtype) or column.dtype == object
    ):
        numbers = pd.to_numeric(column.astype(object), errors="coerce")
    else:
        numbers = pd.to_numeric(column, errors="coerce")
    values = numbers.to_numpy(dtype="float64", na_value=np.nan)
    reasons.add(np.isnan(values) & ~missing, f"unparseable {name}")
    if not allow_missing:
        reasons.add(missing, f"{name} is missing or NaN")
    reasons.add(np.isinf(values), f"{name} is infinite")
    with np.errstate(invalid="ignore"):
        too_big = np.abs(values) > MAX_ABS_VALUE
    reasons.add(too_big, f"{name} magnitude over {MAX_ABS_VALUE:g} (roll-up sums would overflow)")
    return values


def _quality(frame: pd.DataFrame, reasons: _Reasons) -> np.ndarray:
    if "quality" not in frame:
        return np.full(len(frame), 100, dtype="int64")
    column = frame["quality"]
    missing = column.isna().to_numpy()
    values = pd.to_numeric(column.astype(object), errors="coerce").to_numpy(
        dtype="float64", na_value=np.nan
    )
    whole = np.isfinite(values) & (values == np.round(values))
    reasons.add(~missing & ~whole, "quality must be an integer")
    fits = whole & (values >= QUALITY_MIN) & (values <= QUALITY_MAX)
    reasons.add(~missing & ~fits, "quality outside the 32-bit integer range")
    return np.where(fits, values, 100).astype("int64")


def provisioned_keys(store: Store | None, table: str) -> pd.DataFrame:
    """The keys rows of ``table`` (``readings`` or ``device_metrics``) must be provisioned
    under: ``device_id, sensor_id`` of the ``sensors`` projection, or ``device_id`` of
    ``devices``."""
    if store is None:
        raise ValidationError("a store is needed to check provisioning", field="store")
    projection, columns = _PROJECTIONS[table]
    return store.read_rows(projection, columns=columns).drop_duplicates()


def _reject_unknown(
    clean: pd.DataFrame, columns: list[str], known: pd.DataFrame, reason: str, reasons: _Reasons
) -> None:
    keys = pd.MultiIndex.from_frame(clean[columns].astype(object))
    allowed = pd.MultiIndex.from_frame(known[columns].astype(object))
    reasons.add(~keys.isin(allowed), reason)


def _reject_duplicates(clean: pd.DataFrame, key: list[str], reasons: _Reasons) -> None:
    """Among rows still valid, every row with a later duplicate key is rejected."""
    ok = reasons.ok
    duplicated = np.zeros(len(clean), dtype=bool)
    # Integer codes hash far faster than text and tz-aware timestamps.
    codes = pd.DataFrame(
        {c: pd.factorize(clean[c].to_numpy()[ok])[0] for c in key if c != "ts"}
        | {"ts": clean["ts"].to_numpy("datetime64[ms]").view("int64")[ok]},
        copy=False,
    )
    duplicated[ok] = codes.duplicated(keep="last").to_numpy()
    reasons.add(duplicated, DUPLICATE_REASON)


def _split(
    frame: pd.DataFrame,
    clean: pd.DataFrame,
    reasons: _Reasons,
    *,
    int_columns: Sequence[str] = (),
) -> tuple[pd.DataFrame, pd.DataFrame]:
    ok = reasons.ok
    good = clean.loc[ok].reset_index(drop=True)
    for name in int_columns:
        good[name] = good[name].astype("int64")
    for name in ("device_id", "sensor_id", "status"):
        if name in good:
            good[name] = good[name].astype("str")
    if ok.all():
        return good, empty_rejected(frame.columns)
    bad = frame.loc[~ok].copy()
    bad["row"] = np.flatnonzero(~ok)
    bad["reason"] = pd.Series(reasons.values[~ok], index=bad.index, dtype="str")
    return good, bad.reset_index(drop=True)
