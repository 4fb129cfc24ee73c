"""Anomaly lifecycle: open -> acknowledged -> resolved, with who, when and a note.

Detectors write anomalies (``anomalies``, ``anomalies_by_day``; one row per detector);
what happens to them afterwards lives in ``anomaly_lifecycle``, keyed like them. A
detector re-run rewrites its rows whole, and keeping the lifecycle apart means such a
re-run never undoes an operator's acknowledgement. An anomaly without a lifecycle row is
``open``.

Rules
-----
- ``acknowledge``: open -> acknowledged. Acknowledging an acknowledged anomaly changes
  nothing (the first acknowledgement is kept); a resolved one cannot be acknowledged.
- ``resolve``: open or acknowledged -> resolved; resolving a resolved one changes nothing.
- An *episode* is the run of one (device, sensor, detector)'s anomalies with gaps of at
  most ``quiet``. It has ended once that sensor reported for ``quiet`` after its last
  anomaly without a new one (within the window the detector looked at);
  :func:`resolve_ended` then sets ``cleared_at`` (the episode's last anomalous reading)
  on all its anomalies and resolves those still open or acknowledged, by ``"auto"``.
- ``created_at`` is when the anomaly happened (its reading's ``ts``).
- An anomaly is named by its ``anomaly_id``: ``device/sensor/detector/ISO time``.

Examples
--------
>>> import pandas as pd
>>> from iotlab.store import open_store
>>> store = open_store("sqlite://")
>>> row = pd.DataFrame({"device_id": ["d1"], "ts": pd.to_datetime(["2026-01-01 10:00"],
...     utc=True).astype("datetime64[ms, UTC]"), "sensor_id": ["temp_01"], "value": [9.0],
...     "expected": [1.0], "lower": [0.0], "upper": [2.0], "score": [8.0],
...     "confidence": [0.99], "severity": ["high"], "status": ["open"],
...     "detector": ["zscore"]})
>>> _ = store.write_rows("anomalies", row), store.write_rows("anomalies_by_day", row)
>>> aid = read_anomalies(store)["anomaly_id"].item()
>>> aid
'd1/temp_01/zscore/2026-01-01T10:00:00.000Z'
>>> acknowledge(store, aid, by="alice", note="on it")[["status", "acknowledged_by"]]
         status acknowledged_by
0  acknowledged           alice
>>> resolve(store, aid, by="bob")[["status", "acknowledged_by", "resolved_by"]]
     status acknowledged_by resolved_by
0  resolved           alice         bob
>>> store.close()
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from iotlab._compat import legacy_call_forms
from iotlab._time import TimeLike, utc_timestamp, utc_timestamp_or_none
from iotlab._vocabulary import id_list
from iotlab.errors import NotFoundError, ValidationError

if TYPE_CHECKING:
    from iotlab.store.base import Store

__all__ = [
    "LIFECYCLE_COLUMNS",
    "STATUSES",
    "acknowledge",
    "anomaly_id",
    "read_anomalies",
    "resolve",
    "resolve_ended",
]

#: Ordered: an anomaly only moves forward.
STATUSES = ("open", "acknowledged", "resolved")
LIFECYCLE_COLUMNS = (
    "acknowledged_by",
    "acknowledged_at",
    "resolved_by",
    "resolved_at",
    "cleared_at",
    "note",
)
_KEY = ["ts", "device_id", "sensor_id", "detector"]
_TIMES = ("acknowledged_at", "resolved_at", "cleared_at")


def anomaly_id(device_id: str, sensor_id: str, detector: str, ts: TimeLike) -> str:
    """The id of one anomaly: ``device/sensor/detector/ISO time`` (UTC, ms).

    Examples
    --------
    >>> anomaly_id("d1", "temp_01", "prophet", "2026-01-01 10:00")
    'd1/temp_01/prophet/2026-01-01T10:00:00.000Z'
    """
    when = utc_timestamp(ts, field="ts")
    return f"{device_id}/{sensor_id}/{detector}/{when.strftime('%Y-%m-%dT%H:%M:%S.%f')[:-3]}Z"


def _parse_id(text: str) -> tuple[str, str, str, pd.Timestamp]:
    parts = str(text).rsplit("/", 3)
    if len(parts) != 4 or not all(parts):
        raise ValidationError(
            f"{text!r} is not an anomaly id (device/sensor/detector/time)", field="anomaly_id"
        )
    device, sensor, detector, when = parts
    try:
        ts = pd.Timestamp(when)
    except ValueError as exc:
        raise ValidationError(f"{text!r}: bad time {when!r}", field="anomaly_id") from exc
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return device, sensor, detector, ts


@legacy_call_forms(positional=("start", "end"))
def read_anomalies(
    store: Store,
    *,
    start: TimeLike | None = None,
    end: TimeLike | None = None,
    devices: str | Sequence[str] | None = None,
) -> pd.DataFrame:
    """Stored anomalies in ``[start, end)`` with their lifecycle, oldest first.

    Columns: the ``anomalies`` columns, ``anomaly_id``, ``created_at``, ``status``
    (current: open, acknowledged or resolved) and :data:`LIFECYCLE_COLUMNS`.
    ``devices=None`` reads fleet-wide (by day), else those devices' partitions.
    """
    lo = utc_timestamp_or_none(start, field="start")
    hi = utc_timestamp_or_none(end, field="end")
    if devices is None:
        found = store.read_rows("anomalies_by_day", {}, start=lo, end=hi)
    else:
        wanted = id_list(devices, field="devices")
        found = store.read_rows("anomalies", {"device_id": wanted or [""]}, start=lo, end=hi)
        found = found.iloc[:0] if not wanted else found  # no device: no rows, same columns
    lifecycle = store.read_rows("anomaly_lifecycle", {}, start=lo, end=hi) if len(found) else None
    return _merged(found, lifecycle)


def _merged(found: pd.DataFrame, lifecycle: pd.DataFrame | None) -> pd.DataFrame:
    found = found.sort_values(_KEY, kind="stable", ignore_index=True)
    found["detector"] = found["detector"].astype(object)
    if lifecycle is not None and len(lifecycle):
        extra = lifecycle[[*_KEY, "status", *LIFECYCLE_COLUMNS]].rename(
            columns={"status": "_status"}
        )
        extra["detector"] = extra["detector"].astype(object)
        found = found.merge(extra, on=_KEY, how="left")
    else:
        found["_status"] = None
        for column in LIFECYCLE_COLUMNS:
            found[column] = (
                pd.Series(pd.NaT, index=found.index, dtype="datetime64[ms, UTC]")
                if column in _TIMES
                else None
            )
    found["status"] = found["_status"].where(found["_status"].notna(), "open").astype(object)
    found = found.drop(columns="_status")
    for column in _TIMES:
        found[column] = pd.to_datetime(found[column], utc=True).astype("datetime64[ms, UTC]")
    found["created_at"] = found["ts"]
    keys = zip(found["device_id"], found["sensor_id"], found["detector"], found["ts"])
    ids = [anomaly_id(d, s, k, t) for d, s, k, t in keys]
    found.insert(0, "anomaly_id", pd.Series(ids, index=found.index, dtype=object))
    return found


def _ids(anomalies: str | Iterable[str] | pd.DataFrame) -> list[str]:
    if isinstance(anomalies, pd.DataFrame):
        if "anomaly_id" not in anomalies.columns:
            raise ValidationError("needs an anomaly_id column", field="anomaly_id")
        return anomalies["anomaly_id"].astype(str).tolist()
    if isinstance(anomalies, str):
        return [anomalies]
    return [str(a) for a in anomalies]


def _lookup(store: Store, ids: list[str]) -> pd.DataFrame:
    """The merged rows of ``ids``; ``NotFoundError`` names the ids not stored."""
    if not ids:
        raise ValidationError("name at least one anomaly", field="anomaly_id")
    keys = [_parse_id(i) for i in ids]
    parts = []
    for device, sensor, detector, ts in keys:
        rows = read_anomalies(store, start=ts, end=ts + pd.Timedelta("1ms"), devices=[device])
        parts.append(rows[(rows["sensor_id"] == sensor) & (rows["detector"] == detector)])
    found = pd.concat(parts, ignore_index=True).drop_duplicates("anomaly_id")
    missing = [i for i, k in zip(ids, keys) if anomaly_id(*k) not in set(found["anomaly_id"])]
    if missing:
        raise NotFoundError(f"no stored anomaly {', '.join(missing[:5])}")
    return found


def _who(by: str) -> str:
    if not isinstance(by, str) or not by.strip():
        raise ValidationError("say who: a non-empty name", field="by")
    return by.strip()


def _write(store: Store, rows: pd.DataFrame) -> None:
    frame = rows[[*_KEY, "status", *LIFECYCLE_COLUMNS]].copy()
    for column in _TIMES:
        frame[column] = pd.to_datetime(frame[column], utc=True).astype("datetime64[ms, UTC]")
    frame["ts"] = frame["ts"].astype("datetime64[ms, UTC]")
    store.write_rows("anomaly_lifecycle", frame.reset_index(drop=True))


def _move(
    store: Store,
    rows: pd.DataFrame,
    fresh: pd.Series,
    status: str,
    who: str,
    when: pd.Timestamp,
    note: str | None,
) -> pd.DataFrame:
    """Move the ``fresh`` rows to ``status`` (``<status>_by``/``_at`` set, the note if
    given), write those, and return all ``rows`` as they are now."""
    rows.loc[fresh, "status"] = status
    rows.loc[fresh, f"{status}_by"] = who
    rows.loc[fresh, f"{status}_at"] = when
    if note is not None:
        rows.loc[fresh, "note"] = note
    if fresh.any():
        _write(store, rows[fresh])
    return rows


def _now(at: TimeLike | None) -> pd.Timestamp:
    when = utc_timestamp_or_none(at, field="at")
    return (when if when is not None else pd.Timestamp.now(tz="UTC")).floor("ms")


def acknowledge(
    store: Store,
    anomalies: str | Iterable[str] | pd.DataFrame,
    *,
    by: str,
    note: str | None = None,
    at: TimeLike | None = None,
) -> pd.DataFrame:
    """Acknowledge anomalies (ids, or a frame with ``anomaly_id``); return them as now.

    Raises ``ValidationError`` (field ``status``) if one of them is already resolved;
    then nothing is written.
    """
    who, when = _who(by), _now(at)
    rows = _lookup(store, _ids(anomalies))
    resolved = rows[rows["status"] == "resolved"]
    if len(resolved):
        raise ValidationError(
            f"already resolved, cannot be acknowledged: {', '.join(resolved['anomaly_id'])}",
            field="status",
        )
    return _move(store, rows, rows["status"] == "open", "acknowledged", who, when, note)


def resolve(
    store: Store,
    anomalies: str | Iterable[str] | pd.DataFrame,
    *,
    by: str,
    note: str | None = None,
    at: TimeLike | None = None,
) -> pd.DataFrame:
    """Resolve anomalies (ids, or a frame with ``anomaly_id``); return them as now.

    Resolving a resolved anomaly changes nothing.
    """
    who, when = _who(by), _now(at)
    rows = _lookup(store, _ids(anomalies))
    return _move(store, rows, rows["status"] != "resolved", "resolved", who, when, note)


@legacy_call_forms(positional=("start", "end"))
def resolve_ended(
    store: Store,
    *,
    start: TimeLike | None = None,
    end: TimeLike | None = None,
    detector: str | None = None,
    quiet: str | pd.Timedelta = "1h",
    at: TimeLike | None = None,
) -> pd.DataFrame:
    """Close the episodes that ended in ``[start, end)``: set ``cleared_at``, resolve.

    ``[start, end)`` is the window a detector has looked at (``detector`` limits it to
    that detector's anomalies): an episode ended if its sensor has hourly roll-ups
    (i.e. readings) between ``quiet`` after its last anomaly and ``end``, and no
    anomaly of it came in the meantime. Returns the rows changed, as now.
    """
    lo = utc_timestamp_or_none(start, field="start")
    hi = utc_timestamp_or_none(end, field="end") or _now(None)
    gap = pd.Timedelta(quiet)
    when = _now(at)
    found = read_anomalies(store, start=lo, end=hi)
    if detector is not None:
        found = found[found["detector"] == detector]
    found = found[found["cleared_at"].isna()]
    changed = []
    for (device, sensor, _), rows in found.groupby(["device_id", "sensor_id", "detector"]):
        times = rows["ts"].to_numpy()
        episode = np.concatenate([[0], np.cumsum(np.diff(times) > gap.to_timedelta64())])
        for number in np.unique(episode):
            members = rows[episode == number]
            last = members["ts"].max()
            after = (last + gap).ceil("h")
            if after >= hi:
                continue
            later = store.read_rows(
                "rollups_hour",
                {"device_id": device, "sensor_id": sensor},
                start=after,
                end=hi,
                columns=["bucket_start"],
            )
            if later.empty:
                continue
            members = members.copy()
            members["cleared_at"] = last
            still = members["status"] != "resolved"
            members.loc[still, "status"] = "resolved"
            members.loc[still, "resolved_by"] = "auto"
            members.loc[still, "resolved_at"] = when
            members.loc[still, "note"] = members.loc[still, "note"].where(
                members.loc[still, "note"].notna(), f"episode ended {last:%Y-%m-%d %H:%M} UTC"
            )
            changed.append(members)
    if not changed:
        return found.iloc[:0]
    out = pd.concat(changed, ignore_index=True)
    _write(store, out)
    return out
