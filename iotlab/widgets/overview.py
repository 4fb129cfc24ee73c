"""``FleetOverviewWidget``: the fleet at a glance, with a way into the device explorer.

It shows :func:`iotlab.analytics.fleet_overview` for a chosen look-back window (devices by
status and type, readings, anomalies by severity, the offline and the noisiest devices)
next to a bar chart of the devices by status, and lists devices worst-first: picking one
opens it in a :class:`~iotlab.widgets.DeviceExplorer` if one is attached.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets
import pandas as pd

from iotlab._time import TimeLike, utc_timestamp
from iotlab.reports._html import TABLE_CSS, table_html
from iotlab.widgets._data import ALL
from iotlab.widgets._errors import shown_in
from iotlab.widgets._plot import show_figure

if TYPE_CHECKING:
    from iotlab.widgets.explorer import DeviceExplorer

__all__ = ["WINDOWS", "FleetOverviewWidget", "status_figure"]

#: Look-back windows offered by the overview.
WINDOWS: tuple[str, ...] = ("1h", "6h", "24h", "7D", "30D")


def status_figure(by_status: pd.DataFrame, by_type: pd.DataFrame, width: float = 6.0):
    """Two bar charts: devices per status and per type.

    Examples
    --------
    >>> s = pd.DataFrame({"status": ["active"], "count": [3]})
    >>> t = pd.DataFrame({"device_type": ["env"], "count": [3]})
    >>> [ax.get_title() for ax in status_figure(s, t).axes]
    ['devices by status', 'devices by type']
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, 2.4), layout="constrained")
    FigureCanvasAgg(figure)
    left, right = figure.subplots(1, 2)
    left.barh(by_status["status"], by_status["count"], color="tab:green")
    left.set_title("devices by status")
    right.barh(by_type["device_type"], by_type["count"], color="tab:blue")
    right.set_title("devices by type")
    return figure


class FleetOverviewWidget:
    """The fleet overview over a look-back window ending at ``now``.

    Parameters
    ----------
    platform
        Where the fleet lives.
    now
        End of the window; ``None`` is the current time (pass a fixed value in tutorials
        so the output does not change).
    window
        One of ``WINDOWS``.
    devices
        Only these devices (default: the whole fleet).
    explorer
        A :class:`~iotlab.widgets.DeviceExplorer` that shows the device picked here.

    Attributes
    ----------
    overview : iotlab.analytics.FleetOverview
        What is shown.
    attention : pandas.DataFrame
        The devices that need attention over the window, worst first, with their reasons
        (:func:`iotlab.analytics.health.needs_attention`); shown first, and first in the
        device list.
    """

    def __init__(
        self,
        platform: Any,
        *,
        now: TimeLike | None = None,
        window: str = "24h",
        devices: Sequence[str] | None = None,
        explorer: DeviceExplorer | None = None,
    ) -> None:
        self.platform = platform
        self.devices = None if devices is None else list(devices)
        self.now = None if now is None else utc_timestamp(now, field="now")
        self.explorer = explorer
        self.window_picker = widgets.Dropdown(options=WINDOWS, value=window, description="last")
        self.refresh_button = widgets.Button(description="refresh", icon="refresh")
        self.device_picker = widgets.Dropdown(options=[], description="open device")
        self.attention_view = widgets.HTML()
        self.summary = widgets.HTML()
        self.chart = widgets.Image(format="png")
        self.message = widgets.HTML()
        self.error: Exception | None = None
        # Errors in these reactions are shown in self.message (see widgets._errors).
        self._pick = shown_in(self, self._on_pick)
        self.window_picker.observe(shown_in(self, lambda change: self.refresh()), names="value")
        self.refresh_button.on_click(shown_in(self, lambda button: self.refresh()))
        self.device_picker.observe(self._pick, names="value")
        self.widget = widgets.VBox(
            [
                widgets.HBox([self.window_picker, self.refresh_button, self.device_picker]),
                self.message,
                self.attention_view,
                self.chart,
                self.summary,
            ]
        )
        self.refresh()

    def _compute(self) -> Any:
        return self.platform.fleet_overview(
            now=self.now, window=self.window_picker.value, devices=self.devices
        )

    def refresh(self) -> None:
        """Recompute the overview (new data, another window) and redraw."""
        self.overview = self._compute()
        self.summary.value = self.overview._repr_html_()
        show_figure(self.chart, status_figure(self.overview.by_status, self.overview.by_type))
        self.attention = self._attention()
        self.attention_view.value = (
            f"<style>{TABLE_CSS}</style><h4>Needs attention ({len(self.attention)})</h4>"
            + table_html(self.attention, table_id="needs_attention")
        )
        first = list(self.attention["device_id"])
        noisy = list(self.overview.noisiest["device_id"]) if len(self.overview.noisiest) else []
        noisy = [d for d in noisy if d not in first]
        rest = sorted(set(self.overview.readings_by_device["device_id"]) - {*first, *noisy})
        self.device_picker.unobserve(self._pick, names="value")
        self.device_picker.options = [("", None)] + [(d, d) for d in [*first, *noisy, *rest]]
        self.device_picker.value = None
        self.device_picker.observe(self._pick, names="value")
        self.message.value = ""

    def _attention(self) -> pd.DataFrame:
        """Who needs attention over the window: open anomalies, silence, battery, data."""
        from iotlab.analytics.health import fleet_health_check
        from iotlab.analytics.overview import fleet_devices

        now = self.overview.now
        start = now - pd.Timedelta(self.window_picker.value)
        fleet = fleet_devices(self.platform.store, self.devices)
        anomalies = self.platform.anomalies(start=start, end=now)
        if len(anomalies):
            anomalies = anomalies[anomalies["device_id"].isin(fleet["device_id"])]
        found = fleet_health_check(
            self.platform.store, start, now, devices=fleet, anomalies=anomalies, now=now
        )
        return found.attention

    def _on_pick(self, change: dict[str, Any]) -> None:
        device = change["new"]
        if device is None or self.explorer is None:
            return
        explorer = self.explorer
        with explorer._hold():  # clear the filters so the device is among the choices
            for control in (
                explorer.type_filter,
                explorer.status_filter,
                explorer.building_filter,
            ):
                control.value = ALL
            explorer._apply_filters()
        explorer.device_picker.value = device

    def __repr__(self) -> str:
        facts = dict(zip(*self.overview.to_frame().to_dict("list").values()))
        return (
            f"FleetOverviewWidget(now={self.overview.now.isoformat()}, "
            f"window={self.window_picker.value!r}, devices={facts.get('devices')}, "
            f"active={facts.get('active devices')})"
        )

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        bundle = self.widget._repr_mimebundle_(**kwargs)
        bundle["text/plain"] = repr(self)
        return bundle
