"""0.1's call forms still work for one release, warn, and give what the new forms give.

docs/api.md lists them; each test pairs an old call with its replacement.
"""

from __future__ import annotations

import pandas as pd
import pytest

import iotlab
from iotlab.analytics import device_metrics
from iotlab.history.connectivity import update_connectivity
from iotlab.ingest import IngestionService
from iotlab.simulate import Fleet

START, END = "2026-01-05", "2026-01-06"


@pytest.fixture(scope="module")
def lab():
    with iotlab.connect("sqlite://") as opened:
        fleet = Fleet(2, seed=11)
        sim = fleet.simulate(START, days=1, freq="10min")
        opened.provision(sim)
        opened.ingest(sim.readings, progress=False)
        opened.ingest_metrics(sim.device_metrics, progress=False)
        yield opened


@pytest.fixture(scope="module")
def device(lab):
    devices = lab.store.read_rows("devices")
    return devices.loc[devices["status"] == "active", "device_id"].iloc[0]


def _old(call):
    with pytest.warns(DeprecationWarning, match=r"removed in iotlab 0\.3") as caught:
        result = call()
    return result, str(caught[0].message)


def test_positional_window_and_sensor_id(lab, device):
    sensor = lab.store.read_rows("sensors", {"device_id": device})["sensor_id"].iloc[0]
    old, message = _old(lambda: lab.readings(device, sensor, START, "2026-01-05 12:00"))
    new = lab.readings(device, sensors=sensor, start=START, end="2026-01-05 12:00")
    pd.testing.assert_frame_equal(old, new)
    assert len(new) == 72
    assert "pass sensor_id, start, end as a keyword" in message
    old, message = _old(lambda: lab.readings(device, sensor_id=sensor))
    pd.testing.assert_frame_equal(old, lab.readings(device, sensors=sensor))
    assert "sensor_id= is deprecated, use sensors=" in message


def test_interval_names_and_device_id(lab, device):
    old, message = _old(lambda: lab.rollups(device, interval="hour"))
    pd.testing.assert_frame_equal(old, lab.rollups(device, interval="1h"))
    pd.testing.assert_frame_equal(old, lab.rollups(device, interval="60min"))
    assert "use interval='1h'" in message
    old, _ = _old(lambda: lab.anomalies(START, END, device_id=device))
    pd.testing.assert_frame_equal(old, lab.anomalies(start=START, end=END, devices=device))
    old, _ = _old(lambda: lab.dataset(device_ids=[device], interval="1h"))
    assert old.identical(lab.dataset(devices=device, interval="1h"))


def test_renamed_properties_and_subscribe(lab, device):
    old, message = _old(lambda: lab.devices)
    assert old is lab.repository and "use Platform.repository" in message
    heard_old, heard_new = [], []
    _, message = _old(lambda: lab.subscribe("DeviceLocationUpdated", heard_old.append))
    lab.subscribe(heard_new.append, event_types="DeviceLocationUpdated")
    state = lab.repository.load(device)
    state.update_location("hq/2/lab")
    lab.repository.save(state)
    assert [e.event_type for e in heard_old] == [e.event_type for e in heard_new]
    assert [e.event_type for e in heard_new] == ["DeviceLocationUpdated"]


def test_functions_that_took_the_platform(lab, device):
    old, message = _old(lambda: device_metrics(lab, device, START, END))
    assert "pass platform.store" in message
    new = device_metrics(lab.store, device, start=START, end=END)
    pd.testing.assert_frame_equal(old.to_frame(), new.to_frame())
    old, message = _old(lambda: update_connectivity(lab, now=END))
    assert "update_connectivity(repository)" in message
    assert list(old.columns) == list(update_connectivity(lab.repository, now=END).columns)
    service, message = _old(lambda: IngestionService(lab, scoring=None))
    assert service.store is lab.store and service.repository is lab.repository
    assert "platform.ingestion_service()" in message


def test_a_wrong_call_is_still_an_error(lab, device):
    with pytest.raises(TypeError, match="positional"):
        lab.readings(device, "a", "b", "c", "d")
    with pytest.raises(TypeError, match="not also"):
        lab.readings(device, sensor_id="a", sensors="b")
