"""The report builders: device performance, anomaly summary, fleet health.

Each builder takes a store and a window ``[start, end)`` and returns a
:class:`~iotlab.reports.Report`. ``end`` defaults to ``generated_at`` (now) and ``start``
to seven days before ``end``. Tables are sorted and typed the same way on every backend,
so the same data gives identical tables on SQLite and Cassandra. A fleet with no data
gives a report with empty tables and figures that say so.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

import pandas as pd

from iotlab._compat import legacy_call_forms
from iotlab._time import TimeLike, utc_timestamp
from iotlab._vocabulary import id_list
from iotlab.analytics._display import SEVERITIES
from iotlab.analytics.health import FleetHealth, fleet_health_check
from iotlab.analytics.heartbeats import fleet_heartbeat_hours, summarise_heartbeats
from iotlab.analytics.metrics import (
    STAT_COLUMNS,
    metrics_from_frames,
    resolve_window,
    severity_counts,
)
from iotlab.analytics.overview import anomalies_by_device, fleet_devices, fleet_overview
from iotlab.errors import NotFoundError, ValidationError
from iotlab.reports.figures import anomaly_timeline_figure, readings_figure, uptime_figure
from iotlab.reports.report import Report
from iotlab.store.lifecycle import read_anomalies
from iotlab.store.queries import read_heartbeats, read_readings

if TYPE_CHECKING:
    from pandas._typing import Dtype

    from iotlab.store.base import Store

__all__ = [
    "DEFAULT_WINDOW",
    "REPORT_KINDS",
    "anomaly_summary",
    "build_report",
    "device_performance",
    "fleet_health",
]

DEFAULT_WINDOW = pd.Timedelta("7D")
_ANOMALY_COLUMNS = [
    "ts",
    "device_id",
    "sensor_id",
    "value",
    "expected",
    "score",
    "severity",
    "detector",
    "status",
]
_HEALTH_COLUMNS = [
    "device_id",
    "battery",
    "battery_days_to_empty",
    "battery_days_low",
    "battery_days_high",
    "cpu",
    "memory",
    "signal",
    "last_heartbeat",
    "offline",
]
_DEVICE_COLUMNS: dict[str, Dtype] = {
    "device_id": str,
    "device_type": str,
    "status": str,
    "readings": "int64",
    "heartbeats": "int64",
    "heartbeat_interval_s": "float64",
    "uptime": "float64",
    "anomalies": "int64",
    **dict.fromkeys(SEVERITIES, "int64"),
    "last_seen": "datetime64[ms, UTC]",
}


def _window(
    start: TimeLike | None, end: TimeLike | None, generated_at: TimeLike | None
) -> tuple[pd.Timestamp, pd.Timestamp, pd.Timestamp]:
    made = utc_timestamp(
        pd.Timestamp.now("UTC") if generated_at is None else generated_at, field="generated_at"
    )
    low, high = resolve_window(start, end)
    high = made if high is None else high
    low = high - DEFAULT_WINDOW if low is None else low
    if high <= low:
        raise ValidationError(f"must be after start ({high} <= {low})", field="end")
    return low, high, made


def _parameters(
    start: pd.Timestamp, end: pd.Timestamp, devices: str | Sequence[str] | None
) -> dict[str, object]:
    return {
        "start": start.isoformat(),
        "end": end.isoformat(),
        "devices": id_list(devices, field="devices"),
    }


def _fleet_anomalies(
    store: Store, start: pd.Timestamp, end: pd.Timestamp, device_ids: Sequence[str]
) -> pd.DataFrame:
    rows = read_anomalies(store, start=start, end=end)
    if len(rows):
        rows = rows.assign(device_id=rows["device_id"].astype(str))
        rows = rows.assign(sensor_id=rows["sensor_id"].astype(str))
        rows = rows[rows["device_id"].isin(list(device_ids))]
    return rows.sort_values(["ts", "device_id", "sensor_id"], kind="stable").reset_index(drop=True)


def _health(
    store: Store,
    low: pd.Timestamp,
    high: pd.Timestamp,
    made: pd.Timestamp,
    fleet: pd.DataFrame,
    anomalies: pd.DataFrame,
) -> FleetHealth:
    """Health, data quality and who needs attention, judged at the window's end (or now,
    if that comes first: silence is only counted up to what has happened)."""
    return fleet_health_check(
        store, low, high, devices=fleet, anomalies=anomalies, now=min(high, made)
    )


def _lifecycle_note(anomalies: pd.DataFrame) -> str:
    """How many anomalies are still open and how many were handled."""
    counts = anomalies["status"].value_counts() if len(anomalies) else pd.Series(dtype=int)
    handled = int(counts.get("acknowledged", 0)) + int(counts.get("resolved", 0))
    return (
        f"Anomalies: {int(counts.get('open', 0))} open, {handled} handled "
        f"({int(counts.get('acknowledged', 0))} acknowledged, "
        f"{int(counts.get('resolved', 0))} resolved)."
    )


def _health_tables(health: FleetHealth) -> dict[str, pd.DataFrame]:
    table = health.health.reindex(columns=_HEALTH_COLUMNS)
    return {"device_health": table, "data_quality": health.quality}


def _latest(projected: pd.Timestamp | None, seen: pd.Timestamp | None) -> pd.Timestamp | None:
    """The later of the projection's ``last_seen`` and the last heartbeat in the window."""
    candidates = [t for t in (projected, seen) if t is not None and pd.notna(t)]
    return max(candidates) if candidates else None


