"""Report tables as HTML people can read: short ids, units, percentages, times to the minute.

The tables themselves keep full values (a report's DataFrames are data); only their HTML
rendering is made for reading:

- ids (``*_id`` columns) longer than 12 characters show their first 8 and the full id on
  hover (``title``);
- known columns carry their unit in the header, shares (``uptime``) show as %;
- times show as ``YYYY-MM-DD HH:MM`` (the header says UTC), durations as h/min;
- numbers align right, text left; a ``severity`` cell gets the severity colour shared
  with the figures and widgets; long text (``reasons``) wraps, everything else does not.

Examples
--------
>>> frame = pd.DataFrame({"device_id": ["96d1fb54-db06-4400-b13f-0300231f0001"],
...                       "uptime": [0.93944], "severity": ["high"]})
>>> text = table_html(frame)
>>> '<th>uptime (%)</th>' in text, '<td class="num">93.9</td>' in text
(True, True)
>>> '<td class="id" title="96d1fb54-db06-4400-b13f-0300231f0001">96d1fb54…</td>' in text
True
"""

from __future__ import annotations

import html
import math

import pandas as pd

from iotlab.analytics._display import SEVERITY_COLORS

__all__ = ["TABLE_CSS", "table_html"]

#: header text of known columns, with units
HEADERS = {
    "device_id": "device",
    "uptime": "uptime (%)",
    "battery": "battery (%)",
    "cpu": "cpu (%)",
    "memory": "memory (%)",
    "signal": "signal (dBm)",
    "battery_days_to_empty": "battery empty in (days)",
    "battery_days_low": "90 % from (days)",
    "battery_days_high": "90 % to (days)",
    "heartbeat_interval_s": "heartbeat every (s)",
    "worst_score": "worst score",
    "open_anomalies": "open anomalies",
}
_PERCENT = {"uptime"}
_WRAP = {"reasons", "note"}

TABLE_CSS = """
.table-wrap { max-width: 100%; overflow-x: auto; }
table.iotlab { border-collapse: collapse; margin: 0.5em 0 1em; font-size: 0.78em; }
table.iotlab th, table.iotlab td { border: 1px solid #ddd; padding: 2px 5px;
  white-space: nowrap; text-align: left; vertical-align: top; }
table.iotlab td.num { text-align: right; font-variant-numeric: tabular-nums; }
table.iotlab td.wrap { white-space: normal; min-width: 24em; }
table.iotlab td.id { font-family: ui-monospace, monospace; }
table.iotlab th { background: #f3f3f3; white-space: normal; vertical-align: bottom; }
.sev { display: inline-block; padding: 0 6px; border-radius: 3px; color: #fff; }
.sev-low, .sev-medium { color: #222; }
"""


def _header(column: str, frame: pd.DataFrame) -> str:
    text = HEADERS.get(column, column.replace("_", " "))
    if isinstance(frame[column].dtype, pd.DatetimeTZDtype):
        text += " (UTC)"
    return text


def _duration(value: pd.Timedelta) -> str:
    minutes = value / pd.Timedelta("1min")
    return f"{minutes:.0f} min" if minutes < 120 else f"{minutes / 60:.1f} h"


def _cell(column: str, value: object) -> tuple[str, str, str]:
    """(css class, text, hover title) of one cell."""
    if value is None or value is pd.NaT or (isinstance(value, float) and math.isnan(value)):
        return "", "", ""
    if column == "severity" and value in SEVERITY_COLORS:
        return "sev-cell", str(value), ""
    if isinstance(value, bool):
        return "", "yes" if value else "no", ""
    if isinstance(value, pd.Timestamp):
        return "num", value.strftime("%Y-%m-%d %H:%M"), value.isoformat()
    if isinstance(value, pd.Timedelta):
        return "num", _duration(value), str(value)
    if isinstance(value, int | float):
        if column in _PERCENT:
            return "num", f"{float(value) * 100:.1f}", ""
        if isinstance(value, float):
            return "num", f"{value:.4g}" if math.isfinite(value) else str(value), ""
        return "num", str(value), ""
    text = str(value)
    if column in _WRAP:
        return "wrap", text, ""
    if column.endswith("_id") and len(text) > 12:
        return "id", text[:8] + "…", text
    return "", text, ""


def table_html(frame: pd.DataFrame, *, max_rows: int = 60, table_id: str | None = None) -> str:
    """``frame`` as a readable HTML table (see the module docstring)."""
    head = "".join(f"<th>{html.escape(_header(c, frame))}</th>" for c in frame.columns)
    rows = []
    for record in frame.head(max_rows).itertuples(index=False, name=None):
        cells = []
        for column, value in zip(frame.columns, record):
            css, text, title = _cell(column, value)
            if css == "sev-cell":
                color = SEVERITY_COLORS[text]
                cells.append(
                    f'<td><span class="sev sev-{text}" style="background:{color}">{text}</span>'
                    "</td>"
                )
                continue
            attrs = (f' class="{css}"' if css else "") + (
                f' title="{html.escape(title)}"' if title else ""
            )
            cells.append(f"<td{attrs}>{html.escape(text)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    more = len(frame) - max_rows
    note = f"<p><em>{more} more rows not shown</em></p>" if more > 0 else ""
    if frame.empty:
        note = "<p><em>no rows</em></p>"
    ident = f' id="{html.escape(table_id)}"' if table_id else ""
    return (
        f'<div class="table-wrap"><table class="iotlab"{ident}><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>{note}"
    )
