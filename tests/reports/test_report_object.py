"""``Report`` rendering: self-contained HTML, Markdown, determinism; no store needed."""

from __future__ import annotations

import re

import pandas as pd
import pytest
from matplotlib.figure import Figure

from iotlab.reports import Report
from iotlab.reports.figures import anomaly_timeline_figure, readings_figure, uptime_figure

T0 = pd.Timestamp("2026-01-01", tz="UTC")


def _report() -> Report:
    ts = pd.date_range(T0, periods=48, freq="h")
    readings = pd.DataFrame({"sensor_id": "temp_01", "ts": ts, "value": range(48)})
    anomalies = readings.iloc[[5, 30]].assign(severity=["low", "critical"], device_id="d1")
    devices = pd.DataFrame({"device_id": ["d1", "d2"], "uptime": [0.5, 1.0]})
    return Report(
        kind="fleet_health",
        generated_at=T0,
        parameters={"start": T0.isoformat(), "devices": None},
        tables={"devices": devices, "anomalies": anomalies},
        figures={
            "readings": readings_figure(readings, anomalies, "d1"),
            "uptime": uptime_figure(devices),
            "timeline": anomaly_timeline_figure(anomalies, T0, T0 + pd.Timedelta("2D")),
        },
    )


def test_html_is_self_contained(tmp_path) -> None:
    path = _report().to_html(tmp_path / "out" / "report.html")
    text = path.read_text()
    assert text.startswith("<!DOCTYPE html>")
    assert not re.search(r"""(src|href)\s*=\s*["']?https?://""", text)
    assert "http://" not in text and "https://" not in text
    assert text.count('src="data:image/png;base64,') == 3
    assert "<h2>Devices</h2>" in text and "critical" in text


def test_html_and_markdown_are_deterministic() -> None:
    first, second = _report(), _report()
    assert first.render_html() == second.render_html()
    assert first.to_markdown(embed_figures=True) == second.to_markdown(embed_figures=True)


def test_markdown_holds_tables_and_names_figures() -> None:
    text = _report().to_markdown()
    assert text.startswith("# Fleet health\n")
    assert "| device_id | uptime |" in text and "| d1 | 0.5 |" in text
    assert "_Figure uptime: see the HTML report._" in text
    assert "- devices: all" in text


def test_repr_html_embeds_figures_inline() -> None:
    fragment = _report()._repr_html_()
    assert fragment.startswith('<div class="iotlab-report">')
    assert fragment.count("data:image/png;base64,") == 3


def test_figures_are_plain_figures_and_mark_anomalies() -> None:
    report = _report()
    assert all(type(f) is Figure for f in report.figures.values())
    (ax,) = report.figures["readings"].axes
    marked = sorted(c.get_label() for c in ax.collections)
    assert marked == ["critical", "low"]
    bars = report.figures["timeline"].axes[0].patches
    assert sum(p.get_height() for p in bars) == pytest.approx(2)


def test_empty_figures_say_so() -> None:
    empty = pd.DataFrame({"sensor_id": [], "ts": pd.DatetimeIndex([], tz="UTC"), "value": []})
    fig = readings_figure(empty, empty, "nothing")
    assert any("no readings" in t.get_text() for t in fig.axes[0].texts)
    fig = uptime_figure(pd.DataFrame({"device_id": [], "uptime": []}))
    assert any("no devices" in t.get_text() for t in fig.axes[0].texts)