def _typed(rows: Sequence[Mapping[str, object]], columns: Mapping[str, Dtype]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=list(columns))
    if "last_seen" in frame:
        frame["last_seen"] = pd.to_datetime(frame["last_seen"], utc=True)
    return frame.astype(columns)


@legacy_call_forms(positional=("start", "end", "devices"), store_first=True)
def device_performance(
    store: Store,
    *,
    start: TimeLike | None = None,
    end: TimeLike | None = None,
    devices: str | Sequence[str] | None = None,
    generated_at: TimeLike | None = None,
    max_figures: int = 6,
) -> Report:
    """Per-device metrics (uptime, anomalies, reading statistics per sensor) with figures of
    readings and their anomalies for the ``max_figures`` devices with the most anomalies."""
    low, high, made = _window(start, end, generated_at)
    fleet = fleet_devices(store, devices)
    anomalies = _fleet_anomalies(store, low, high, list(fleet["device_id"]))
    ranked = anomalies_by_device(anomalies)["device_id"].tolist()
    plotted = (ranked + [d for d in fleet["device_id"] if d not in ranked])[:max_figures]
    rows, sensors, figures = [], [], {}
    for device in fleet.to_dict("records"):
        device_id = device["device_id"]
        readings = read_readings(store, device_id, start=low, end=high)
        mine = anomalies[anomalies["device_id"] == device_id] if len(anomalies) else anomalies
        beats = read_heartbeats(store, device_id, start=low, end=high)
        metrics = metrics_from_frames(device, beats, readings, mine, low, high)
        summary = metrics.summary()
        interval = metrics.heartbeat_interval
        del summary["heartbeat_interval"]
        summary["heartbeat_interval_s"] = interval.total_seconds() if interval else float("nan")
        rows.append({**summary, "device_type": device["device_type"]})
        sensors.append(metrics.to_frame())
        if device_id in plotted:
            figures[device_id] = readings_figure(readings, mine, f"Device {device_id}")
    sensor_columns: dict[str, Dtype] = {"device_id": str, "sensor_id": str, "count": "int64"}
    sensor_columns.update({c: "float64" for c in STAT_COLUMNS if c != "count"})
    sensor_table = (
        pd.concat(sensors, ignore_index=True)
        if sensors
        else pd.DataFrame(columns=list(sensor_columns))
    )
    notes = []
    if len(fleet) > len(figures):
        notes.append(
            f"Readings are drawn for {len(figures)} of {len(fleet)} devices, those with the "
            "most anomalies."
        )
    present = [c for c in _ANOMALY_COLUMNS if c in anomalies.columns]
    health = _health(store, low, high, made, fleet, anomalies)
    notes.insert(0, _lifecycle_note(anomalies))
    return Report(
        kind="device_performance",
        generated_at=made,
        parameters=_parameters(low, high, devices),
        tables={
            "needs_attention": health.attention,
            "devices": _typed(rows, _DEVICE_COLUMNS),
            **_health_tables(health),
            "sensors": sensor_table.astype(sensor_columns).reset_index(drop=True),
            "anomalies": anomalies[present].reset_index(drop=True),
        },
        figures={f"readings_{d}": figures[d] for d in plotted if d in figures},
        notes=notes,
    )


