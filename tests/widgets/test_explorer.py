"""The device explorer driven as a user would, through its real ipywidgets controls.

Each test changes one control and checks that what was drawn (``plotted``,
``plotted_anomalies``) is what the platform holds for the new selection. One small
fleet is written per backend and shared by the module's tests (they only read it).
"""

from __future__ import annotations

import datetime as dt
import uuid

import numpy as np
import pandas as pd
import pytest

import iotlab
from iotlab.errors import NotFoundError, ValidationError
from iotlab.widgets import DeviceExplorer, FleetOverviewWidget

DAY0 = pd.Timestamp("2026-03-02", tz="UTC")
DAYS = [dt.date(2026, 3, 2), dt.date(2026, 3, 3), dt.date(2026, 3, 4)]
DEVICES = {  # id -> (type, location, sensors)
    "env-a": ("environmental", "HQ/1/101", ["humidity_01", "temp_01"]),
    "env-b": ("environmental", "Lab/0/3", ["humidity_01", "temp_01"]),
    "pwr-c": ("power_meter", "HQ/0/1", ["power_01", "voltage_01"]),
}
SPIKE_AT = DAY0 + pd.Timedelta("1D 10h")  # env-a temp_01 jumps here


def _readings() -> pd.DataFrame:
    """Three days at 15 minutes: a daily cycle per sensor, one spike on env-a temp_01."""
    ts = pd.date_range(DAY0, periods=3 * 96, freq="15min", tz="UTC")
    daily = np.sin(2 * np.pi * np.arange(len(ts)) / 96)
    rng = np.random.default_rng(9)
    parts = []
    for n, (device, (_, _, sensors)) in enumerate(DEVICES.items()):
        for m, sensor in enumerate(sensors):
            value = 20.0 + 10 * n + 5 * m + 2 * daily + rng.normal(0, 0.1, len(ts))
            if (device, sensor) == ("env-a", "temp_01"):
                value[ts == SPIKE_AT] += 40.0
            parts.append(
                pd.DataFrame(
                    {
                        "device_id": device,
                        "sensor_id": sensor,
                        "ts": ts,
                        "value": value,
                        "quality": 100,
                        "status": "ok",
                    }
                )
            )
    return pd.concat(parts, ignore_index=True)


