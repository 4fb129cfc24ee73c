"""The fleet at a glance: devices by status and type, activity and anomalies of the last day.

Nothing here scans the readings table: reading counts come from each device's roll-ups
(:func:`iotlab.analytics.rollup_statistics`), anomalies from the fleet-wide by-day table,
devices from the projection (one small row per device).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd

from iotlab._compat import legacy_call_forms
from iotlab._time import TimeLike, utc_timestamp
from iotlab._vocabulary import id_list
from iotlab.analytics._display import SEVERITIES, frame_to_html, key_values_html
from iotlab.analytics.metrics import severity_counts
from iotlab.analytics.rollup_stats import fleet_reading_counts
from iotlab.errors import NotFoundError, ValidationError
from iotlab.store.lifecycle import read_anomalies
from iotlab.store.queries import read_readings

if TYPE_CHECKING:
    from iotlab.store.base import Store

__all__ = [
    "FleetOverview",
    "anomalies_by_device",
    "fleet_overview",
    "fleet_devices",
    "reading_counts",
]

SOURCES = ("rollups", "raw")


@legacy_call_forms(store_first=True)
def fleet_devices(store: Store, devices: str | Sequence[str] | None = None) -> pd.DataFrame:
    """The devices projection sorted by id, all of it or only ``devices``.

    Raises ``NotFoundError`` naming every requested device that was never provisioned.
    """
    table = store.read_rows("devices")
    for column in ("device_id", "device_type", "status"):
        table[column] = table[column].astype(str)
    # one resolution on every backend, even for an all-empty column
    table["last_seen"] = pd.to_datetime(table["last_seen"], utc=True).astype("datetime64[ms, UTC]")
    if devices is not None:
        wanted = id_list(devices, field="devices")
        unknown = sorted(set(wanted) - set(table["device_id"]))
        if unknown:
            raise NotFoundError(f"unknown devices (never provisioned): {', '.join(unknown)}")
        table = table[table["device_id"].isin(wanted)]
    return table.sort_values("device_id", kind="stable").reset_index(drop=True)


@legacy_call_forms(store_first=True)
def reading_counts(
    store: Store,
    device_ids: Sequence[str],
    start: pd.Timestamp,
    end: pd.Timestamp,
    source: str = "rollups",
) -> pd.DataFrame:
    """Readings per device in ``[start, end)``: ``device_id, readings``.

    ``source="rollups"`` (the default) reads roll-ups for all devices at once
    (:func:`~iotlab.analytics.rollup_stats.fleet_reading_counts`);
    ``"raw"`` counts raw readings, the slow way, kept to check and benchmark the fast one.
    """
    if source not in SOURCES:
        raise ValidationError(f"must be one of {', '.join(SOURCES)}", field="source")
    if source == "rollups":
        counts = fleet_reading_counts(store, device_ids, start, end).tolist()
    else:
        counts = [len(read_readings(store, d, start=start, end=end)) for d in device_ids]
    return pd.DataFrame(
        {
            "device_id": pd.Series(list(device_ids), dtype=str),
            "readings": pd.Series(counts, dtype="int64"),
        }
    )


def anomalies_by_device(anomalies: pd.DataFrame) -> pd.DataFrame:
    """Anomaly counts per device and severity, most anomalies first (ties by device id).

    Examples
    --------
    >>> rows = pd.DataFrame({"device_id": ["a", "b", "b"], "severity": ["low", "high", "low"]})
    >>> anomalies_by_device(rows)
      device_id  anomalies  low  medium  high  critical
    0         b          2    1       0     1         0
    1         a          1    1       0     0         0
    """
    columns = ["device_id", "anomalies", *SEVERITIES]
    if anomalies.empty:
        return pd.DataFrame(
            {c: pd.Series([], dtype=str if c == "device_id" else "int64") for c in columns}
        )
    table = pd.crosstab(anomalies["device_id"].astype(str), anomalies["severity"])
    table = table.reindex(columns=list(SEVERITIES), fill_value=0).astype("int64")
    table.insert(0, "anomalies", table.sum(axis=1).astype("int64"))
    table = table.rename_axis(index="device_id", columns=None).reset_index()
    table["device_id"] = table["device_id"].astype(str)
    table = table.sort_values(["anomalies", "device_id"], ascending=[False, True], kind="stable")
    return table[columns].reset_index(drop=True)


def _span_text(span: pd.Timedelta) -> str:
    """``24 h``, ``7 days`` or pandas' own text for odd spans."""
    hours = span / pd.Timedelta("1h")
    if hours == int(hours) and hours <= 48:
        return f"{int(hours)} h"
    days = span / pd.Timedelta("1D")
    return f"{int(days)} days" if days == int(days) else str(span)


