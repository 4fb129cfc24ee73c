"""``Report``: tables and figures, shown in Jupyter and exported as one self-contained file.

The HTML export holds everything it needs: CSS inline and figures as base64 PNG
``data:`` URIs, so the file opens offline, can be mailed, and loads nothing from the
network. Output is deterministic for a fixed ``generated_at``.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from iotlab.analytics._display import (
    figure_to_base64_png,
    frame_to_markdown,
    key_values_html,
    markdown_text,
)
from iotlab.reports._html import TABLE_CSS, table_html

__all__ = ["Report"]

_CSS_DPI = 96

_CSS = (
    """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto;
       max-width: 1000px; padding: 0 1em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; border-bottom: 1px solid #ddd; }
.notes { color: #555; font-size: 0.9em; }
img { max-width: 100%; height: auto; }
"""
    + TABLE_CSS
)


def _figure_html(figure: Figure, name: str) -> str:
    """The figure as an embedded PNG rendered at twice the density it is shown at, in a
    box as wide as the figure at 96 px per inch: sharp, never stretched (the image keeps
    its aspect ratio, and narrows with the page)."""
    width, _ = figure.get_size_inches()
    data = figure_to_base64_png(figure, dpi=2 * _CSS_DPI)
    return (
        f'<div class="figure" style="width:{round(width * _CSS_DPI)}px;max-width:100%">'
        f'<img alt="{html.escape(name)}" style="max-width:100%" '
        f'src="data:image/png;base64,{data}"/></div>'
    )


def _title(name: str) -> str:
    return name.replace("_", " ").capitalize()


@dataclass
class Report:
    """A built report.

    Parameters
    ----------
    kind
        ``device_performance``, ``anomaly_summary`` or ``fleet_health``.
    generated_at
        When it was built (UTC); part of the output, so fix it for reproducible files.
    parameters
        What it was built from: window, devices, options.
    tables
        Named DataFrames, in display order.
    figures
        Named matplotlib figures, in display order.
    notes
        Sentences a reader needs (what was left out and why).

    Examples
    --------
    >>> rep = Report("demo", pd.Timestamp("2026-01-01", tz="UTC"), {"days": 1},
    ...              {"counts": pd.DataFrame({"severity": ["low"], "count": [2]})}, {})
    >>> print(rep.to_markdown())
    # Demo
    <BLANKLINE>
    Generated at 2026-01-01T00:00:00+00:00.
    <BLANKLINE>
    - days: 1
    <BLANKLINE>
    ## Counts
    <BLANKLINE>
    | severity | count |
    | --- | --- |
    | low | 2 |
    """

    kind: str
    generated_at: pd.Timestamp
    parameters: dict[str, object]
    tables: dict[str, pd.DataFrame]
    figures: dict[str, Figure]
    notes: list[str] = field(default_factory=list)

    @property
    def title(self) -> str:
        return _title(self.kind)

    def _body_html(self) -> str:
        parts = [
            f"<h1>{html.escape(self.title)}</h1>",
            f"<p>Generated at {html.escape(self.generated_at.isoformat())}.</p>",
            key_values_html({k: _parameter_text(v) for k, v in self.parameters.items()}),
        ]
        if self.notes:
            items = "".join(f"<li>{html.escape(n)}</li>" for n in self.notes)
            parts.append(f'<ul class="notes">{items}</ul>')
        # Who needs attention comes first, before any figure.
        first = [n for n in ("needs_attention",) if n in self.tables]
        for name in first:
            parts.append(self._table_html(name))
        for name, figure in self.figures.items():
            parts.append(f"<h2>{html.escape(_title(name))}</h2>{_figure_html(figure, name)}")
        for name in self.tables:
            if name not in first:
                parts.append(self._table_html(name))
        return "\n".join(parts)

    def _table_html(self, name: str) -> str:
        body = table_html(self.tables[name], table_id=name)
        title = html.escape(_title(name))
        return f'<section id="section-{html.escape(name)}"><h2>{title}</h2>{body}</section>'

    def _repr_html_(self) -> str:
        return f'<div class="iotlab-report">{self._body_html()}</div>'

    def render_html(self) -> str:
        """The whole report as one HTML document (CSS inline, figures embedded)."""
        return (
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{html.escape(self.title)}</title><style>{_CSS}</style></head>"
            f"<body>\n{self._body_html()}\n</body></html>\n"
        )

    def to_html(self, path: str | Path) -> Path:
        """Write the report as one self-contained HTML file; return its path.

        Parent directories are created.
        """
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(self.render_html(), encoding="utf-8")
        return target

    def to_markdown(self, *, embed_figures: bool = False) -> str:
        """The report as Markdown: parameters, notes, tables, and the figures' names.

        ``embed_figures=True`` adds each figure as a base64 PNG image (large, but one file).
        """
        text = markdown_text  # what the data says (device ids...) is shown, never rendered
        lines = [f"# {text(self.title)}", "", f"Generated at {self.generated_at.isoformat()}.", ""]
        lines += [f"- {text(k)}: {text(_parameter_text(v))}" for k, v in self.parameters.items()]
        if self.notes:
            lines += ["", *(f"> {text(n)}" for n in self.notes)]
        for name, figure in self.figures.items():
            lines += ["", f"## {text(_title(name))}", ""]
            if embed_figures:
                data = figure_to_base64_png(figure)
                lines.append(f"![{text(name)}](data:image/png;base64,{data})")
            else:
                lines.append(f"_Figure {text(name)}: see the HTML report._")
        for name, table in self.tables.items():
            lines += ["", f"## {text(_title(name))}", "", frame_to_markdown(table)]
        return "\n".join(lines)

    def __repr__(self) -> str:
        tables = ", ".join(f"{k} ({len(v)} rows)" for k, v in self.tables.items())
        return (
            f"<Report {self.kind} generated {self.generated_at.isoformat()}: tables {tables}; "
            f"figures {', '.join(self.figures) or 'none'}>"
        )


def _parameter_text(value: object) -> str:
    if value is None:
        return "all"
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value) if value else "none"
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return str(value)
