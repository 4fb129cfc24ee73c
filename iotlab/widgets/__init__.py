"""Interactive ipywidgets views of a Platform: a device explorer and a fleet overview.

Both read through the :class:`~iotlab.Platform` API only, so they work on every backend,
and keep what they drew readable for tests (``DeviceExplorer.plotted``).
"""

from __future__ import annotations

from iotlab.widgets._data import PLOT_INTERVALS
from iotlab.widgets.explorer import DeviceExplorer
from iotlab.widgets.overview import FleetOverviewWidget

__all__ = ["PLOT_INTERVALS", "DeviceExplorer", "FleetOverviewWidget"]


def __getattr__(name: str) -> object:
    if name == "INTERVALS":  # 0.1's name, easily confused with the store's roll-up intervals
        from iotlab._compat import deprecated

        deprecated("iotlab.widgets.INTERVALS is deprecated, use PLOT_INTERVALS")
        return PLOT_INTERVALS
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
