"""``DeviceExplorer``: pick a device, its sensors, a range of days and an interval; see its
readings with the detected anomalies on top, its metrics and its lifecycle history.

The explorer reads through the :class:`~iotlab.Platform` API only, so it works the same on
the embedded store and on Cassandra. A device's readings for the chosen days are read once
and cached: changing the sensors, the interval or the overlay redraws without a query.
What was drawn stays readable (``plotted``, ``plotted_anomalies``) so tests and notebooks
can check the picture against the data.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import html
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets
import pandas as pd

from iotlab._time import TimeLike, utc_timestamp
from iotlab.errors import IotlabError, NotFoundError, ValidationError
from iotlab.widgets._data import (
    ALL,
    PLOT_INTERVALS,
    device_catalogue,
    frame_html,
    resample_series,
    series_by_sensor,
)
from iotlab.widgets._errors import shown_in
from iotlab.widgets._plot import series_figure, show_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from iotlab.platform import Platform

__all__ = ["DeviceExplorer", "data_days"]

_NO_DAYS = [("no data", None)]
_ANOMALY_COLUMNS = ["ts", "sensor_id", "value", "expected", "score", "severity", "status"]


def data_days(platform: Platform, device_id: str) -> list[dt.date]:
    """Every UTC day from the device's first to its last reading (gaps included).

    The extent comes from the hourly roll-ups (a few rows per day) rather than the raw
    readings, which is what makes opening a device with months of data cheap; devices
    without roll-ups fall back to their raw readings.
    """
    rollups = platform.rollups(device_id, interval="1h")
    column = "bucket_start" if "bucket_start" in rollups.columns else "ts"
    stamps = rollups[column] if len(rollups) else platform.readings(device_id)["ts"]
    if stamps.empty:
        return []
    first, last = stamps.min().floor("D"), stamps.max().floor("D")
    return [d.date() for d in pd.date_range(first, last, freq="D")]


class DeviceExplorer:
    """An interactive view of one device at a time; display it as the last line of a cell.

    Parameters
    ----------
    platform
        Where the fleet lives.
    devices
        Offer only these devices (default: every provisioned device).
    device_id
        Device shown first (default: the first by id).
    sensors
        Sensors shown first (default: all of the device's sensors).
    start, end
        Days shown first, both inclusive (default: all days with data).
    interval
        One of ``PLOT_INTERVALS`` (``"raw"`` plots every reading).
    show_anomalies
        Overlay the stored anomalies, coloured by severity (shared with the reports).
    width
        Figure width in inches.

    Attributes
    ----------
    plotted : dict[str, pandas.DataFrame]
        Per selected sensor, the ``ts, value`` rows drawn (after resampling).
    plotted_anomalies : pandas.DataFrame
        The anomaly points drawn (empty when the overlay is off).
    figure : matplotlib.figure.Figure or None
        The last figure drawn.
    updates : int
        How many times the view was redrawn (one per user change).
    """

    def __init__(
        self,
        platform: Platform,
        *,
        devices: Sequence[str] | None = None,
        device_id: str | None = None,
        sensors: Sequence[str] | None = None,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
        interval: str = "raw",
        show_anomalies: bool = True,
        width: float = 8.0,
    ) -> None:
        if interval not in PLOT_INTERVALS:
            raise ValidationError(f"must be one of {', '.join(PLOT_INTERVALS)}", field="interval")
        self.platform = platform
        self.width = width
        self.plotted: dict[str, pd.DataFrame] = {}
        self.plotted_anomalies = pd.DataFrame(columns=_ANOMALY_COLUMNS)
        self.figure: Figure | None = None
        self.updates = 0
        self.error: Exception | None = None
        self._held = 0
        self._cache: dict[str, Any] = {}
        self._cache_key: tuple[Any, ...] | None = None
        self._units: dict[str, str] = {}
        self.devices = None if devices is None else [str(d) for d in devices]
        self.catalogue = self._read_catalogue()
        self._build_controls(interval, show_anomalies)
        with self._hold():
            self._apply_filters()
            if device_id is not None:
                if device_id not in self.device_picker.options:
                    raise NotFoundError(f"device {device_id!r} is not among the devices offered")
                self.device_picker.value = device_id
            self._load_device()
            if sensors is not None:
                unknown = sorted(set(sensors) - set(self.sensor_picker.options))
                if unknown:
                    raise ValidationError(
                        f"device {self.device_picker.value} has no sensor(s) {unknown}; it has "
                        f"{list(self.sensor_picker.options)}",
                        field="sensors",
                    )
                self.sensor_picker.value = tuple(sensors)
            if start is not None or end is not None:
                self.set_days(start, end)
        self._refresh()

    # -- controls ---------------------------------------------------------------------------
    def _choices(self, column: str) -> list[str]:
        return [ALL, *sorted(set(self.catalogue[column]))]

    def _filters(self) -> list[tuple[widgets.Dropdown, str]]:
        return [
            (self.type_filter, "device_type"),
            (self.status_filter, "status"),
            (self.building_filter, "building"),
        ]

    def _build_controls(self, interval: str, show_anomalies: bool) -> None:
        choices = self._choices

        wide = {"description_width": "initial"}
        self.type_filter = widgets.Dropdown(
            options=choices("device_type"), description="type", style=wide
        )
        self.status_filter = widgets.Dropdown(
            options=choices("status"), description="status", style=wide
        )
        self.building_filter = widgets.Dropdown(
            options=choices("building"), description="building", style=wide
        )
        self.device_picker = widgets.Dropdown(
            options=[], description="device", style=wide, layout=widgets.Layout(width="380px")
        )
        self.sensor_picker = widgets.SelectMultiple(
            options=[], description="sensors", rows=4, style=wide
        )
        self.date_range = widgets.SelectionRangeSlider(
            options=_NO_DAYS,
            index=(0, 0),
            description="days",
            disabled=True,
            layout=widgets.Layout(width="480px"),
            style=wide,
        )
        self.interval_picker = widgets.Dropdown(
            options=PLOT_INTERVALS, value=interval, description="resample", style=wide
        )
        self.anomaly_toggle = widgets.Checkbox(value=show_anomalies, description="anomalies")
        self.figure_view = widgets.Image(format="png")
        # The anomaly lifecycle: pick open or acknowledged anomalies, say who, act.
        self.anomaly_list = widgets.SelectMultiple(
            options=[], description="unresolved", rows=5, layout=widgets.Layout(width="640px")
        )
        self.operator = widgets.Text(description="by", placeholder="your name")
        self.note = widgets.Text(description="note", placeholder="optional")
        self.ack_button = widgets.Button(description="acknowledge", button_style="warning")
        self.resolve_button = widgets.Button(description="resolve", button_style="success")
        self.ack_button.on_click(shown_in(self, lambda _: self._act("acknowledge")))
        self.resolve_button.on_click(shown_in(self, lambda _: self._act("resolve")))
        self.details = widgets.HTML(
            layout=widgets.Layout(width="42%", max_height="640px", overflow="auto")
        )
        self.message = widgets.HTML()

        # Errors in these reactions (a closed store, a failed query) are shown in
        # self.message, not lost in the notebook server's log.
        for control in (self.type_filter, self.status_filter, self.building_filter):
            control.observe(shown_in(self, self._on_filter), names="value")
        self.device_picker.observe(shown_in(self, self._on_device), names="value")
        for control in (
            self.sensor_picker,
            self.date_range,
            self.interval_picker,
            self.anomaly_toggle,
        ):
            control.observe(shown_in(self, self._on_view), names="value")

        self.widget = widgets.VBox(
            [
                widgets.HBox([self.type_filter, self.status_filter, self.building_filter]),
                widgets.HBox([self.device_picker, self.interval_picker, self.anomaly_toggle]),
                widgets.HBox([self.sensor_picker, self.date_range]),
                self.message,
                widgets.HBox([self.figure_view, self.details]),
                self.anomaly_list,
                widgets.HBox([self.operator, self.note, self.ack_button, self.resolve_button]),
            ]
        )

    @contextlib.contextmanager
    def _hold(self) -> Iterator[None]:
        """Suppress redraws while several controls change together (one redraw after)."""
        self._held += 1
        try:
            yield
        finally:
            self._held -= 1

    def _read_catalogue(self) -> pd.DataFrame:
        table = device_catalogue(self.platform.store.read_rows("devices"))
        if self.devices is not None:
            table = table[table["device_id"].isin(self.devices)].reset_index(drop=True)
        return table

    # -- reactions --------------------------------------------------------------------------
    def _on_filter(self, change: dict[str, Any]) -> None:
        before = self.device_picker.value
        with self._hold():
            self._apply_filters()
            if self.device_picker.value != before:
                self._load_device()
        if self.device_picker.value != before:
            self._refresh()

    def _on_device(self, change: dict[str, Any]) -> None:
        if self._held:
            return
        with self._hold():
            self._load_device()
        self._refresh()

    def _on_view(self, change: dict[str, Any]) -> None:
        if not self._held:
            self._refresh()

    def _apply_filters(self) -> None:
        table = self.catalogue
        for control, column in self._filters():
            if control.value != ALL:
                table = table[table[column] == control.value]
        ids = list(table["device_id"])
        current = self.device_picker.value
        self.device_picker.options = ids
        if ids:
            self.device_picker.value = current if current in ids else ids[0]

    def _load_device(self) -> None:
        """Point the sensor picker and the day slider at the current device."""
        device = self.device_picker.value
        if device is None:
            self.sensor_picker.options = []
            self.date_range.options, self.date_range.disabled = _NO_DAYS, True
            return
        sensors = self.platform.store.read_rows("sensors", {"device_id": device})
        self._units = dict(zip(sensors["sensor_id"].astype(str), sensors["unit"].astype(str)))
        ids = sorted(self._units)
        self.sensor_picker.options = ids
        self.sensor_picker.value = tuple(ids)
        previous = self.date_range.value
        days = data_days(self.platform, device)
        if not days:
            self.date_range.options, self.date_range.disabled = _NO_DAYS, True
            return
        self.date_range.options = [(d.strftime("%b %d"), d) for d in days]  # short: fits
        self.date_range.disabled = False
        keep = previous[0] in days and previous[1] in days
        self.date_range.value = previous if keep else (days[0], days[-1])

    # -- public -----------------------------------------------------------------------------
    @property
    def window(self) -> tuple[pd.Timestamp, pd.Timestamp] | None:
        """``[start, end)`` of the selected days in UTC, or ``None`` without data."""
        first, last = self.date_range.value
        if first is None:
            return None
        return pd.Timestamp(first, tz="UTC"), pd.Timestamp(last, tz="UTC") + pd.Timedelta("1D")

    def set_days(self, start: TimeLike | None, end: TimeLike | None) -> None:
        """Select the days from ``start`` to ``end`` (both inclusive; ``None``: the extent).

        Days outside the device's data are clipped to it.
        """
        days = [value for _, value in self.date_range.options if value is not None]
        if not days:
            return
        low = days[0] if start is None else utc_timestamp(start, field="start").date()
        high = days[-1] if end is None else utc_timestamp(end, field="end").date()
        inside = [d for d in days if low <= d <= high]
        if not inside:
            raise ValidationError(
                f"no data between {low} and {high} (data: {days[0]} to {days[-1]})", field="start"
            )
        self.date_range.value = (inside[0], inside[-1])

    def refresh(self) -> None:
        """Forget cached data (new readings, anomalies or events) and redraw."""
        self._cache.clear()
        self.catalogue = self._read_catalogue()
        with self._hold():
            for control, column in self._filters():
                current = control.value
                control.options = self._choices(column)
                control.value = current if current in control.options else ALL
            self._apply_filters()
            self._load_device()
        self._refresh()

    # -- drawing ----------------------------------------------------------------------------
    def _cached(
        self, what: str, device: str, start: pd.Timestamp, end: pd.Timestamp, read: Any
    ) -> Any:
        """What ``read()`` returns for this device and window, read once per window."""
        if self._cache_key != (device, start, end):
            self._cache.clear()  # one window at a time: memory stays bounded
            self._cache_key = (device, start, end)
        if what not in self._cache:
            self._cache[what] = read()
        return self._cache[what]

    def _readings(self, device: str, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
        return self._cached(
            "readings",
            device,
            start,
            end,
            lambda: self.platform.readings(device, start=start, end=end),
        )

    def _anomaly_points(
        self, device: str, start: pd.Timestamp, end: pd.Timestamp, sensors: Sequence[str]
    ) -> pd.DataFrame:
        found = self._cached(
            "anomalies",
            device,
            start,
            end,
            lambda: self.platform.anomalies(start=start, end=end, devices=device),
        )
        if found.empty:
            return pd.DataFrame(columns=_ANOMALY_COLUMNS)
        found = found[found["sensor_id"].astype(str).isin(sensors)]
        found = found[(found["ts"] >= start) & (found["ts"] < end)]
        columns = [c for c in [*_ANOMALY_COLUMNS, "anomaly_id"] if c in found.columns]
        return (
            found[columns].sort_values(["ts", "sensor_id"], kind="stable").reset_index(drop=True)
        )

    def _refresh(self) -> None:
        device, window = self.device_picker.value, self.window
        if device is None or window is None:
            self.plotted, self.plotted_anomalies = {}, pd.DataFrame(columns=_ANOMALY_COLUMNS)
            self.figure_view.value = b""
            self.anomaly_list.options = []
            reason = "no device matches the filters" if device is None else "no readings yet"
            self.message.value = f"<i>{reason}</i>"
            self.details.value = ""
            self.updates += 1
            return
        start, end = window
        sensors = list(self.sensor_picker.value)
        interval = self.interval_picker.value
        by_sensor = series_by_sensor(self._readings(device, start, end))
        empty = pd.DataFrame(
            {"ts": pd.Series(dtype="datetime64[ms, UTC]"), "value": pd.Series(dtype="float64")}
        )
        self.plotted = {s: resample_series(by_sensor.get(s, empty), interval) for s in sensors}
        self.plotted_anomalies = (
            self._anomaly_points(device, start, end, sensors)
            if self.anomaly_toggle.value
            else pd.DataFrame(columns=_ANOMALY_COLUMNS)
        )
        last_day = (end - pd.Timedelta("1D")).date()
        title = f"{device} · {start.date()} to {last_day} · {interval}"
        self.figure = series_figure(
            self.plotted, self.plotted_anomalies, title=title, units=self._units, width=self.width
        )
        show_figure(self.figure_view, self.figure)
        self.message.value = ""
        self._list_unresolved(device, start, end, sensors)
        self.details.value = self._cached(
            "details",
            device,
            start,
            end,
            lambda: self._metrics_html(device, start, end) + self._history_html(device),
        )
        self.updates += 1

    def _list_unresolved(
        self, device: str, start: pd.Timestamp, end: pd.Timestamp, sensors: Sequence[str]
    ) -> None:
        """Offer the window's open and acknowledged anomalies, highest score first."""
        found = self._anomaly_points(device, start, end, sensors)
        if "status" in found.columns:
            found = found[found["status"] != "resolved"]
        found = found.sort_values("score", ascending=False, kind="stable")
        options = []
        for row in found.itertuples(index=False):
            label = (
                f"{row.ts:%m-%d %H:%M} {row.sensor_id} {row.severity}: {row.value:.4g} vs "
                f"{row.expected:.4g} (score {row.score:.3g}, {row.status})"
            )
            options.append((label, row.anomaly_id))
        self.anomaly_list.options = options

    def _act(self, action: str) -> None:
        """Acknowledge or resolve the picked anomalies; errors show in the widget."""
        ids = list(self.anomaly_list.value)
        if not ids:
            self.message.value = "<i>pick one or more anomalies first</i>"
            return
        act = (
            self.platform.acknowledge_anomaly
            if action == "acknowledge"
            else self.platform.resolve_anomaly
        )
        try:
            act(ids, by=self.operator.value, note=self.note.value or None)
        except IotlabError as exc:
            self.message.value = f'<span style="color:#a50f15">{html.escape(str(exc))}</span>'
            return
        self._cache.clear()
        self._refresh()
        done = "acknowledged" if action == "acknowledge" else "resolved"
        self.message.value = f"<i>{len(ids)} anomal{'y' if len(ids) == 1 else 'ies'} {done}</i>"

    def _metrics_html(self, device: str, start: pd.Timestamp, end: pd.Timestamp) -> str:
        return self.platform.device_metrics(device, start=start, end=end)._repr_html_()

    def _history_html(self, device: str) -> str:
        history = self.platform.repository.history(device)
        wanted = ("version", "occurred_at", "event_type", "status", "change")
        keep = [c for c in wanted if c in history]
        return frame_html(history[keep] if keep else history, title="Lifecycle history")

    # -- display ----------------------------------------------------------------------------
    def __repr__(self) -> str:
        first, last = self.date_range.value
        days = f"{first}..{last}" if first is not None else "none"
        return (
            f"DeviceExplorer(device={self.device_picker.value!r}, "
            f"sensors={list(self.sensor_picker.value)}, days={days}, "
            f"interval={self.interval_picker.value!r}, "
            f"anomalies={'on' if self.anomaly_toggle.value else 'off'})"
        )

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        bundle = self.widget._repr_mimebundle_(**kwargs)
        bundle["text/plain"] = repr(self)  # short and deterministic, unlike a VBox repr
        return bundle
