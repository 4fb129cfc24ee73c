"""The figures of the reports, drawn with matplotlib's object API.

Each function returns a new :class:`matplotlib.figure.Figure` that no global registry
holds (no ``pyplot``), so figures never leak and nothing depends on a GUI backend.
Timestamps are plotted as naive UTC, labelled as such.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure

from iotlab.analytics._display import SEVERITIES, SEVERITY_COLORS, plain_text

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["anomaly_timeline_figure", "readings_figure", "uptime_figure"]

_MAX_LABELLED_BARS = 40


def _naive_utc(ts: pd.Series) -> np.ndarray:
    return pd.DatetimeIndex(ts).tz_convert("UTC").tz_localize(None).to_numpy()


def _break_gaps(ts: pd.Series, values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Times and values with a NaN inserted in every gap over 3x the median spacing, so an
    offline period shows as a break in the line rather than a straight segment."""
    times, data = _naive_utc(ts), values.to_numpy(dtype=float)
    if len(times) < 3:
        return times, data
    steps = np.diff(times)
    gaps = np.flatnonzero(steps > 3 * np.median(steps)) + 1
    return np.insert(times, gaps, times[gaps - 1] + steps[gaps - 1] // 2), np.insert(
        data, gaps, np.nan
    )


def _shade_gaps(ax: Axes, ts: pd.Series) -> int:
    """Shade every silence over 3x the median spacing (offline, dropout); return how many."""
    times = np.sort(_naive_utc(ts))
    if len(times) < 3:
        return 0
    steps = np.diff(times)
    gaps = np.flatnonzero(steps > 3 * np.median(steps))
    for i in gaps:
        ax.axvspan(times[i], times[i + 1], color="#bbbbbb", alpha=0.35, lw=0, zorder=0)
    return len(gaps)


def _legend_above(ax: object, **options: object) -> None:
    """A legend in one row above the axes: it never covers data."""
    ax.legend(  # type: ignore[attr-defined]
        loc="lower right",
        bbox_to_anchor=(1.0, 1.0),
        fontsize="small",
        frameon=False,
        borderaxespad=0.2,
        **options,
    )


def _format_time_axis(ax: object) -> None:
    locator = AutoDateLocator()
    ax.xaxis.set_major_locator(locator)  # type: ignore[attr-defined]
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))  # type: ignore[attr-defined]


def _empty(figure: Figure, message: str) -> Figure:
    ax = figure.add_subplot()
    ax.text(0.5, 0.5, plain_text(message), ha="center", va="center", transform=ax.transAxes)
    ax.set_axis_off()
    return figure


def readings_figure(readings: pd.DataFrame, anomalies: pd.DataFrame, title: str) -> Figure:
    """One panel per sensor: the readings as a line, anomalies as dots coloured by severity.

    Examples
    --------
    >>> ts = pd.date_range("2026-01-01", periods=3, freq="h", tz="UTC")
    >>> rows = pd.DataFrame({"sensor_id": "t", "ts": ts, "value": [1.0, 5.0, 1.0]})
    >>> marks = rows.iloc[[1]].assign(severity="high")
    >>> len(readings_figure(rows, marks, "device d1").axes)
    1
    """
    sensors = sorted(readings["sensor_id"].astype(str).unique())
    figure = Figure(figsize=(9, 1.9 * max(1, len(sensors)) + 0.6), layout="constrained")
    figure.suptitle(plain_text(title))
    if not sensors:
        return _empty(figure, "no readings in this window")
    axes = figure.subplots(len(sensors), 1, sharex=True, squeeze=False)[:, 0]
    for ax, sensor in zip(axes, sensors):
        rows = readings[readings["sensor_id"].astype(str) == sensor]
        ax.plot(*_break_gaps(rows["ts"], rows["value"]), lw=0.7, color="#3a6ea5")
        if _shade_gaps(ax, rows["ts"]):
            ax.fill_between([], [], color="#bbbbbb", alpha=0.35, label="no data")
        marks = (
            anomalies[anomalies["sensor_id"].astype(str) == sensor]
            if len(anomalies)
            else anomalies
        )
        for severity in SEVERITIES:
            hits = marks[marks["severity"] == severity] if len(marks) else marks
            if len(hits):
                ax.scatter(
                    _naive_utc(hits["ts"]),
                    hits["value"].to_numpy(),
                    s=18,
                    color=SEVERITY_COLORS[severity],
                    edgecolors="black",
                    linewidths=0.4,
                    label=severity,
                    zorder=3,
                )
        ax.set_ylabel(plain_text(sensor))
        if ax.get_legend_handles_labels()[0]:
            _legend_above(ax, ncols=5)
    _format_time_axis(axes[-1])
    axes[-1].set_xlabel("time (UTC)")
    return figure