def _count_by(devices: pd.DataFrame, column: str) -> pd.DataFrame:
    counts = devices[column].astype(str).value_counts().rename_axis(column).reset_index()
    counts["count"] = counts["count"].astype("int64")
    return counts.sort_values(["count", column], ascending=[False, True]).reset_index(drop=True)


@dataclass
class FleetOverview:
    """The fleet at ``now``; ``tables()`` gives every table, ``to_frame()`` the key figures."""

    now: pd.Timestamp
    window: pd.Timedelta
    devices: int
    active: int
    readings: int
    by_status: pd.DataFrame
    by_type: pd.DataFrame
    readings_by_device: pd.DataFrame
    anomalies: dict[str, int]
    offline: pd.DataFrame
    noisiest: pd.DataFrame

    def to_frame(self) -> pd.DataFrame:
        """The headline figures as ``metric, value`` rows."""
        last = f"last {_span_text(self.window)}"
        facts: dict[str, int] = {
            "devices": self.devices,
            "active devices": self.active,
            "offline devices": len(self.offline),
            f"readings ({last})": self.readings,
        }
        facts.update({f"anomalies {s} ({last})": n for s, n in self.anomalies.items()})
        return pd.DataFrame({"metric": list(facts), "value": [int(v) for v in facts.values()]})

    def tables(self) -> dict[str, pd.DataFrame]:
        """Every table of the overview, by name."""
        anomalies = pd.DataFrame(
            {"severity": list(self.anomalies), "count": list(self.anomalies.values())}
        ).astype({"count": "int64"})
        return {
            "summary": self.to_frame(),
            "devices_by_status": self.by_status,
            "devices_by_type": self.by_type,
            "anomalies_by_severity": anomalies,
            "readings_by_device": self.readings_by_device,
            "offline_devices": self.offline,
            "noisiest_devices": self.noisiest,
        }

    def _repr_html_(self) -> str:
        parts = [f"<h4>Fleet overview at {self.now.isoformat()}</h4>"]
        parts.append(key_values_html(dict(zip(*self.to_frame().to_dict("list").values()))))
        for name, table in list(self.tables().items())[1:]:
            parts.append(f"<h5>{name.replace('_', ' ')}</h5>" + frame_to_html(table))
        return "".join(parts)


@legacy_call_forms(positional=("now",), store_first=True)
def fleet_overview(
    store: Store,
    *,
    now: TimeLike | None = None,
    window: str | pd.Timedelta = "24h",
    top: int = 10,
    devices: str | Sequence[str] | None = None,
    source: str = "rollups",
) -> FleetOverview:
    """Summarise the fleet over the ``window`` before ``now`` (default: the last 24 hours).

    ``active`` counts devices whose projected status is ``active``; ``offline`` lists those
    whose status is ``offline`` (kept current by ``Platform.update_connectivity``).
    Readings are counted exactly in ``[now - window, now)`` from roll-ups, never from a
    scan of raw readings; ``noisiest`` lists the ``top`` devices by anomalies in the window.

    Parameters
    ----------
    now
        The moment to look back from; ``None`` is the current time. Pass a fixed value for
        reproducible output.
    window
        How far to look back.
    top
        How many of the noisiest devices to list.
    devices
        Only these devices (``NotFoundError`` if one is unknown); ``None`` is the fleet.
    source
        ``"rollups"`` or ``"raw"``: where reading counts come from (see
        :func:`reading_counts`).
    """
    end = utc_timestamp(pd.Timestamp.now("UTC") if now is None else now, field="now")
    span = pd.Timedelta(window)
    start = end - span
    if span <= pd.Timedelta(0):
        raise ValidationError(f"must be positive, got {span}", field="window")
    devices_table = fleet_devices(store, devices)
    device_ids = list(devices_table["device_id"])
    readings_by_device = reading_counts(store, device_ids, start, end, source)
    anomalies = read_anomalies(store, start=start, end=end)
    if len(anomalies):
        anomalies = anomalies[anomalies["device_id"].astype(str).isin(device_ids)]
    offline = devices_table.loc[
        devices_table["status"] == "offline", ["device_id", "device_type", "last_seen"]
    ].reset_index(drop=True)
    return FleetOverview(
        now=end,
        window=span,
        devices=len(devices_table),
        active=int((devices_table["status"] == "active").sum()),
        readings=int(readings_by_device["readings"].sum()),
        by_status=_count_by(devices_table, "status"),
        by_type=_count_by(devices_table, "device_type"),
        readings_by_device=readings_by_device,
        anomalies=severity_counts(anomalies),
        offline=offline,
        noisiest=anomalies_by_device(anomalies).head(top),
    )
