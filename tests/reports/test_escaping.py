"""A device id is data, never markup: HTML, Markdown, widgets and matplotlib show it as is."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

import iotlab
from iotlab.analytics._display import figure_to_base64_png
from iotlab.detect import RollingZScoreDetector
from iotlab.widgets import DeviceExplorer

DAY0 = pd.Timestamp("2026-03-02", tz="UTC")
#: Runs script in HTML, renders as HTML in Markdown, and ``$x^$`` breaks mathtext.
EVIL = '<img src=x onerror="alert(1)"><script>alert(2)</script>$x^$|*'
RAW = ("<img", "<script")


@pytest.fixture(scope="module")
def lab():
    with iotlab.connect("sqlite://") as platform:
        platform.provision_device(
            "environmental",
            location="HQ/1/101",
            sensors=["temp_01"],
            device_id=EVIL,
            at=DAY0 - pd.Timedelta("1D"),
        )
        ts = pd.date_range(DAY0, periods=2 * 96, freq="15min", tz="UTC")
        value = 20 + 2 * np.sin(np.arange(len(ts)) / 15.0)
        value[100] += 40.0
        readings = pd.DataFrame(
            {"device_id": EVIL, "sensor_id": "temp_01", "ts": ts, "value": value}
        )
        platform.ingest(readings, progress=False)
        platform.detect_anomalies(
            devices=[EVIL], detector=RollingZScoreDetector(window="6h"), progress=False
        )
        yield platform


def _no_markup(text: str) -> None:
    for raw in RAW:
        assert raw not in text, raw


def test_device_metrics_html_escapes_the_device_id(lab) -> None:
    fragment = lab.device_metrics(EVIL, start=DAY0, end=DAY0 + pd.Timedelta("2D"))._repr_html_()
    _no_markup(fragment)
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in fragment


def test_explorer_shows_the_device_id_as_text_and_draws_it(lab) -> None:
    explorer = DeviceExplorer(lab, device_id=EVIL)
    _no_markup(explorer.details.value)
    assert "&lt;script&gt;" in explorer.details.value
    assert bytes(explorer.figure_view.value).startswith(b"\x89PNG")  # mathtext did not fail
    assert "$x^$" in explorer.figure.axes[0].get_title().replace("\\$", "$")


@pytest.mark.parametrize("kind", ["device_performance", "anomaly_summary", "fleet_health"])
def test_reports_escape_the_device_id_in_html_markdown_and_figures(lab, kind) -> None:
    report = lab.report(kind, start=DAY0, end=DAY0 + pd.Timedelta("2D"))
    for figure in report.figures.values():
        assert figure_to_base64_png(figure)  # drawing raises if "$x^$" reaches mathtext
    shown = any(
        (table.astype(str) == EVIL).any().any() or EVIL in map(str, table.columns)
        for table in report.tables.values()
    )
    # The report's own figures are the only images it embeds.
    page = re.sub(
        r'<img alt="[^"<>]*" style="max-width:100%" src="data:[^"]*"/>', "", report.render_html()
    )
    _no_markup(page)
    markdown = report.to_markdown()
    _no_markup(markdown)
    if shown:
        assert "&lt;script&gt;" in page and "&lt;script&gt;" in markdown
