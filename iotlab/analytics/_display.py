"""Rendering helpers shared by analytics results and reports: HTML, Markdown, PNG.

Everything here is pure and deterministic (same input, same bytes), so notebooks and
tests can compare outputs. Figures are encoded as base64 PNG without the "Software"
metadata chunk, so the bytes do not depend on where they were drawn.
"""

from __future__ import annotations

import base64
import html
import io
import math

import pandas as pd
from matplotlib.figure import Figure

from iotlab.detect.severity import SEVERITIES  # one tuple, the detector's

__all__ = [
    "SEVERITIES",
    "SEVERITY_COLORS",
    "figure_to_base64_png",
    "figure_to_img_tag",
    "frame_to_html",
    "frame_to_markdown",
    "key_values_html",
    "markdown_text",
    "plain_text",
]

#: One palette for reports and widgets: yellow to dark red, each distinct from the blue
#: lines the readings are drawn with (markers also get a dark edge).
SEVERITY_COLORS = {"low": "#f2c94c", "medium": "#f2994a", "high": "#d7301f", "critical": "#67000d"}


def figure_to_base64_png(figure: Figure, *, dpi: int = 96) -> str:
    """Encode ``figure`` as base64 PNG text (no pyplot, no backend state).

    Examples
    --------
    >>> from matplotlib.figure import Figure
    >>> figure_to_base64_png(Figure(figsize=(1, 1)))[:8]
    'iVBORw0K'
    """
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, metadata={"Software": None})
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def figure_to_img_tag(figure: Figure, alt: str) -> str:
    """An ``<img>`` tag holding ``figure`` as an embedded ``data:`` URI."""
    data = figure_to_base64_png(figure)
    return (
        f'<img alt="{html.escape(alt)}" style="max-width:100%" '
        f'src="data:image/png;base64,{data}"/>'
    )


def _format_cell(value: object) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NaT:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return str(value)


def frame_to_html(frame: pd.DataFrame, *, max_rows: int = 60) -> str:
    """A DataFrame as a compact HTML table (first ``max_rows`` rows, floats to 4 digits).

    Examples
    --------
    >>> print(frame_to_html(pd.DataFrame({"a": [1.23456]})))  # doctest: +ELLIPSIS
    <table class="iotlab"><thead><tr><th>a</th></tr></thead><tbody><tr><td>1.235</td>...
    """
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_format_cell(v))}</td>" for v in row) + "</tr>"
        for row in frame.head(max_rows).itertuples(index=False, name=None)
    )
    more = len(frame) - max_rows
    note = f"<p><em>{more} more rows not shown</em></p>" if more > 0 else ""
    if frame.empty:
        note = "<p><em>no rows</em></p>"
    return (
        f'<table class="iotlab"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{note}'
    )


def frame_to_markdown(frame: pd.DataFrame, *, max_rows: int = 60) -> str:
    """A DataFrame as a GitHub-flavoured Markdown table (no ``tabulate`` needed).

    Examples
    --------
    >>> print(frame_to_markdown(pd.DataFrame({"device": ["d1"], "uptime": [0.5]})))
    | device | uptime |
    | --- | --- |
    | d1 | 0.5 |
    """
    if frame.empty:
        return "_no rows_"
    lines = [
        "| " + " | ".join(markdown_text(c) for c in frame.columns) + " |",
        "| " + " | ".join("---" for _ in frame.columns) + " |",
    ]
    for row in frame.head(max_rows).itertuples(index=False, name=None):
        cells = (markdown_text(_format_cell(v)) for v in row)
        lines.append("| " + " | ".join(cells) + " |")
    if len(frame) > max_rows:
        lines.append(f"\n_{len(frame) - max_rows} more rows not shown_")
    return "\n".join(lines)


def plain_text(text: object) -> str:
    """``text`` for matplotlib, shown as is: a ``$`` starts no mathtext (a device id
    ``$x^$`` would fail to draw and take the whole figure with it).

    Examples
    --------
    >>> print(plain_text("cost $5 and $10"))
    cost \\$5 and \\$10
    """
    return str(text).replace("$", r"\$")


def markdown_text(text: object) -> str:
    """``text`` for a Markdown document, shown as is: HTML is escaped (Markdown renders
    raw HTML, ``<script>`` included), and so are the characters that would start
    emphasis, code, a link or a table cell (``_`` is left: ids are full of it, and
    inside a word it starts nothing).

    Examples
    --------
    >>> print(markdown_text("<img src=x onerror=alert(1)> *a* |b| [c](javascript:x)"))
    &lt;img src=x onerror=alert(1)&gt; \\*a\\* \\|b\\| \\[c\\](javascript:x)
    """
    escaped = html.escape(str(text), quote=False)
    for char in "\\`*[]|":
        escaped = escaped.replace(char, "\\" + char)
    return escaped


def key_values_html(pairs: dict[str, object]) -> str:
    """A two-column HTML table of labelled values."""
    rows = "".join(
        f"<tr><th style='text-align:left'>{html.escape(k)}</th>"
        f"<td>{html.escape(_format_cell(v))}</td></tr>"
        for k, v in pairs.items()
    )
    return f'<table class="iotlab">{rows}</table>'
