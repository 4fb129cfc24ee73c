"""The explorer's acknowledge/resolve buttons and the overview's "needs attention", on
the tiny simulated fleet of each backend (clicked through the real ipywidgets)."""

from __future__ import annotations

import pandas as pd

from iotlab.widgets import DeviceExplorer, FleetOverviewWidget
from tests.fixtures.tiny_fleet import END, START


def test_explorer_acknowledges_and_resolves(load_fresh, backend):
    loaded = load_fresh(backend)
    lab = loaded.lab
    stored = lab.anomalies(start=START, end=END)
    device = stored.loc[stored["status"] == "open", "device_id"].value_counts().index[0]
    explorer = DeviceExplorer(lab, device_id=device)
    offered = [value for _, value in explorer.anomaly_list.options]
    mine = stored[(stored["device_id"] == device) & (stored["status"] != "resolved")]
    assert sorted(offered) == sorted(mine["anomaly_id"])
    scores = mine.set_index("anomaly_id").loc[offered, "score"].to_numpy()
    assert (scores[:-1] >= scores[1:]).all()  # highest score first

    picked = offered[0]
    explorer.anomaly_list.value = (picked,)
    explorer.ack_button.click()  # nobody named: refused, shown in the widget
    assert "by: say who" in explorer.message.value
    assert (
        lab.anomalies(start=START, end=END).set_index("anomaly_id").loc[picked, "status"] == "open"
    )

    explorer.operator.value = "alice"
    explorer.note.value = "looking"
    explorer.ack_button.click()
    now = lab.anomalies(start=START, end=END).set_index("anomaly_id").loc[picked]
    assert (now["status"], now["acknowledged_by"], now["note"]) == (
        "acknowledged",
        "alice",
        "looking",
    )
    assert "1 anomaly acknowledged" in explorer.message.value
    label = dict((v, k) for k, v in explorer.anomaly_list.options)[picked]
    assert "acknowledged" in label

    explorer.anomaly_list.value = (picked,)
    explorer.resolve_button.click()
    assert (
        lab.anomalies(start=START, end=END).set_index("anomaly_id").loc[picked, "status"]
        == "resolved"
    )
    assert picked not in [v for _, v in explorer.anomaly_list.options]


def test_overview_lists_who_needs_attention_first(loaded):
    lab = loaded.lab
    overview = FleetOverviewWidget(lab, now=END, window="24h")
    attention = overview.attention
    assert len(attention) > 0
    assert attention["rank"].tolist() == list(range(1, len(attention) + 1))
    picker = [value for _, value in overview.device_picker.options][1:]
    assert picker[: len(attention)] == attention["device_id"].tolist()
    assert "Needs attention" in overview.attention_view.value
    # Devices with open anomalies in the window are listed with their worst one.
    recent = lab.anomalies(start=END - pd.Timedelta("24h"), end=END)
    recent = recent[recent["status"] == "open"]
    for device in set(recent["device_id"]):
        reasons = attention.set_index("device_id").loc[device, "reasons"]
        assert "open anomal" in reasons and "vs expected" in reasons
