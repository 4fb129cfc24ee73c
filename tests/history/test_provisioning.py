"""Provisioning simulator fleets and single devices; connectivity from heartbeats."""

from __future__ import annotations

import types

import numpy as np
import pandas as pd
import pytest

from iotlab.errors import UnknownEventError, ValidationError
from iotlab.history import DeviceRepository
from iotlab.history.connectivity import update_connectivity
from iotlab.history.provisioning import provision
from iotlab.simulate import Fleet

T0 = pd.Timestamp("2026-01-01", tz="UTC")


def test_provision_fleet_is_bulk_and_idempotent(lab):
    fleet = Fleet(n_devices=3, seed=101)
    ids = lab.provision(fleet)
    assert ids == fleet.devices["device_id"].tolist()
    versions = lab.repository.versions(ids)
    assert versions == dict.fromkeys(ids, 2)  # provisioned + activated
    first = lab.repository.load(ids[0])
    spec = fleet.sensors[fleet.sensors["device_id"] == ids[0]].iloc[0]
    assert first.status == "active"
    assert first.sensors[spec["sensor_id"]].calibration_date == spec["calibration_date"]
    assert first.location == fleet.devices["location"].iloc[0]
    assert lab.provision(fleet) == ids  # again: nothing new
    assert [len(lab.repository.events(i)) for i in ids] == [2, 2, 2]
    stored = lab.store.read_rows("sensors", {"device_id": ids})
    assert len(stored) == len(fleet.sensors)


def test_provision_simulation_replays_original_times(lab):
    sim = Fleet(n_devices=3, seed=202).simulate(start="2026-01-05", days=1, freq="1h")
    ids = lab.provision(sim)
    assert set(ids) == set(sim.events["device_id"])
    for device_id, events in sim.events.groupby("device_id"):
        history = lab.repository.history(device_id)
        assert history["event_type"].tolist() == events["event_type"].tolist()
        assert history["occurred_at"].tolist() == events["occurred_at"].tolist()
        before = events["occurred_at"].iloc[1] - pd.Timedelta("1s")
        assert lab.repository.load(device_id, as_of=before).status == "inactive"
    assert lab.provision(sim) == ids
    assert sum(len(lab.repository.events(i)) for i in ids) == len(sim.events)


def test_malformed_simulation_events_are_refused(lab, new_id):
    def sim(rows):
        return types.SimpleNamespace(
            events=pd.DataFrame(rows, columns=["device_id", "occurred_at", "event_type", "data"])
        )

    with pytest.raises(UnknownEventError, match="unknown event type 'DeviceRebooted'"):
        provision(lab.repository, sim([(new_id, T0, "DeviceRebooted", {})]))
    with pytest.raises(ValidationError, match="first event is DeviceActivated"):
        provision(lab.repository, sim([(new_id, T0, "DeviceActivated", {})]))
    with pytest.raises(UnknownEventError, match=r"missing fields \['device_type', 'location'\]"):
        provision(lab.repository, sim([(new_id, T0, "DeviceProvisioned", {})]))
    with pytest.raises(ValidationError, match="expected a simulator Fleet"):
        provision(lab.repository, object())
    assert lab.repository.versions([new_id]) == {}  # nothing was half-written


def test_provision_device_infers_sensor_specs(lab, new_id):
    device_id = lab.provision_device(
        "environmental",
        location="HQ/2/201",
        sensors=[
            "temp_01",
            {
                "sensor_id": "x1",
                "sensor_type": "light",
                "unit": "lx",
                "min_value": 0,
                "max_value": 1e5,
            },
        ],
        device_id=new_id,
        manufacturer="Acme",
        at=T0,
    )
    d = lab.repository.load(device_id)
    assert (d.status, d.manufacturer, d.created_at) == ("active", "Acme", T0)
    assert d.sensors["temp_01"].sensor_type == "temperature"
    assert d.sensors["x1"].max_value == 1e5
    generated = lab.provision_device(
        "power_meter", location={"building": "B1"}, sensors=["power_01"]
    )
    assert generated.startswith("power_meter-")
    with pytest.raises(ValidationError, match=f"device_id: device {new_id} already exists"):
        lab.provision_device("environmental", location="HQ", sensors=[], device_id=new_id)
    with pytest.raises(ValidationError, match="sensors: cannot infer the type of sensor 'foo_01'"):
        lab.provision_device("environmental", location="HQ", sensors=["foo_01"])
    with pytest.raises(ValidationError, match=r"colour: unknown attribute\(s\) \['colour'\]"):
        lab.provision_device("environmental", location="HQ", sensors=[], colour="red")