def _counts_by(anomalies: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    columns = [*keys, "anomalies", *SEVERITIES]
    if anomalies.empty:
        return _typed(
            [], {**dict.fromkeys(keys, str), **dict.fromkeys(columns[len(keys) :], "int64")}
        )
    table = anomalies.groupby([*keys, "severity"]).size().unstack("severity", fill_value=0)
    table = table.reindex(columns=list(SEVERITIES), fill_value=0).astype("int64")
    table.insert(0, "anomalies", table.sum(axis=1).astype("int64"))
    table = table.rename_axis(columns=None).reset_index()
    order = [False] + [True] * len(keys)
    table = table.sort_values(["anomalies", *keys], ascending=order, kind="stable")
    return table[columns].reset_index(drop=True)


@legacy_call_forms(positional=("start", "end", "devices"), store_first=True)
def anomaly_summary(
    store: Store,
    *,
    start: TimeLike | None = None,
    end: TimeLike | None = None,
    devices: str | Sequence[str] | None = None,
    generated_at: TimeLike | None = None,
    top: int = 20,
) -> Report:
    """Anomaly counts by severity, device and sensor, the ``top`` anomalies by score, and
    a figure of anomalies by severity over time."""
    low, high, made = _window(start, end, generated_at)
    fleet = fleet_devices(store, devices)
    anomalies = _fleet_anomalies(store, low, high, list(fleet["device_id"]))
    counts = severity_counts(anomalies)
    by_severity = pd.DataFrame({"severity": list(counts), "count": list(counts.values())})
    present = [c for c in _ANOMALY_COLUMNS if c in anomalies.columns]
    # The unbounded score ranks; severity breaks ties; open ones before handled ones.
    strongest = (
        anomalies.assign(
            _severity=anomalies["severity"].map({s: i for i, s in enumerate(SEVERITIES)})
        )
        .sort_values(["score", "_severity", "ts"], ascending=False, kind="stable")
        .head(top)
        if len(anomalies)
        else anomalies
    )
    health = _health(store, low, high, made, fleet, anomalies)
    return Report(
        kind="anomaly_summary",
        generated_at=made,
        parameters=_parameters(low, high, devices),
        notes=[_lifecycle_note(anomalies)],
        tables={
            "needs_attention": health.attention,
            "by_severity": by_severity.astype({"severity": str, "count": "int64"}),
            "by_device": _counts_by(anomalies, ["device_id"]),
            "by_sensor": _counts_by(anomalies, ["device_id", "sensor_id"]),
            "top_anomalies": strongest[present].reset_index(drop=True),
        },
        figures={"anomalies_over_time": anomaly_timeline_figure(anomalies, low, high)},
    )


@legacy_call_forms(positional=("start", "end", "devices"), store_first=True)
def fleet_health(
    store: Store,
    *,
    start: TimeLike | None = None,
    end: TimeLike | None = None,
    devices: str | Sequence[str] | None = None,
    generated_at: TimeLike | None = None,
    top: int = 10,
    source: str = "rollups",
) -> Report:
    """The fleet over the window: overview, uptime and anomalies per device, worst devices.

    Reading counts and heartbeat aggregates come from roll-ups (``source="rollups"``);
    ``source="raw"`` recomputes them from raw readings and heartbeats, for checks and
    benchmarks, and gives identical tables. Uptime is measured against each device's own
    heartbeat interval (:mod:`iotlab.analytics.heartbeats`). The worst devices are those
    with the lowest uptime, then the most anomalies.
    """
    low, high, made = _window(start, end, generated_at)
    overview = fleet_overview(
        store, now=high, window=high - low, top=top, devices=devices, source=source
    )
    fleet = fleet_devices(store, devices)
    anomalies = _fleet_anomalies(store, low, high, list(fleet["device_id"]))
    per_device = anomalies_by_device(anomalies).set_index("device_id")
    readings = overview.readings_by_device.set_index("device_id")["readings"]
    # Hourly heartbeat aggregates of every device, read at once: from the heartbeat
    # roll-up (source="rollups") or recomputed from raw heartbeats; the same numbers.
    hours = fleet_heartbeat_hours(store, list(fleet["device_id"]), low, high, source)
    hours_by_device = dict(tuple(hours.groupby("device_id", sort=False)))
    rows = []
    for device in fleet.to_dict("records"):
        device_id = device["device_id"]
        beats = summarise_heartbeats(hours_by_device.get(device_id, hours.iloc[:0]), low, high)
        counts = (
            per_device.loc[device_id].to_dict()
            if device_id in per_device.index
            else dict.fromkeys(["anomalies", *SEVERITIES], 0)
        )
        rows.append(
            {
                **device,
                "readings": int(readings.get(device_id, 0)),
                "heartbeats": beats.count,
                "heartbeat_interval_s": (
                    beats.interval.total_seconds() if beats.interval else float("nan")
                ),
                "uptime": beats.uptime,
                **counts,
                "last_seen": _latest(device.get("last_seen"), beats.last),
            }
        )
    table = _typed([{k: r.get(k) for k in _DEVICE_COLUMNS} for r in rows], _DEVICE_COLUMNS)
    worst = table.sort_values(
        ["uptime", "anomalies", "device_id"], ascending=[True, False, True], kind="stable"
    ).head(top)
    summary = overview.to_frame()
    mean_uptime = float(table["uptime"].mean()) if len(table) else float("nan")
    health = _health(store, low, high, made, fleet, anomalies)
    offline = int(health.health["offline"].sum()) if len(health.health) else 0
    tables = {
        "needs_attention": health.attention,
        "summary": summary,
        "devices_by_status": overview.by_status,
        "devices_by_type": overview.by_type,
        "anomalies_by_severity": overview.tables()["anomalies_by_severity"],
        "worst_devices": worst.reset_index(drop=True),
        "devices": table,
        "offline_devices": overview.offline,
        **_health_tables(health),
    }
    return Report(
        kind="fleet_health",
        generated_at=made,
        parameters={**_parameters(low, high, devices), "source": source},
        tables=tables,
        figures={
            "uptime": uptime_figure(table),
            "anomalies_over_time": anomaly_timeline_figure(anomalies, low, high),
        },
        notes=[
            *([f"Mean uptime {mean_uptime:.1%} over {len(table)} devices."] if len(table) else []),
            f"Silent for more than three heartbeat intervals at {min(high, made):%Y-%m-%d %H:%M} "
            f"UTC: {offline} of {len(table)} devices.",
            _lifecycle_note(anomalies),
        ],
    )


#: Report kind -> builder.
REPORT_KINDS: dict[str, Callable[..., Report]] = {
    "anomaly_summary": anomaly_summary,
    "device_performance": device_performance,
    "fleet_health": fleet_health,
}


@legacy_call_forms(positional=("start", "end", "devices"), store_first=True)
def build_report(
    store: Store,
    kind: str,
    *,
    start: TimeLike | None = None,
    end: TimeLike | None = None,
    devices: str | Sequence[str] | None = None,
    **options: object,
) -> Report:
    """Build the report ``kind`` (see :data:`REPORT_KINDS`); ``options`` go to its builder.

    Examples
    --------
    >>> from iotlab.store import open_store
    >>> with open_store("sqlite://") as store:
    ...     build_report(store, "weekly")
    Traceback (most recent call last):
    ...
    iotlab.errors.NotFoundError: unknown report kind 'weekly'; known kinds: anomaly_summary, ...
    """
    builder = REPORT_KINDS.get(kind.replace("-", "_"))
    if builder is None:
        known = ", ".join(sorted(REPORT_KINDS))
        raise NotFoundError(f"unknown report kind {kind!r}; known kinds: {known}")
    return builder(store, start=start, end=end, devices=devices, **options)