def _module_store_url(backend: str, request: pytest.FixtureRequest, tmp_path_factory) -> str:
    """Like the ``store_url`` fixture of tests/conftest.py, but shared by the module."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('explorer') / 'iotlab.db'}"
    host, port = request.getfixturevalue("cassandra_contact")
    keyspace = f"t_{uuid.uuid4().hex[:16]}"
    request.getfixturevalue("cassandra_keyspaces").append(keyspace)
    return f"cassandra://{host}:{port}/{keyspace}?replication_factor=1"


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("cassandra", marks=pytest.mark.cassandra)]
)
def lab(request: pytest.FixtureRequest, tmp_path_factory) -> iotlab.Platform:
    """A platform holding three provisioned devices, their readings and one anomaly."""
    if request.param == "cassandra":
        request.applymarker(pytest.mark.cassandra)
    url = _module_store_url(request.param, request, tmp_path_factory)
    with iotlab.connect(url) as platform:
        for device, (kind, location, sensors) in DEVICES.items():
            platform.provision_device(
                kind,
                location=location,
                sensors=sensors,
                device_id=device,
                at=DAY0 - pd.Timedelta("1D"),
            )
        platform.ingest(_readings(), progress=False)
        from iotlab.detect import RollingZScoreDetector

        platform.detect_anomalies(
            devices=["env-a"], detector=RollingZScoreDetector(window="6h"), progress=False
        )
        yield platform


def _values(lab: iotlab.Platform, device: str, sensor: str, start=None, end=None):
    return lab.readings(device, sensors=sensor, start=start, end=end)["value"].to_numpy()


def test_opens_on_the_first_device_with_all_sensors_and_days(lab):
    explorer = DeviceExplorer(lab)
    assert explorer.device_picker.options == ("env-a", "env-b", "pwr-c")
    assert explorer.device_picker.value == "env-a"
    assert explorer.sensor_picker.value == ("humidity_01", "temp_01")
    assert explorer.date_range.value == (DAYS[0], DAYS[-1])
    assert explorer.window == (DAY0, DAY0 + pd.Timedelta("3D"))
    assert sorted(explorer.plotted) == ["humidity_01", "temp_01"]
    for sensor, drawn in explorer.plotted.items():
        np.testing.assert_array_equal(drawn["value"].to_numpy(), _values(lab, "env-a", sensor))
    assert len(explorer.plotted["temp_01"]) == 3 * 96
    assert bytes(explorer.figure_view.value).startswith(b"\x89PNG")


def test_changing_the_device_redraws_its_readings_once(lab):
    explorer = DeviceExplorer(lab)
    before = explorer.updates
    explorer.device_picker.value = "pwr-c"
    assert explorer.updates == before + 1
    assert explorer.sensor_picker.options == ("power_01", "voltage_01")
    assert sorted(explorer.plotted) == ["power_01", "voltage_01"]
    np.testing.assert_array_equal(
        explorer.plotted["voltage_01"]["value"].to_numpy(), _values(lab, "pwr-c", "voltage_01")
    )
    assert [ax.get_ylabel() for ax in explorer.figure.axes] == ["power_01 (kW)", "voltage_01 (V)"]


def test_sensor_selection_decides_the_panels(lab):
    explorer = DeviceExplorer(lab)
    explorer.sensor_picker.value = ("temp_01",)
    assert list(explorer.plotted) == ["temp_01"]
    assert len(explorer.figure.axes) == 1
    explorer.sensor_picker.value = ()
    assert explorer.plotted == {}


def test_day_range_limits_the_readings(lab):
    explorer = DeviceExplorer(lab, device_id="env-b")
    explorer.date_range.value = (DAYS[1], DAYS[1])
    start, end = DAY0 + pd.Timedelta("1D"), DAY0 + pd.Timedelta("2D")
    assert explorer.window == (start, end)
    drawn = explorer.plotted["temp_01"]
    assert len(drawn) == 96
    assert drawn["ts"].min() == start and drawn["ts"].max() < end
    np.testing.assert_array_equal(
        drawn["value"].to_numpy(), _values(lab, "env-b", "temp_01", start, end)
    )


def test_set_days_clips_to_the_data_and_rejects_empty_ranges(lab):
    explorer = DeviceExplorer(lab)
    explorer.set_days("2026-03-03", "2026-12-31")
    assert explorer.date_range.value == (DAYS[1], DAYS[2])
    with pytest.raises(ValidationError, match="no data between 2027-01-01 and 2027-01-02"):
        explorer.set_days("2027-01-01", "2027-01-02")


def test_resampling_averages_each_bin(lab):
    explorer = DeviceExplorer(lab, sensors=["temp_01"], start="2026-03-02", end="2026-03-02")
    raw = explorer.plotted["temp_01"]
    explorer.interval_picker.value = "1h"
    hourly = explorer.plotted["temp_01"]
    assert len(hourly) == 24
    assert hourly["value"].iloc[0] == pytest.approx(raw["value"].iloc[:4].mean())
    explorer.interval_picker.value = "1D"
    assert explorer.plotted["temp_01"]["value"].tolist() == pytest.approx([raw["value"].mean()])
    explorer.interval_picker.value = "raw"
    assert len(explorer.plotted["temp_01"]) == 96


def test_anomaly_overlay_shows_the_stored_spike_and_hides_on_toggle(lab):
    explorer = DeviceExplorer(lab)
    points = explorer.plotted_anomalies
    assert SPIKE_AT in set(points["ts"])
    spike = points[points["ts"] == SPIKE_AT].iloc[0]
    assert spike["sensor_id"] == "temp_01"
    assert spike["value"] == pytest.approx(
        _values(lab, "env-a", "temp_01", SPIKE_AT, SPIKE_AT + pd.Timedelta("1min"))[0]
    )
    assert len(points) == len(lab.anomalies(devices="env-a"))
    explorer.anomaly_toggle.value = False
    assert explorer.plotted_anomalies.empty
    explorer.anomaly_toggle.value = True
    explorer.sensor_picker.value = ("humidity_01",)  # the spike is on temp_01 only
    assert "temp_01" not in set(explorer.plotted_anomalies["sensor_id"])
    explorer.date_range.value = (DAYS[0], DAYS[0])  # the spike is on the second day
    explorer.sensor_picker.value = ("temp_01",)
    assert SPIKE_AT not in set(explorer.plotted_anomalies["ts"])


def test_filters_narrow_the_device_choices(lab):
    explorer = DeviceExplorer(lab)
    assert explorer.type_filter.options == ("(all)", "environmental", "power_meter")
    assert explorer.building_filter.options == ("(all)", "HQ", "Lab")
    explorer.type_filter.value = "power_meter"
    assert explorer.device_picker.options == ("pwr-c",)
    assert sorted(explorer.plotted) == ["power_01", "voltage_01"]
    explorer.type_filter.value = "(all)"
    explorer.building_filter.value = "Lab"
    assert explorer.device_picker.value == "env-b"
    explorer.type_filter.value = "power_meter"  # nothing is a power meter in the Lab
    assert explorer.device_picker.value is None
    assert explorer.plotted == {} and "no device matches" in explorer.message.value
    explorer.building_filter.value = "(all)"
    assert explorer.device_picker.value == "pwr-c"
    assert explorer.status_filter.options == ("(all)", "active")


def test_details_show_history_and_metrics_of_the_device(lab):
    explorer = DeviceExplorer(lab, device_id="env-b")
    history = lab.repository.history("env-b")
    assert "Lifecycle history" in explorer.details.value
    for event_type in history["event_type"]:
        assert event_type in explorer.details.value
    assert "env-b" in explorer.details.value and "env-a" not in explorer.details.value


def test_repr_is_short_and_the_mimebundle_is_a_widget(lab):
    explorer = DeviceExplorer(lab, sensors=["temp_01"], interval="15min")
    assert repr(explorer) == (
        "DeviceExplorer(device='env-a', sensors=['temp_01'], days=2026-03-02..2026-03-04, "
        "interval='15min', anomalies=on)"
    )
    bundle = explorer._repr_mimebundle_()
    assert bundle["text/plain"] == repr(explorer)
    view = bundle["application/vnd.jupyter.widget-view+json"]
    assert view["model_id"] == explorer.widget.model_id


def test_bad_interval_is_refused():
    with (
        iotlab.connect("sqlite://") as platform,
        pytest.raises(ValidationError, match="interval: must be one"),
    ):
        DeviceExplorer(platform, interval="7min")


def test_an_empty_store_shows_a_message():
    with iotlab.connect("sqlite://") as platform:
        explorer = DeviceExplorer(platform)
        assert explorer.device_picker.value is None
        assert explorer.plotted == {}
        assert "no device matches" in explorer.message.value


def test_fleet_overview_counts_and_opens_devices_in_the_explorer(lab):
    explorer = DeviceExplorer(lab, device_id="env-b")
    explorer.type_filter.value = "environmental"
    overview = FleetOverviewWidget(
        lab, now=DAY0 + pd.Timedelta("3D"), window="7D", explorer=explorer
    )
    assert overview.overview.devices == 3
    assert overview.overview.readings == 3 * 2 * 3 * 96
    assert overview.device_picker.options[1] == ("env-a", "env-a")  # noisiest first
    overview.device_picker.value = "pwr-c"
    assert explorer.type_filter.value == "(all)"
    assert explorer.device_picker.value == "pwr-c"
    assert sorted(explorer.plotted) == ["power_01", "voltage_01"]
    overview.window_picker.value = "1h"
    assert overview.overview.readings == 3 * 2 * 4
    assert repr(overview).startswith("FleetOverviewWidget(now=2026-03-05T00:00:00+00:00")


def test_devices_limit_what_both_widgets_offer(lab):
    explorer = DeviceExplorer(lab, devices=["pwr-c", "env-b"])
    assert explorer.device_picker.options == ("env-b", "pwr-c")
    assert explorer.building_filter.options == ("(all)", "HQ", "Lab")
    overview = FleetOverviewWidget(
        lab, now=DAY0 + pd.Timedelta("3D"), window="7D", devices=["pwr-c"]
    )
    assert overview.overview.devices == 1
    assert overview.overview.readings == 2 * 3 * 96


def test_unknown_device_or_sensor_is_refused_by_name(lab):
    with pytest.raises(NotFoundError, match="device 'nope' is not among the devices offered"):
        DeviceExplorer(lab, device_id="nope")
    with pytest.raises(
        ValidationError, match=r"sensors: device pwr-c has no sensor\(s\) \['temp_01'\]"
    ):
        DeviceExplorer(lab, device_id="pwr-c", sensors=["temp_01"])


def test_refresh_picks_up_devices_provisioned_since():
    with iotlab.connect("sqlite://") as platform:
        explorer = DeviceExplorer(platform)
        assert explorer.device_picker.options == ()
        platform.provision_device(
            "environmental", location="Annex/0/1", sensors=["temp_01"], device_id="late-d", at=DAY0
        )
        frame = _readings()
        frame = frame[(frame["device_id"] == "env-a") & (frame["sensor_id"] == "temp_01")]
        platform.ingest(frame.assign(device_id="late-d"), progress=False)
        explorer.refresh()
        assert explorer.device_picker.options == ("late-d",)
        assert explorer.building_filter.options == ("(all)", "Annex")
        assert len(explorer.plotted["temp_01"]) == 3 * 96
