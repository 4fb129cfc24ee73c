"""``Simulation``: the frames one run of the simulator produces.

Examples
--------
>>> from iotlab.simulate import Fleet
>>> sim = Fleet(2, seed=1).simulate("2026-01-05", days=1, freq="1h")
>>> list(sim.readings.columns)
['device_id', 'sensor_id', 'ts', 'value', 'quality', 'status']
>>> str(sim.readings["ts"].dtype)
'datetime64[ms, UTC]'
>>> sim
<Simulation 2 devices, 2026-01-05 00:00 to 2026-01-06 00:00 UTC: 96 readings, ...>
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["Simulation"]


@dataclass(frozen=True)
class Simulation:
    """The result of :meth:`Fleet.simulate`.

    Attributes
    ----------
    readings
        ``device_id, sensor_id, ts, value, quality, status``, sorted by device, sensor
        and time. A missing reading is a missing row, never a NaN.
    device_metrics
        Heartbeats: ``device_id, ts, cpu, memory, battery, signal`` while online.
    labels
        Ground truth: ``device_id, sensor_id (NaN for device faults), start, end
        (exclusive), kind``.
    events
        Lifecycle events: ``device_id, occurred_at, event_type, data``.
    devices, sensors
        The simulated devices and their sensors as provisioned.
    start, end
        The simulated window ``[start, end)``.
    """

    readings: pd.DataFrame
    device_metrics: pd.DataFrame
    labels: pd.DataFrame
    events: pd.DataFrame
    devices: pd.DataFrame
    sensors: pd.DataFrame
    start: pd.Timestamp
    end: pd.Timestamp

    def __repr__(self) -> str:
        fmt = "%Y-%m-%d %H:%M"
        return (
            f"<Simulation {len(self.devices)} devices, {self.start.strftime(fmt)} to "
            f"{self.end.strftime(fmt)} UTC: {len(self.readings)} readings, "
            f"{len(self.device_metrics)} heartbeats, {len(self.labels)} labels, "
            f"{len(self.events)} events>"
        )

    @classmethod
    def concat(cls, parts: Iterable[Simulation]) -> Simulation:
        """Join chunks (from :meth:`Fleet.simulate_chunks`) into one simulation, sorted
        as :meth:`Fleet.simulate` sorts its frames."""
        parts = list(parts)
        if not parts:
            raise ValueError("nothing to concatenate")

        def join(name: str, keys: list[str]) -> pd.DataFrame:
            frame: pd.DataFrame = pd.concat([getattr(p, name) for p in parts], ignore_index=True)
            return frame.sort_values(keys, kind="stable", ignore_index=True)

        devices = join("devices", ["device_id"]).drop_duplicates("device_id", ignore_index=True)
        sensors = join("sensors", ["device_id", "sensor_id"]).drop_duplicates(
            ["device_id", "sensor_id"], ignore_index=True
        )
        return cls(
            readings=join("readings", ["device_id", "sensor_id", "ts"]),
            device_metrics=join("device_metrics", ["device_id", "ts"]),
            labels=join("labels", ["device_id", "start"]),
            events=join("events", ["occurred_at", "device_id"]),
            devices=devices,
            sensors=sensors,
            start=min(p.start for p in parts),
            end=max(p.end for p in parts),
        )

    def to_xarray(self) -> xr.Dataset:  # xarray is imported lazily: it is slow to import
        """Readings as an ``xarray.Dataset`` with dims ``(device, time)``.

        One data variable per sensor id, NaN where a device has no such sensor or no
        reading. Times are UTC (stored without a zone, as xarray needs; see
        ``attrs["timezone"]``).

        Examples
        --------
        >>> from iotlab.simulate import Fleet
        >>> ds = Fleet(3, seed=2).simulate("2026-01-05", days=1, freq="1h").to_xarray()
        >>> dict(ds.sizes)
        {'device': 3, 'time': 24}
        """
        import xarray as xr

        readings = self.readings
        device_ids = self.devices["device_id"].to_numpy(dtype=object)
        device_code = pd.Index(device_ids).get_indexer(readings["device_id"])
        times = np.unique(readings["ts"].to_numpy(dtype="datetime64[ms]"))
        time_code = np.searchsorted(times, readings["ts"].to_numpy(dtype="datetime64[ms]"))
        units = dict(zip(self.sensors["sensor_id"], self.sensors["unit"]))
        kinds = dict(zip(self.sensors["sensor_id"], self.sensors["sensor_type"]))
        sensor = readings["sensor_id"].to_numpy(dtype=object)
        variables = {}
        for sensor_id in sorted(set(self.sensors["sensor_id"])):
            rows = sensor == sensor_id
            grid = np.full((len(device_ids), len(times)), np.nan)
            grid[device_code[rows], time_code[rows]] = readings["value"].to_numpy()[rows]
            variables[sensor_id] = (
                ("device", "time"),
                grid,
                {"units": units[sensor_id], "sensor_type": kinds[sensor_id]},
            )
        return xr.Dataset(
            variables,
            coords={
                "device": device_ids.astype(str),
                "time": times.astype("datetime64[ns]"),
                "device_type": ("device", self.devices["device_type"].to_numpy(dtype=str)),
            },
            attrs={"timezone": "UTC"},
        )
