"""Feed an :class:`~iotlab.ingest.IngestionService` from pandas frames or the simulator.

MQTT is in :mod:`iotlab.ingest.mqtt`.

Examples
--------
>>> import iotlab
>>> from iotlab.simulate import Fleet
>>> from iotlab.ingest import IngestionService
>>> lab = iotlab.connect("sqlite://")
>>> fleet = Fleet(2, seed=1)
>>> _ = lab.provision(fleet)
>>> with lab.ingestion_service(scoring=None) as service:
...     n = feed_stream(service, fleet, "2026-01-05", freq="10min", days=0.5, speed=None)
...     service.flush()
>>> n == service.stats.readings_written == len(lab.readings(fleet.devices["device_id"][0])) * 2
True
>>> lab.close()
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pandas as pd

from iotlab._time import TimeLike

__all__ = ["feed_frames", "feed_stream"]


def feed_frames(
    service: Any,
    frames: Iterable[pd.DataFrame],
    *,
    source: str = "dataframe",
    metrics: bool = False,
) -> int:
    """Submit each frame to ``service`` (readings, or heartbeats if ``metrics``); return rows."""
    total = 0
    submit = service.submit_metrics if metrics else service.submit
    for frame in frames:
        submit(frame, source=source)
        total += len(frame)
    return total


def feed_stream(
    service: Any,
    fleet: Any,
    start: TimeLike,
    *,
    freq: str | pd.Timedelta = "1min",
    days: float | None = None,
    end: TimeLike | None = None,
    speed: float | None = 60.0,
    batch: str | pd.Timedelta | None = None,
) -> int:
    """Play ``fleet.stream(...)`` into ``service`` at ``speed``; return readings submitted.

    Blocks the calling thread while the stream plays (run it in a thread from a notebook).
    """
    stream = fleet.stream(start, freq=freq, days=days, end=end, speed=speed, batch=batch)
    return feed_frames(service, stream, source="simulator")
