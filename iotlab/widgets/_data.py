"""Data preparation for the widgets, free of any widget code so it can be tested alone.

Everything here takes frames that a :class:`~iotlab.Platform` returned and shapes them
for a control or a plot: the device catalogue with a ``building`` column for the filters,
the days a device has data on, resampled series, and HTML tables.

Examples
--------
>>> ts = pd.date_range("2026-01-01", periods=6, freq="5min", tz="UTC")
>>> raw = pd.DataFrame({"ts": ts, "value": [1.0, 2, 3, 4, 5, 6]})
>>> resample_series(raw, "15min")["value"].tolist()
[2.0, 5.0]
>>> len(resample_series(raw, "raw"))
6
"""

from __future__ import annotations

import datetime as dt
import html
import json
from collections.abc import Mapping

import pandas as pd

__all__ = [
    "ALL",
    "PLOT_INTERVALS",
    "building_of",
    "device_catalogue",
    "frame_html",
    "resample_series",
    "sensor_stats",
    "series_by_sensor",
]

#: Resample intervals offered by the explorer; ``raw`` plots every stored reading.
PLOT_INTERVALS: tuple[str, ...] = ("raw", "5min", "15min", "1h", "1D")

#: The filter value that lets everything through.
ALL = "(all)"


def building_of(location: object) -> str:
    """The building of a stored location (JSON text, a mapping or ``"building/floor/room"``).

    Examples
    --------
    >>> building_of('{"building": "HQ", "floor": 2, "room": "201"}')
    'HQ'
    >>> building_of("Plant-B/1/7")
    'Plant-B'
    >>> building_of(None)
    '?'
    """
    if isinstance(location, Mapping):
        return str(location.get("building", "?"))
    if not isinstance(location, str) or not location.strip():
        return "?"
    try:
        parsed = json.loads(location)
    except ValueError:
        return location.split("/")[0].strip() or "?"
    return building_of(parsed) if isinstance(parsed, Mapping) else str(parsed)


def device_catalogue(devices: pd.DataFrame) -> pd.DataFrame:
    """The devices projection reduced to what the filters need, sorted by id.

    Columns: ``device_id, device_type, status, building``, all text.

    Examples
    --------
    >>> rows = pd.DataFrame({"device_id": ["b", "a"], "device_type": ["x", "y"],
    ...                      "status": ["active", "offline"],
    ...                      "location": ['{"building": "HQ"}', '{"building": "Lab"}']})
    >>> device_catalogue(rows)["building"].tolist()
    ['Lab', 'HQ']
    """
    columns = ["device_id", "device_type", "status", "building"]
    if devices.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
    table = pd.DataFrame(
        {
            "device_id": devices["device_id"].astype(str).to_numpy(dtype=object),
            "device_type": devices["device_type"].astype(str).to_numpy(dtype=object),
            "status": devices["status"].astype(str).to_numpy(dtype=object),
            "building": [building_of(v) for v in devices["location"]],
        }
    )
    return table.sort_values("device_id", kind="stable").reset_index(drop=True)


def series_by_sensor(readings: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Split a device's readings into one ``ts, value`` frame per sensor, sorted by time.

    Accepts readings with a ``ts`` column or a ``ts``/DatetimeIndex index.
    """
    frame = readings if "ts" in readings.columns else readings.reset_index(names="ts")
    out: dict[str, pd.DataFrame] = {}
    for sensor_id, part in frame.groupby("sensor_id", sort=True):
        out[str(sensor_id)] = (
            part[["ts", "value"]].sort_values("ts", kind="stable").reset_index(drop=True)
        )
    return out


def resample_series(series: pd.DataFrame, interval: str) -> pd.DataFrame:
    """Mean of ``value`` per ``interval`` bin (bins without readings are left out).

    Why resample at all: a week of one-minute readings is 10,080 points per sensor, more
    than a plot a few hundred pixels wide can show; the mean per bin shows the shape and
    hides the noise. ``"raw"`` returns the series unchanged.
    """
    if interval == "raw" or series.empty:
        return series.reset_index(drop=True)
    binned = series.set_index("ts")["value"].resample(interval).mean().dropna()
    return binned.rename_axis("ts").reset_index()


def sensor_stats(series: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """Count, mean, min and max of each sensor's series (the fallback metrics panel).

    Examples
    --------
    >>> s = {"t": pd.DataFrame({"ts": [0, 1], "value": [1.0, 3.0]})}
    >>> sensor_stats(s).to_dict("records")
    [{'sensor_id': 't', 'count': 2, 'mean': 2.0, 'min': 1.0, 'max': 3.0}]
    """
    rows = [
        {
            "sensor_id": sensor_id,
            "count": len(frame),
            "mean": float(frame["value"].mean()) if len(frame) else float("nan"),
            "min": float(frame["value"].min()) if len(frame) else float("nan"),
            "max": float(frame["value"].max()) if len(frame) else float("nan"),
        }
        for sensor_id, frame in series.items()
    ]
    return pd.DataFrame(rows, columns=["sensor_id", "count", "mean", "min", "max"])


def _cell(value: object) -> str:
    if isinstance(value, pd.Timestamp | dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def frame_html(frame: pd.DataFrame, *, title: str = "", max_rows: int = 30) -> str:
    """A small, escaped HTML table (last ``max_rows`` rows) with an optional heading.

    Examples
    --------
    >>> frame_html(pd.DataFrame({"a": ["<x>"]}), title="T")
    '<b>T</b><table ...><tr><th>a</th></tr><tr><td>&lt;x&gt;</td></tr></table>'
    """
    head = f"<b>{html.escape(title)}</b>" if title else ""
    if frame.empty:
        return head + "<p><i>none</i></p>"
    shown = frame.tail(max_rows)
    cells = "".join(f"<th>{html.escape(str(c))}</th>" for c in shown.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_cell(v))}</td>" for v in row) + "</tr>"
        for row in shown.itertuples(index=False)
    )
    hidden = len(frame) - len(shown)
    more = f"<p><i>{hidden} earlier rows not shown</i></p>" if hidden else ""
    style = 'style="font-size: 85%; border-collapse: collapse"'
    return f"{head}{more}<table {style}><tr>{cells}</tr>{body}</table>"
