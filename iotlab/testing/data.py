"""Small, deterministic inputs for store tests: projections and readings frames.

Examples
--------
>>> import numpy as np
>>> frame = make_readings(np.random.default_rng(0), ["d1"], ["temp_01", "hum_01"], T0, 3)
>>> len(frame), list(frame.columns)
(6, ['device_id', 'sensor_id', 'ts', 'value', 'quality', 'status'])
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from iotlab.store.base import Store

__all__ = ["T0", "make_readings", "provision"]

#: The start of the data every contract test writes.
T0 = pd.Timestamp("2026-01-01", tz="UTC")


def provision(store: Store, sensors: dict[str, list[str]]) -> None:
    """Write the ``devices`` and ``sensors`` projections directly (no event history).

    ``sensors`` maps a device id to its sensor ids; a sensor's type is the part of
    its id before ``_`` (``temp_01`` is a ``temp`` sensor, in °C; others in %).
    """
    devices = list(sensors)
    store.write_rows(
        "devices",
        pd.DataFrame(
            {
                "device_id": devices,
                "device_type": "env",
                "status": "active",
                "location": '{"building": "A"}',
                "manufacturer": "Acme",
                "model": "E1",
                "firmware_version": "1.0",
                "created_at": T0,
                "updated_at": T0,
                "last_seen": T0,
                "version": 1,
            }
        ).astype({"created_at": "datetime64[ms, UTC]"}),
    )
    rows = [(d, s) for d, ss in sensors.items() for s in ss]
    store.write_rows(
        "sensors",
        pd.DataFrame(
            {
                "device_id": [d for d, _ in rows],
                "sensor_id": [s for _, s in rows],
                "sensor_type": [s.split("_")[0] for _, s in rows],
                "unit": ["°C" if s.startswith("temp") else "%" for _, s in rows],
                "min_value": -40.0,
                "max_value": 100.0,
                "calibration_date": T0,
                "added_at": T0,
            }
        ),
    )


def make_readings(
    rng: np.random.Generator,
    devices: list[str],
    sensors: list[str],
    start: pd.Timestamp,
    periods: int,
    freq: str = "37s",
) -> pd.DataFrame:
    """Readings on an irregular grid (default every 37 s), every device and sensor at each time."""
    ts = pd.date_range(start, periods=periods, freq=freq)
    index = pd.MultiIndex.from_product(
        [devices, sensors, ts], names=["device_id", "sensor_id", "ts"]
    )
    frame = index.to_frame(index=False)
    frame["value"] = rng.normal(20, 5, len(frame)).round(3)
    frame["quality"] = rng.integers(0, 101, len(frame))
    frame["status"] = "ok"
    return frame
