"""Matplotlib figures for the widgets, drawn with the object API (no pyplot state).

Figures are rendered to PNG bytes for an ``ipywidgets.Image``: that works the same in
JupyterLab, classic Notebook and VS Code, and needs no interactive backend.
"""

from __future__ import annotations

import io
from collections.abc import Mapping

import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from iotlab.analytics._display import plain_text

__all__ = ["figure_png", "series_figure"]


def series_figure(
    series: Mapping[str, pd.DataFrame],
    anomalies: pd.DataFrame,
    *,
    title: str,
    units: Mapping[str, str] | None = None,
    width: float = 8.0,
) -> Figure:
    """One panel per sensor (their units differ), anomalies as red points on top.

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
    height = 1.2 + 1.9 * panels
    # Fixed margins rather than a layout engine: constrained layout doubles the draw time,
    # and the explorer redraws on every change.
    figure = Figure(figsize=(width, height))
    figure.subplots_adjust(
        left=0.12, right=0.98, top=1 - 0.45 / height, bottom=0.85 / height, hspace=0.15
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
            if len(points):
                ax.scatter(
                    points["ts"],
                    points["value"],
                    s=22,
                    color="tab:red",
                    zorder=3,
                    label=f"anomalies ({len(points)})",
                )
                ax.legend(loc="best", fontsize="small")
    axes[0].set_title(plain_text(title))
    figure.autofmt_xdate()
    return figure


def figure_png(figure: Figure, *, dpi: int = 80) -> bytes:
    """PNG bytes of ``figure`` (without a timestamp in the metadata, so reproducible)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, metadata={"Software": None})
    return buffer.getvalue()
