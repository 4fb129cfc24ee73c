"""Reads for people: readings, heartbeats, roll-ups and xarray datasets, on any backend.

Rules
-----
- ``start``/``end`` may be strings, datetimes or Timestamps; naive values are read as
  UTC (:func:`iotlab._time.utc_timestamp_or_none`). ``start`` is inclusive, ``end``
  exclusive; ``None`` leaves that side open.
- ``sensors=None`` means the device's sensors in the ``sensors`` projection (readings
  of a sensor that was never provisioned are found only by naming it).
- An unknown device raises :class:`~iotlab.errors.NotFoundError`: one that is neither in
  the ``devices`` projection nor has any rows in the range asked for. A provisioned
  device without data gives an empty frame. So does a named sensor the device does not
  have (neither provisioned for it nor with rows in the range): a typo or another device
  type's sensor must not look like a quiet sensor.
- Results are sorted by time and carry tz-aware UTC timestamps. xarray coordinates
  cannot hold a time zone, so :func:`read_dataset`'s ``time`` is naive UTC and says so in
  its ``timezone`` attribute.

Examples
--------
>>> import pandas as pd
>>> from iotlab.store import open_store
>>> from iotlab.store.ingest import ingest_readings
>>> store = open_store("sqlite://")
>>> ts = pd.date_range("2026-01-01", periods=120, freq="1min", tz="UTC")
>>> frame = pd.DataFrame({"device_id": "d1", "sensor_id": "t", "ts": ts, "value": 1.0})
>>> ingest_readings(store, frame, require_provisioned=False, progress=False).written
120
>>> len(read_readings(store, "d1", sensors="t", start="2026-01-01 01:00"))
60
>>> read_rollups(store, "d1", sensors="t", interval="1h")[["bucket_start", "count", "avg"]]
               bucket_start  count  avg
0 2026-01-01 00:00:00+00:00     60  1.0
1 2026-01-01 01:00:00+00:00     60  1.0
>>> store.close()
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from iotlab._compat import deprecated, legacy_call_forms
from iotlab._time import TimeLike, utc_timestamp_or_none
from iotlab._vocabulary import id_list
from iotlab.errors import NotFoundError, ValidationError
from iotlab.store.rollups import INTERVALS, read_minute_rollups

if TYPE_CHECKING:
    import xarray as xr

    from iotlab.store.base import Store

__all__ = [
    "ROLLUP_INTERVALS",
    "iter_readings",
    "read_dataset",
    "read_heartbeats",
    "read_readings",
    "read_rollups",
]

#: The roll-up intervals the store keeps, as pandas offset aliases ("60min" or "h" work too).
ROLLUP_INTERVALS = ("1min", "1h")
_ROLLUP_SOURCES = {pd.Timedelta("1min"): "minute", pd.Timedelta("1h"): "hour"}
_LEGACY = {"sensor_id": "sensors"}


@legacy_call_forms(positional=("sensor_id", "start", "end"), renamed=_LEGACY)
def read_readings(
    store: Store,
    device_id: str,
    *,
    sensors: str | Sequence[str] | None = None,
    start: TimeLike | None = None,
    end: TimeLike | None = None,
) -> pd.DataFrame:
    """Raw readings of one device, sorted by ``ts`` (then ``sensor_id``)."""
    lo, hi = _range(start, end)
    wanted = _sensors(store, device_id, sensors)
    rows = store.read_rows(
        "readings", {"device_id": device_id, "sensor_id": wanted}, start=lo, end=hi
    )
    _check_known(store, device_id, rows)
    _check_sensors(store, device_id, sensors, rows)
    return rows.sort_values(["ts", "sensor_id"], kind="stable", ignore_index=True)


@legacy_call_forms(positional=("sensor_id", "start", "end"), renamed=_LEGACY)
def iter_readings(
    store: Store,
    device_id: str,
    *,
    sensors: str | Sequence[str] | None = None,
    start: TimeLike | None = None,
    end: TimeLike | None = None,
    chunk: str = "1D",
) -> Iterator[pd.DataFrame]:
    """:func:`read_readings` in time order, one frame per ``chunk`` of time (a pandas
    offset alias), so a scan of months never holds more than a chunk's rows.

    Windows are aligned to ``chunk`` (UTC); empty ones are skipped. An open ``start`` or
    ``end`` is closed at the device's first or last hour roll-up. Concatenated, the
    frames equal ``read_readings(store, device_id, sensors=..., start=..., end=...)``.

    Examples
    --------
    >>> import pandas as pd
    >>> from iotlab.store import open_store
    >>> from iotlab.store.ingest import ingest_readings
    >>> store = open_store("sqlite://")
    >>> ts = pd.date_range("2026-01-01 22:00", periods=300, freq="1min", tz="UTC")
    >>> frame = pd.DataFrame({"device_id": "d1", "sensor_id": "t", "ts": ts, "value": 1.0})
    >>> _ = ingest_readings(store, frame, require_provisioned=False, progress=False)
    >>> [len(f) for f in iter_readings(store, "d1", sensors="t", chunk="1D")]
    [120, 180]
    >>> store.close()
    """
    try:
        step = pd.tseries.frequencies.to_offset(chunk)
    except ValueError as exc:
        raise ValidationError(f"not a pandas offset alias: {chunk!r}", field="chunk") from exc
    lo, hi = _range(start, end)
    wanted = _sensors(store, device_id, sensors)
    if lo is None or hi is None:
        hours = store.read_rows(
            "rollups_hour", {"device_id": device_id, "sensor_id": wanted}, start=lo, end=hi
        )
        if hours.empty:
            _check_known(store, device_id, hours)
            return
        lo = hours["bucket_start"].min() if lo is None else lo
        hi = hours["bucket_start"].max() + pd.Timedelta("1h") if hi is None else hi
    try:
        aligned = lo.floor(step.freqstr)
    except ValueError:  # a calendar offset such as "MS": its period's start
        aligned = step.rollback(lo.normalize())
    edges = pd.date_range(aligned, hi, freq=step)
    bounds = [lo, *[e for e in edges if lo < e < hi], hi]
    seen = False
    for first, last in zip(bounds, bounds[1:]):
        rows = store.read_rows(
            "readings", {"device_id": device_id, "sensor_id": wanted}, start=first, end=last
        )
        if len(rows):
            seen = True
            yield rows.sort_values(["ts", "sensor_id"], kind="stable", ignore_index=True)
    if not seen:
        _check_known(store, device_id, pd.DataFrame())


@legacy_call_forms(positional=("start", "end"))
def read_heartbeats(
    store: Store, device_id: str, *, start: TimeLike | None = None, end: TimeLike | None = None
) -> pd.DataFrame:
    """Heartbeats (cpu, memory, battery, signal) of one device, sorted by ``ts``."""
    lo, hi = _range(start, end)
    rows = store.read_rows("device_metrics", {"device_id": device_id}, start=lo, end=hi)
    _check_known(store, device_id, rows)
    return rows.sort_values("ts", kind="stable", ignore_index=True)


@legacy_call_forms(positional=("sensor_id", "start", "end", "interval"), renamed=_LEGACY)
def read_rollups(
    store: Store,
    device_id: str,
    *,
    sensors: str | Sequence[str] | None = None,
    start: TimeLike | None = None,
    end: TimeLike | None = None,
    interval: str = "1h",
) -> pd.DataFrame:
    """Count, sum, min, max and ``avg`` of a device per ``"1min"`` or ``"1h"`` roll-up.

    ``start``/``end`` bound ``bucket_start``. ``interval`` is a pandas offset alias of
    one of :data:`ROLLUP_INTERVALS` (``"60min"`` is ``"1h"``).
    """
    table = INTERVALS[rollup_source(interval)][0]
    lo, hi = _range(start, end)
    wanted = _sensors(store, device_id, sensors)
    key = {"device_id": device_id, "sensor_id": wanted}
    if table == "rollups_minute":
        rows = read_minute_rollups(store, key, start=lo, end=hi)
    else:
        rows = store.read_rows(table, key, start=lo, end=hi)
    _check_known(store, device_id, rows)
    _check_sensors(store, device_id, sensors, rows)
    rows["avg"] = rows["sum"] / rows["count"]
    return rows.sort_values(["bucket_start", "sensor_id"], kind="stable", ignore_index=True)


@legacy_call_forms(
    positional=("device_ids", "sensor_ids", "start", "end", "interval"),
    renamed={"device_ids": "devices", "sensor_ids": "sensors"},
)
def read_dataset(
    store: Store,
    *,
    devices: str | Sequence[str] | None = None,
    sensors: str | Sequence[str] | None = None,
    start: TimeLike | None = None,
    end: TimeLike | None = None,
    interval: str | None = None,
) -> xr.Dataset:
    """Readings as an ``xarray.Dataset`` with dims (device, time), one variable per sensor.

    Parameters
    ----------
    devices
        Devices to include; ``None`` means every device of the ``devices`` projection
        (or, if it is empty, of the ``sensors`` projection).
    sensors
        Sensors to include; ``None`` means every provisioned sensor of those devices.
    start, end
        Time range, ``[start, end)``.
    interval
        ``None`` for raw timestamps, or a pandas frequency (``"1min"``, ``"15min"``,
        ``"1h"``, ``"1D"``) for means per interval (floored to the epoch). Whole minutes
        and hours are computed from the roll-up tables (exact: sum of sums over sum of
        counts) instead of raw rows.

    Examples
    --------
    >>> import pandas as pd
    >>> from iotlab.store import open_store
    >>> from iotlab.store.ingest import ingest_readings
    >>> store = open_store("sqlite://")
    >>> ts = pd.date_range("2026-01-01", periods=4, freq="30min", tz="UTC")
    >>> frame = pd.DataFrame({"device_id": "d1", "sensor_id": "t", "ts": ts,
    ...                       "value": [1.0, 3.0, 5.0, 7.0]})
    >>> _ = ingest_readings(store, frame, require_provisioned=False, progress=False)
    >>> read_dataset(store, devices="d1", sensors="t", interval="1h")["t"].values.tolist()
    [[2.0, 6.0]]
    >>> store.close()
    """
    import xarray as xr

    lo, hi = _range(start, end)
    sensors_table = store.read_rows("sensors")
    devices = _dataset_devices(store, devices, sensors_table)
    if sensors is None:
        provisioned = sensors_table[sensors_table["device_id"].isin(devices)]
        sensors = sorted(provisioned["sensor_id"].unique())
    sensors = id_list(sensors, field="sensors")
    long = _dataset_values(store, devices, sensors, lo, hi, interval)
    wide = long.pivot_table(
        index=["device", "time"], columns="sensor_id", values="value", aggfunc="first"
    )
    wide = wide.reindex(columns=sensors)
    wide.columns.name = None
    dataset = xr.Dataset.from_dataframe(wide) if len(wide) else _empty_dataset(sensors)
    dataset = dataset.reindex(device=list(devices))
    for sensor in sensors:
        dataset[sensor].attrs.update(_sensor_attrs(sensors_table, sensor))
    dataset["time"].attrs["timezone"] = "UTC"
    dataset.attrs.update({"interval": interval or "raw", "source": str(store.url)})
    return dataset


# -- helpers ----------------------------------------------------------------------------------
def _range(start: TimeLike | None, end: TimeLike | None) -> tuple[pd.Timestamp | None, ...]:
    lo = utc_timestamp_or_none(start, field="start")
    hi = utc_timestamp_or_none(end, field="end")
    if lo is not None and hi is not None and hi < lo:
        raise ValidationError(f"end {hi} is before start {lo}", field="end")
    return lo, hi


def rollup_source(interval: str) -> str:
    """The roll-up kept for ``interval`` (``"minute"`` or ``"hour"``), or a clear error.

    0.1's names ``"minute"``/``"hour"`` still work, with a ``DeprecationWarning``.

    Examples
    --------
    >>> rollup_source("60min")
    'hour'
    """
    if interval in INTERVALS:
        alias = dict(zip(INTERVALS, ROLLUP_INTERVALS))[interval]
        deprecated(f"interval={interval!r} is deprecated, use interval={alias!r}", stacklevel=4)
        return interval
    try:
        # Fixed-width offsets convert (Tick, and Day, no Tick in pandas 3); stubs: Tick only.
        width = pd.Timedelta(pd.tseries.frequencies.to_offset(interval))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        width = None
    if width not in _ROLLUP_SOURCES:
        raise ValidationError(
            f"no roll-up for interval {interval!r}; the store keeps "
            f"{' and '.join(ROLLUP_INTERVALS)} (pandas offset aliases); for other "
            "intervals use dataset(interval=...)",
            field="interval",
        )
    return _ROLLUP_SOURCES[width]


def _sensors(store: Store, device_id: str, sensors: str | Sequence[str] | None) -> list[str]:
    if not isinstance(device_id, str) or not device_id:
        raise ValidationError(f"must be a device id string, got {device_id!r}", field="device_id")
    if sensors is None:
        rows = store.read_rows("sensors", {"device_id": device_id}, columns=["sensor_id"])
        return rows["sensor_id"].tolist()
    return id_list(sensors, field="sensors")


def _check_known(store: Store, device_id: str, rows: pd.DataFrame) -> None:
    if rows.empty and store.read_rows("devices", {"device_id": device_id}).empty:
        raise NotFoundError(f"unknown device {device_id!r}: not provisioned and no data")


def _check_sensors(
    store: Store, device_id: str, sensor_id: str | Sequence[str] | None, rows: pd.DataFrame
) -> None:
    """Refuse a named sensor the device does not have, rather than return nothing.

    A sensor counts if it is provisioned for the device or has rows in the range (readings
    ingested with ``require_provisioned=False``). A device with no provisioned sensors at
    all cannot be judged and is let through.
    """
    if sensor_id is None:
        return
    wanted = [sensor_id] if isinstance(sensor_id, str) else list(sensor_id)
    found = set(rows["sensor_id"].astype(str)) if len(rows) else set()
    missing = [s for s in wanted if s not in found]
    if not missing:
        return
    provisioned = store.read_rows("sensors", {"device_id": device_id}, columns=["sensor_id"])
    known = sorted(provisioned["sensor_id"].astype(str))
    unknown = [s for s in missing if s not in known]
    if known and unknown:
        raise NotFoundError(
            f"device {device_id!r} has no sensor {', '.join(map(repr, unknown))} (not "
            f"provisioned, no readings in this range); its sensors: {', '.join(known)}"
        )


def _dataset_devices(
    store: Store, devices: str | Sequence[str] | None, sensors_table: pd.DataFrame
) -> list[str]:
    if devices is not None:
        return id_list(devices, field="devices")
    devices = store.read_rows("devices", columns=["device_id"])["device_id"].tolist()
    return devices or sorted(sensors_table["device_id"].unique())


def _dataset_values(
    store: Store,
    devices: list[str],
    sensors: list[str],
    lo: pd.Timestamp | None,
    hi: pd.Timestamp | None,
    interval: str | None,
) -> pd.DataFrame:
    """Long frame ``device, sensor_id, time (naive UTC), value``."""
    key = {"device_id": devices, "sensor_id": sensors}
    columns = ["device", "sensor_id", "time", "value"]
    if interval is None:
        raw = store.read_rows(
            "readings", key, start=lo, end=hi, columns=list(key) + ["ts", "value"]
        )
        long = raw.rename(columns={"device_id": "device", "ts": "time"})
    else:
        freq = _frequency(interval)
        source = _rollup_source(freq, lo, hi)
        if source is None:
            raw = store.read_rows("readings", key, start=lo, end=hi)
            raw["time"] = raw["ts"].dt.floor(freq)
            long = raw.groupby(["device_id", "sensor_id", "time"], as_index=False)[
                ["value"]
            ].mean()
        else:
            # Exact from roll-ups: the mean of an interval is its total sum over total count.
            table = INTERVALS[source][0]
            if table == "rollups_minute":
                rolled = read_minute_rollups(store, key, start=lo, end=hi)
            else:
                rolled = store.read_rows(table, key, start=lo, end=hi)
            rolled["time"] = rolled["bucket_start"].dt.floor(freq)
            sums = rolled.groupby(["device_id", "sensor_id", "time"], as_index=False)[
                ["sum", "count"]
            ].sum()
            long = sums.assign(value=sums["sum"] / sums["count"])
        long = long.rename(columns={"device_id": "device"})
    long["time"] = long["time"].dt.tz_convert("UTC").dt.tz_localize(None).astype("datetime64[ns]")
    return long[columns]


def _frequency(interval: str) -> pd.Timedelta:
    try:
        # Any fixed-width offset converts (Tick, and Day, which pandas 3 no longer makes a
        # Tick); the stubs accept Tick only.
        freq = pd.Timedelta(pd.tseries.frequencies.to_offset(interval))  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise ValidationError(
            f"cannot read {interval!r} as a fixed interval such as '1min', '1h', '1D'",
            field="interval",
        ) from exc
    if freq <= pd.Timedelta(0):
        raise ValidationError(f"must be positive, got {interval!r}", field="interval")
    return freq


def _rollup_source(
    freq: pd.Timedelta, lo: pd.Timestamp | None, hi: pd.Timestamp | None
) -> str | None:
    """The roll-up interval whose buckets tile ``freq`` and the range exactly, else ``None``.

    A range edge inside a roll-up bucket would count rows outside the range, so such
    ranges are answered from raw rows.
    """
    for source, step in (("hour", pd.Timedelta("1h")), ("minute", pd.Timedelta("1min"))):
        edges_aligned = all(t is None or t == t.floor(step) for t in (lo, hi))
        if freq % step == pd.Timedelta(0) and edges_aligned:
            return source
    return None


def _sensor_attrs(sensors_table: pd.DataFrame, sensor: str) -> dict[str, str]:
    rows = sensors_table[sensors_table["sensor_id"] == sensor]
    attrs = {}
    for column, attr in (("unit", "units"), ("sensor_type", "sensor_type")):
        values = rows[column].dropna().unique()
        if len(values) == 1:
            attrs[attr] = str(values[0])
    return attrs


def _empty_dataset(sensors: list[str]) -> xr.Dataset:
    import xarray as xr

    empty = np.empty((0, 0))
    return xr.Dataset(
        {s: (("device", "time"), empty) for s in sensors},
        coords={"device": np.array([], dtype=object), "time": np.array([], "datetime64[ns]")},
    )
