"""Matplotlib figures for the widgets, drawn with the object API (no pyplot state).

Figures are rendered to PNG bytes for an ``ipywidgets.Image``: that works the same in
JupyterLab, classic Notebook and VS Code, and needs no interactive backend.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import TYPE_CHECKING

import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

if TYPE_CHECKING:
    from ipywidgets import Image

from iotlab.analytics._display import SEVERITY_COLORS, plain_text

__all__ = ["RENDER_DPI", "SHOWN_DPI", "figure_png", "series_figure", "show_figure"]


def series_figure(
    series: Mapping[str, pd.DataFrame],
    anomalies: pd.DataFrame,
    *,
    title: str,
    units: Mapping[str, str] | None = None,
    width: float = 8.0,
) -> Figure:
    """One panel per sensor (their units differ), anomalies on top coloured by severity.

    Examples
    --------
    >>> ts = pd.date_range("2026-01-01", periods=3, freq="h", tz="UTC")
    >>> s = {"temp_01": pd.DataFrame({"ts": ts, "value": [1.0, 2.0, 1.5]})}
    >>> fig = series_figure(s, pd.DataFrame(), title="d1")
    >>> len(fig.axes), fig.axes[0].get_ylabel()
    (1, 'temp_01')
    """
    units = units or {}
    panels = max(len(series), 1)
    height = 1.2 + 2.1 * panels
    # Fixed margins rather than a layout engine: constrained layout doubles the draw time,
    # and the explorer redraws on every change.
    figure = Figure(figsize=(width, height))
    figure.subplots_adjust(
        left=0.12, right=0.98, top=1 - 0.75 / height, bottom=0.85 / height, hspace=0.35
    )
    FigureCanvasAgg(figure)
    axes = figure.subplots(panels, 1, sharex=True, squeeze=False)[:, 0]
    if not series:
        axes[0].text(0.5, 0.5, "no sensor selected", ha="center", va="center")
        axes[0].set_axis_off()
    for ax, (sensor_id, frame) in zip(axes, series.items()):
        ax.plot(frame["ts"], frame["value"], lw=0.9, color="tab:blue")
        unit = units.get(sensor_id)
        ax.set_ylabel(plain_text(f"{sensor_id} ({unit})" if unit else sensor_id))
        ax.grid(alpha=0.3)
        if frame.empty:
            ax.text(
                0.5,
                0.5,
                "no readings in this range",
                transform=ax.transAxes,
                ha="center",
                va="center",
            )
        if len(anomalies):
            points = anomalies[anomalies["sensor_id"] == sensor_id]
            severity = (
                points["severity"].astype(str)
                if "severity" in points
                else pd.Series("high", index=points.index)
            )
            for level, color in SEVERITY_COLORS.items():
                mine = points[severity == level]
                if len(mine):
                    ax.scatter(
                        mine["ts"],
                        mine["value"],
                        s=26,
                        color=color,
                        edgecolors="black",
                        linewidths=0.5,
                        zorder=3,
                        label=f"{level} ({len(mine)})",
                    )
            if len(points):
                # Above the panel, never over the data.
                ax.legend(
                    loc="lower right",
                    bbox_to_anchor=(1.0, 1.0),
                    ncol=4,
                    fontsize="x-small",
                    frameon=False,
                    borderaxespad=0.1,
                )
    # Padded: the legend each panel carries over its top sits between the title and it.
    axes[0].set_title(plain_text(title), pad=16, fontsize="medium")
    figure.autofmt_xdate()
    return figure


#: CSS pixels per inch a figure is shown at, and the density it is rendered at: twice
#: as many pixels, so it stays sharp on high-DPI screens.
SHOWN_DPI = 80
RENDER_DPI = 160


def figure_png(figure: Figure, *, dpi: int = RENDER_DPI) -> bytes:
    """PNG bytes of ``figure`` (without a timestamp in the metadata, so reproducible)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, metadata={"Software": None})
    return buffer.getvalue()


def show_figure(image: Image, figure: Figure) -> None:
    """Put ``figure`` into an ``ipywidgets.Image`` at exactly its size in CSS pixels
    (``SHOWN_DPI`` per inch), so it is never stretched, whatever the PNG's density."""
    width, height = figure.get_size_inches()
    image.value = figure_png(figure)
    image.layout.width = f"{round(width * SHOWN_DPI)}px"
    image.layout.height = f"{round(height * SHOWN_DPI)}px"
    image.layout.object_fit = "contain"
