"""Rows of the read-side tables (devices, sensors, events_by_day) computed from states.

These are pure functions of ``DeviceState``/events; the repository writes their output,
on every save and on ``rebuild_projections``, so both paths give identical rows.

Examples
--------
>>> from iotlab.history.aggregate import Device
>>> d = Device.provision("d1", "environmental", "HQ/1/101",
...                      sensors=[{"sensor_id": "t1", "sensor_type": "temperature",
...                                "unit": "C", "min_value": -40, "max_value": 85}],
...                      at="2026-01-01")
>>> devices_frame([d.state])[["device_id", "status", "location", "version"]]
  device_id    status                                          location  version
0        d1  inactive  {"building":"HQ","floor":1,"room":"101"}        1
>>> sensors_frame([d.state])["sensor_id"].tolist()
['t1']
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

import pandas as pd

from iotlab.history.events import Event
from iotlab.history.state import DeviceState

__all__ = ["devices_frame", "events_by_day_frame", "sensors_frame"]

_MS_UTC = "datetime64[ms, UTC]"


def _times(values: list[pd.Timestamp | None]) -> pd.Series:
    return pd.Series([pd.NaT if v is None else v for v in values], dtype=_MS_UTC)


def devices_frame(states: Sequence[DeviceState]) -> pd.DataFrame:
    """One ``devices`` row per state (location as compact JSON text)."""
    text = {
        "device_id": [s.device_id for s in states],
        "device_type": [s.device_type for s in states],
        "status": [s.status for s in states],
        "location": [
            None if s.location is None else json.dumps(s.location.to_dict(), separators=(",", ":"))
            for s in states
        ],
        "manufacturer": [s.manufacturer for s in states],
        "model": [s.model for s in states],
        "firmware_version": [s.firmware_version for s in states],
    }
    frame = pd.DataFrame({k: pd.Series(v, dtype=object) for k, v in text.items()})
    for name in ("created_at", "updated_at", "last_seen"):
        frame[name] = _times([getattr(s, name) for s in states])
    frame["version"] = pd.Series([s.version for s in states], dtype="int64")
    return frame


def sensors_frame(states: Iterable[DeviceState]) -> pd.DataFrame:
    """One ``sensors`` row per sensor fitted to each state's device."""
    rows = [(s.device_id, x.spec, x.added_at) for s in states for x in s.sensors]
    frame = pd.DataFrame(
        {
            "device_id": pd.Series([r[0] for r in rows], dtype=object),
            "sensor_id": pd.Series([r[1].sensor_id for r in rows], dtype=object),
            "sensor_type": pd.Series([r[1].sensor_type for r in rows], dtype=object),
            "unit": pd.Series([r[1].unit for r in rows], dtype=object),
            "min_value": pd.Series([r[1].min_value for r in rows], dtype="float64"),
            "max_value": pd.Series([r[1].max_value for r in rows], dtype="float64"),
        }
    )
    frame["calibration_date"] = _times([r[1].calibration_date for r in rows])
    frame["added_at"] = _times([r[2] for r in rows])
    return frame


def events_by_day_frame(events: Sequence[Event]) -> pd.DataFrame:
    """Rows of the fleet-wide ``events_by_day`` feed (the store derives ``day``)."""
    return pd.DataFrame(
        {
            "occurred_at": _times([e.occurred_at for e in events]),
            "device_id": pd.Series([e.device_id for e in events], dtype=object),
            "version": pd.Series([e.version for e in events], dtype="int64"),
            "event_type": pd.Series([e.event_type for e in events], dtype=object),
        }
    )
