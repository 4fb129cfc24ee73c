"""Device metrics and the fleet overview, computed from a Platform's store.

``device_metrics`` and ``fleet_overview`` are what ``Platform.device_metrics`` and
``Platform.fleet_overview`` call; both return dataclasses that show themselves in
Jupyter (``_repr_html_``) and convert to DataFrames.
"""

from __future__ import annotations

from iotlab.analytics._display import SEVERITIES
from iotlab.analytics.metrics import (
    DeviceMetrics,
    device_metrics,
    heartbeat_interval,
    sensor_statistics,
    severity_counts,
    uptime,
)
from iotlab.analytics.overview import FleetOverview, anomalies_by_device, fleet_overview
from iotlab.analytics.rollup_stats import rollup_statistics, split_window

__all__ = [
    "SEVERITIES",
    "DeviceMetrics",
    "FleetOverview",
    "anomalies_by_device",
    "device_metrics",
    "fleet_overview",
    "heartbeat_interval",
    "rollup_statistics",
    "sensor_statistics",
    "severity_counts",
    "split_window",
    "uptime",
]