def uptime_figure(devices: pd.DataFrame) -> Figure:
    """Uptime per device as bars, lowest first, with a line at 100%.

    ``devices`` needs ``device_id`` and ``uptime`` (a share in [0, 1]).
    """
    figure = Figure(figsize=(9, 3.6), layout="constrained")
    figure.suptitle("Uptime per device (from heartbeats)")
    if devices.empty:
        return _empty(figure, "no devices")
    ranked = devices.sort_values(["uptime", "device_id"], kind="stable")
    ax = figure.add_subplot()
    positions = np.arange(len(ranked))
    shares = ranked["uptime"].to_numpy(dtype=float) * 100
    bands = [("below 90 %", "#a50f15"), ("90 to 99 %", "#f2994a"), ("99 % or more", "#31a354")]
    colors = [bands[0][1] if s < 90 else bands[1][1] if s < 99 else bands[2][1] for s in shares]
    ax.bar(positions, shares, color=colors)
    ax.axhline(100, color="grey", lw=0.8, ls="--")
    # Zoomed to the data: differences of a few percent must stay visible.
    low = float(np.nanmin(shares)) if np.isfinite(shares).any() else 0.0
    ax.set_ylim(max(0.0, np.floor((low - 2) / 5) * 5), 100.5)
    ax.set_ylabel("uptime (%)")
    from matplotlib.patches import Patch

    ax.legend(
        handles=[Patch(color=c, label=t) for t, c in bands],
        loc="lower right",
        bbox_to_anchor=(1.0, 1.0),
        ncols=3,
        fontsize="small",
        frameon=False,
    )
    if len(ranked) <= _MAX_LABELLED_BARS:
        labels = [plain_text(str(d)[:8]) for d in ranked["device_id"]]
        ax.set_xticks(positions, labels, rotation=60, ha="right", fontsize="small")
    else:
        ax.set_xticks([])
        ax.set_xlabel(f"{len(ranked)} devices, lowest uptime first")
    return figure


def anomaly_timeline_figure(
    anomalies: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp
) -> Figure:
    """Anomalies per day (per hour for windows up to two days), stacked by severity."""
    figure = Figure(figsize=(9, 3.4), layout="constrained")
    freq: Literal["h", "D"] = "h" if end - start <= pd.Timedelta("2D") else "D"
    figure.suptitle(f"Anomalies by severity per {'hour' if freq == 'h' else 'day'}")
    ax = figure.add_subplot()
    edges = pd.date_range(start.floor(freq), end.ceil(freq), freq=freq)
    if len(edges) < 2:
        edges = pd.DatetimeIndex([start.floor(freq), start.floor(freq) + pd.Timedelta(1, freq)])
    width = (edges[1] - edges[0]) * 0.9
    lefts = _naive_utc(pd.Series(edges[:-1]))
    bottom = np.zeros(len(edges) - 1)
    for severity in SEVERITIES:
        rows = anomalies[anomalies["severity"] == severity] if len(anomalies) else anomalies
        stamps = (
            pd.DatetimeIndex(rows["ts"]).as_unit("ns").asi8 if len(rows) else np.empty(0, np.int64)
        )
        counts, _ = np.histogram(stamps, bins=edges.as_unit("ns").asi8)
        ax.bar(
            lefts,
            counts,
            # matplotlib converts a Timedelta on a date axis; its stubs expect a float.
            width=width,  # type: ignore[arg-type]
            bottom=bottom,
            align="edge",
            color=SEVERITY_COLORS[severity],
            label=severity,
        )
        bottom += counts
    ax.set_ylabel("anomalies")
    ax.set_ylim(0, max(1.0, float(bottom.max())) * 1.05)
    _legend_above(ax, ncols=4)
    if not len(anomalies):
        ax.text(0.5, 0.5, "no anomalies", ha="center", va="center", transform=ax.transAxes)
    _format_time_axis(ax)
    ax.set_xlabel("time (UTC)")
    return figure
