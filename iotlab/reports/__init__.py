"""Reports a fleet manager can read and share: tables plus matplotlib figures.

Examples
--------
>>> import iotlab
>>> sorted(REPORT_KINDS)
['anomaly_summary', 'device_performance', 'fleet_health']
"""

from __future__ import annotations

from iotlab.reports.builders import (
    REPORT_KINDS,
    anomaly_summary,
    build_report,
    device_performance,
    fleet_health,
)
from iotlab.reports.report import Report

__all__ = [
    "REPORT_KINDS",
    "Report",
    "anomaly_summary",
    "build_report",
    "device_performance",
    "fleet_health",
]
