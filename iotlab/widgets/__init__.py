"""Interactive ipywidgets views of a Platform: a device explorer and a fleet overview.

Both read through the :class:`~iotlab.Platform` API only, so they work on every backend,
and keep what they drew readable for tests (``DeviceExplorer.plotted``).
"""

from __future__ import annotations

from iotlab.widgets._data import INTERVALS
from iotlab.widgets.explorer import DeviceExplorer
from iotlab.widgets.overview import FleetOverviewWidget

__all__ = ["INTERVALS", "DeviceExplorer", "FleetOverviewWidget"]