def heartbeats(device_id: str, start: pd.Timestamp, minutes: int) -> pd.DataFrame:
    ts = pd.date_range(start, periods=minutes, freq="1min").astype("datetime64[ms, UTC]")
    ones = np.ones(minutes)
    return pd.DataFrame(
        {
            "device_id": device_id,
            "ts": ts,
            "cpu": ones,
            "memory": ones,
            "battery": ones,
            "signal": ones,
        }
    )


def test_update_connectivity_turns_gaps_into_events(lab, new_id):
    lab.provision_device(
        "environmental", location="HQ", sensors=["temp_01"], device_id=new_id, at=T0
    )
    lab.store.write_rows("device_metrics", heartbeats(new_id, T0, 60))  # until 00:59

    def mine(frame):
        return frame[frame["device_id"] == new_id].reset_index(drop=True)

    assert mine(lab.update_connectivity(now=T0 + pd.Timedelta("30min"))).empty
    gone = mine(lab.update_connectivity(now=T0 + pd.Timedelta("2h"), timeout="15min"))
    assert gone["event_type"].tolist() == ["DeviceWentOffline"]
    assert gone["last_seen"].tolist() == [T0 + pd.Timedelta("59min")]
    assert lab.repository.load(new_id).status == "offline"
    assert mine(
        update_connectivity(lab.repository, now=T0 + pd.Timedelta("2h10min"))
    ).empty  # still silent
    lab.store.write_rows("device_metrics", heartbeats(new_id, T0 + pd.Timedelta("3h"), 5))
    back = mine(lab.update_connectivity(now=T0 + pd.Timedelta("3h5min")))
    assert back["event_type"].tolist() == ["DeviceCameOnline"]
    assert back["occurred_at"].tolist() == [T0 + pd.Timedelta("3h")]
    d = lab.repository.load(new_id)
    assert (d.status, d.last_seen) == ("active", T0 + pd.Timedelta("3h"))
    with pytest.raises(ValidationError, match="timeout: must be positive"):
        lab.update_connectivity(now=T0, timeout="0s")


def renamed(fleet: Fleet, prefix: str) -> types.SimpleNamespace:
    """The fleet with ``prefix`` before every device id (a second copy of the same fleet)."""
    return types.SimpleNamespace(
        devices=fleet.devices.assign(device_id=prefix + fleet.devices["device_id"]),
        sensors=fleet.sensors.assign(device_id=prefix + fleet.sensors["device_id"]),
    )


def test_concurrent_provisioning_equals_sequential(lab, new_id):
    fleet = Fleet(n_devices=30, seed=303)
    tables = {}
    for workers in (1, 16):
        prefix = f"{new_id}-w{workers}-"
        repo = DeviceRepository(lab.store, append_workers=workers)
        ids = provision(repo, renamed(fleet, prefix), at=T0)
        assert repo.versions(ids) == dict.fromkeys(ids, 2)
        tables[workers] = {
            name: lab.store.read_rows(name, {"device_id": ids})
            .assign(device_id=lambda f, p=prefix: f["device_id"].str.removeprefix(p))
            .reset_index(drop=True)
            for name in ("devices", "sensors")
        }
        assert len(tables[workers]["devices"]) == 30
        assert len(tables[workers]["sensors"]) == len(fleet.sensors)
        assert repo.rebuild_projections(ids) == 30
        for name, before in tables[workers].items():
            after = lab.store.read_rows(name, {"device_id": ids}).assign(
                device_id=lambda f, p=prefix: f["device_id"].str.removeprefix(p)
            )
            pd.testing.assert_frame_equal(after, before)
    for name in ("devices", "sensors"):
        pd.testing.assert_frame_equal(tables[16][name], tables[1][name])
