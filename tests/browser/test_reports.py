"""The HTML reports in a real headless Chromium: "needs attention" comes first and lists
the devices with injected faults first."""

from __future__ import annotations

import pandas as pd
import pytest

import iotlab
from iotlab.simulate import FaultConfig, Fleet

START = pd.Timestamp("2026-01-05", tz="UTC")
pytestmark = pytest.mark.browser


def _faulty_fleet_report(tmp_path, artifacts):
    """A fleet with battery drains and offline periods, reported half way into a drain."""
    fleet = Fleet(
        6,
        seed=5,
        device_types=["environmental"],
        faults=FaultConfig(kinds=["battery_drain", "offline"], rates={"battery_drain": 0.4}),
    )
    sim = fleet.simulate(START, days=4, freq="5min")
    labels = sim.labels
    drain = labels[labels["kind"] == "battery_drain"].sort_values("start").iloc[1]
    at = (drain["start"] + (drain["end"] - drain["start"]) / 2).ceil("5min")
    with iotlab.connect(f"sqlite:///{tmp_path / 'lab.db'}") as lab:
        lab.provision(fleet)
        lab.ingest(sim.readings, progress=False)
        lab.ingest_metrics(sim.device_metrics, progress=False)
        report = lab.report("fleet_health", start=at - pd.Timedelta("1D"), end=at, generated_at=at)
        path = report.to_html(artifacts / "fleet-health.html")
    active = labels[(labels["start"] <= at) & (labels["end"] > at)]
    # Faults under way long enough to show: a drain for 2 h, a silence for 20 min.
    shown = active[
        ((active["kind"] == "battery_drain") & (active["start"] <= at - pd.Timedelta("2h")))
        | ((active["kind"] == "offline") & (active["start"] <= at - pd.Timedelta("20min")))
    ]
    return path, set(active["device_id"]), set(shown["device_id"])


def test_fleet_health_report_puts_faulty_devices_first(browser, tmp_path, artifacts):
    chromium = browser
    from selenium.webdriver.common.by import By

    path, faulty, must_show = _faulty_fleet_report(tmp_path, artifacts)
    assert must_show, "the chosen moment has no fault under way"
    chromium.get(path.as_uri())
    sections = chromium.find_elements(By.CSS_SELECTOR, "h2")
    assert sections[0].text == "Needs attention"  # before every figure and table
    rows = chromium.find_elements(By.CSS_SELECTOR, "table#needs_attention tbody tr")
    listed = [r.find_element(By.CSS_SELECTOR, "td.id").get_attribute("title") for r in rows]
    reasons = [r.find_element(By.CSS_SELECTOR, "td.wrap").text for r in rows]
    top = listed[: len(must_show)]
    assert set(top) <= faulty, (listed, reasons)
    assert must_show <= set(listed[: len(faulty)]), (listed, reasons)
    for device, why in zip(listed, reasons):
        if device in must_show:
            assert "battery" in why or "silent since" in why, why
    # The short id shows, the full one is on hover.
    first = rows[0].find_element(By.CSS_SELECTOR, "td.id")
    assert first.text.endswith("…") and len(first.get_attribute("title")) == 36
    # Tables fit the page: nothing wider than the body's column.
    body = chromium.execute_script("return document.body.clientWidth")
    widest = chromium.execute_script(
        "return Math.max(...[...document.querySelectorAll('.table-wrap')]"
        ".map(e => e.getBoundingClientRect().width))"
    )
    assert widest <= body
    # Figures are shown at their own size: width/height attributes match the aspect ratio.
    for image in chromium.find_elements(By.CSS_SELECTOR, "img"):
        natural = chromium.execute_script(
            "return [arguments[0].naturalWidth, arguments[0].naturalHeight]", image
        )
        shown = (image.size["width"], image.size["height"])
        assert abs(natural[0] / natural[1] - shown[0] / shown[1]) < 0.02
    chromium.save_screenshot(str(artifacts / "fleet-health.png"))
    errors = [e for e in chromium.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []
