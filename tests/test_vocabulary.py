"""One vocabulary across the API (docs/api.md): ``devices=``/``sensors=`` take one id or
several and mean the same either way; intervals are pandas offset aliases."""

from __future__ import annotations

import pandas as pd
import pytest

import iotlab
from iotlab.detect import RollingZScoreDetector
from iotlab.errors import ValidationError
from iotlab.simulate import Fleet

START, END = "2026-01-05", "2026-01-06"


@pytest.fixture(scope="module")
def lab():
    with iotlab.connect("sqlite://") as opened:
        sim = Fleet(3, seed=5).simulate(START, days=1, freq="10min")
        opened.provision(sim)
        opened.ingest(sim.readings, progress=False)
        opened.ingest_metrics(sim.device_metrics, progress=False)
        opened.detect_anomalies(
            start=START, end=END, detector=RollingZScoreDetector(), progress=False
        )
        yield opened


@pytest.fixture(scope="module")
def device(lab):
    return str(lab.store.read_rows("devices")["device_id"].iloc[0])


def test_one_device_is_the_same_as_a_list_of_one(lab, device):
    window = {"start": START, "end": END}
    pd.testing.assert_frame_equal(
        lab.anomalies(devices=device, **window), lab.anomalies(devices=[device], **window)
    )
    one = lab.report("device_performance", devices=device, generated_at=END, **window)
    listed = lab.report("device_performance", devices=[device], generated_at=END, **window)
    assert one.parameters["devices"] == listed.parameters["devices"] == [device]
    pd.testing.assert_frame_equal(one.tables["devices"], listed.tables["devices"])
    assert lab.dataset(devices=device, interval="1h").sizes["device"] == 1
    assert lab.fleet_overview(now=END, devices=device).devices == 1


def test_one_sensor_is_the_same_as_a_list_of_one(lab, device):
    sensor = lab.store.read_rows("sensors", {"device_id": device})["sensor_id"].iloc[0]
    pd.testing.assert_frame_equal(
        lab.readings(device, sensors=sensor), lab.readings(device, sensors=[sensor])
    )
    assert set(lab.readings(device, sensors=sensor)["sensor_id"]) == {sensor}


@pytest.mark.parametrize(("alias", "minutes"), [("1h", 60), ("60min", 60), ("1min", 1)])
def test_rollup_intervals_are_offset_aliases(lab, device, alias, minutes):
    buckets = lab.rollups(device, interval=alias)["bucket_start"].drop_duplicates()
    assert (buckets.diff().dropna() % pd.Timedelta(minutes=minutes) == pd.Timedelta(0)).all()


def test_an_interval_without_a_rollup_names_the_ones_kept(lab, device):
    with pytest.raises(ValidationError, match=r"interval: no roll-up for interval '15min'.*1min"):
        lab.rollups(device, interval="15min")


def test_a_device_filter_of_the_wrong_type_is_a_clear_error(lab):
    with pytest.raises(ValidationError, match="devices: must be ids"):
        lab.anomalies(devices=[1, 2])
    with pytest.raises(ValidationError, match="devices: must be an id or a list of ids, got 7"):
        lab.anomalies(devices=7)
