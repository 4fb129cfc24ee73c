"""The simulator's API: determinism, chunks, streaming, events, errors, extension."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import iotlab.simulate as simulate
from iotlab.datasets import load_sample, make_sample
from iotlab.errors import ValidationError
from iotlab.simulate import DeviceType, FaultConfig, Fleet, SignalModel, Simulation

FRAMES = ("readings", "device_metrics", "labels", "events", "devices", "sensors")
BUSY = FaultConfig(rates={"offline": 0.5, "dropout": 0.5, "drift": 0.3, "noise_burst": 0.5})


def assert_same(a: Simulation, b: Simulation) -> None:
    for name in FRAMES:
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name), obj=name)


def test_public_names_are_pinned() -> None:
    assert sorted(simulate.__all__) == [
        "DEFAULT_DEVICE_TYPES", "DEFAULT_RATES", "DeviceType", "FACTORS", "FAULT_KINDS",
        "FaultConfig", "Fleet", "SENSOR_PREFIXES", "SignalModel", "Simulation",
    ]  # fmt: skip


def test_same_seed_same_frames_different_seed_different_data() -> None:
    a = Fleet(5, seed=21, faults=BUSY).simulate("2026-01-05", days=2, freq="10min")
    b = Fleet(5, seed=21, faults=BUSY).simulate("2026-01-05", days=2, freq="10min")
    assert_same(a, b)
    c = Fleet(5, seed=22, faults=BUSY).simulate("2026-01-05", days=2, freq="10min")
    assert set(a.devices["device_id"]).isdisjoint(c.devices["device_id"])
    assert not np.allclose(np.sort(a.readings["value"])[:100], np.sort(c.readings["value"])[:100])


def test_device_ids_are_stable_uuids() -> None:
    fleet = Fleet(3, seed=0)
    # Pinned: UUIDs come from integer draws, identical on every platform.
    assert Fleet(1, seed=0).devices["device_id"].iloc[0] in set(fleet.devices["device_id"])
    assert all(len(d) == 36 and d[14] == "4" for d in fleet.devices["device_id"])
    # A bigger fleet with the same seed extends the smaller one.
    assert set(fleet.devices["device_id"]) <= set(Fleet(6, seed=0).devices["device_id"])


def test_chunked_generation_equals_one_shot() -> None:
    fleet = Fleet(5, seed=5, faults=BUSY)
    args = {"start": "2026-01-05 13:00", "days": 2.5, "freq": "10min"}
    parts = list(fleet.simulate_chunks(**args, devices_per_chunk=2))
    assert len(parts) == 4 * 3  # 4 calendar days (13:00 + 60 h) x 3 device groups
    assert_same(Simulation.concat(parts), fleet.simulate(**args))
    assert len(fleet.simulate(**args).labels) > 0  # faults crossed chunk borders too


def test_stream_equals_simulate_and_is_paced() -> None:
    fleet = Fleet(3, seed=8, faults=BUSY)
    now = [100.0]
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        now[0] += seconds

    batches = list(
        fleet.stream("2026-01-05", freq="30min", days=1, speed=3600.0, batch="2h",
                     sleep=sleep, clock=lambda: now[0])
    )  # fmt: skip
    assert len(batches) == 12
    assert all(b["ts"].max() - b["ts"].min() < pd.Timedelta("2h") for b in batches)
    # Two hours of data per two seconds of wall clock: each batch waits its turn.
    assert waits == pytest.approx([2.0] * 12)
    joined = pd.concat(batches, ignore_index=True).sort_values(
        ["device_id", "sensor_id", "ts"], ignore_index=True
    )
    expected = fleet.simulate("2026-01-05", days=1, freq="30min").readings
    pd.testing.assert_frame_equal(joined, expected)


@pytest.fixture(scope="module")
def lifecycle() -> Simulation:
    """Enough device-weeks for every lifecycle event, at a coarse rate."""
    return Fleet(60, seed=4).simulate("2026-01-05", days=14, freq="30min")


def test_events_follow_the_lifecycle(lifecycle: Simulation) -> None:
    sim = lifecycle
    events = sim.events
    assert events["occurred_at"].is_monotonic_increasing
    kinds = set(events["event_type"])
    assert {"DeviceProvisioned", "DeviceActivated", "MaintenanceStarted", "FirmwareUpdated",
            "DeviceLocationUpdated", "DeviceDecommissioned"} <= kinds  # fmt: skip
    allowed = {
        "inactive": {"DeviceActivated": "active", "DeviceDecommissioned": "decommissioned"},
        "active": {
            "MaintenanceStarted": "maintenance", "DeviceLocationUpdated": "active",
            "FirmwareUpdated": "active", "DeviceDecommissioned": "decommissioned",
        },
        "maintenance": {"MaintenanceEnded": "active", "DeviceDecommissioned": "decommissioned"},
    }  # fmt: skip
    first_reading = sim.readings.groupby("device_id")["ts"].min()
    readings_of = dict(list(sim.readings.groupby("device_id")))
    beats_of = dict(list(sim.device_metrics.groupby("device_id")))
    for device_id, mine in events.groupby("device_id"):
        assert mine["event_type"].iloc[0] == "DeviceProvisioned"
        assert mine["occurred_at"].iloc[1] <= first_reading[device_id]
        status = "inactive"
        readings, beats = readings_of[device_id], beats_of[device_id]
        for event in mine.iloc[1:].itertuples():
            status = allowed[status][event.event_type]
            if event.event_type == "MaintenanceStarted":
                ends = mine[mine["event_type"] == "MaintenanceEnded"]["occurred_at"]
                end = ends[ends > event.occurred_at].min()
                during = readings["ts"].between(event.occurred_at, end, inclusive="left")
                assert during.any() and (readings.loc[during, "status"] == "maintenance").all()
            if event.event_type == "DeviceDecommissioned":
                assert (readings["ts"] < event.occurred_at).all()
                assert (beats["ts"] < event.occurred_at).all()
        if "DeviceDecommissioned" not in set(mine["event_type"]):
            assert status == "active"
    maintenance = sim.readings["status"] == "maintenance"
    assert 0 < maintenance.mean() < 0.05


def test_firmware_and_location_events_chain(lifecycle: Simulation) -> None:
    sim = lifecycle
    devices = sim.devices.set_index("device_id")
    for device_id, mine in sim.events.groupby("device_id"):
        version = devices.at[device_id, "firmware_version"]
        location = devices.at[device_id, "location"]
        for event in mine.itertuples():
            if event.event_type == "FirmwareUpdated":
                assert event.data["old_version"] == version != event.data["new_version"]
                version = event.data["new_version"]
            if event.event_type == "DeviceLocationUpdated":
                assert event.data["old_location"] == location
                location = event.data["new_location"]
        provisioned = mine["data"].iloc[0]
        assert [s["sensor_id"] for s in provisioned["sensors"]] == sorted(
            sim.sensors.loc[sim.sensors["device_id"] == device_id, "sensor_id"]
        )


def test_to_xarray_has_a_variable_per_sensor_with_nan_where_missing() -> None:
    sim = Fleet(4, seed=9, faults=BUSY).simulate("2026-01-05", days=1, freq="1h")
    ds = sim.to_xarray()
    assert dict(ds.sizes) == {"device": 4, "time": 24}
    assert set(ds.data_vars) == set(sim.sensors["sensor_id"])
    row = sim.readings.iloc[5]
    got = ds[row["sensor_id"]].sel(device=row["device_id"], time=row["ts"].tz_localize(None))
    assert float(got) == row["value"]
    present = sum(int(ds[v].notnull().sum()) for v in ds.data_vars)
    assert present == len(sim.readings)


def test_users_can_add_device_types() -> None:
    greenhouse = DeviceType(
        "greenhouse",
        {"temp_01": SignalModel(26.0, {"daily": 6.0}, noise_sd=0.1),
         "light_01": SignalModel(30000.0, {"daily": 25000.0}, noise_sd=300.0)},
        heartbeat_interval="10min",
    )  # fmt: skip
    fleet = Fleet(4, seed=1, device_types=[greenhouse, "power_meter"], faults=FaultConfig.none())
    assert sorted(fleet.devices["device_type"].unique()) == ["greenhouse", "power_meter"]
    sim = fleet.simulate("2026-01-05", days=1, freq="15min")
    light = sim.readings[sim.readings["sensor_id"] == "light_01"]
    assert light["value"].between(0, 100000).all() and light["value"].max() > 40000
    assert set(sim.sensors.loc[sim.sensors["sensor_id"] == "light_01", "unit"]) == {"lx"}


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda: Fleet(0, seed=1), "n_devices"),
        (lambda: Fleet(2.5, seed=1), "n_devices"),
        (lambda: Fleet(2, seed=-1), "seed"),
        (lambda: Fleet(2, seed=1, device_types=["toaster"]), "device_types"),
        (lambda: Fleet(2, seed=1).simulate("2026-01-05", days=1, freq="often"), "freq"),
        (lambda: Fleet(2, seed=1).simulate("2026-01-05", days=1, freq="-1min"), "freq"),
        (lambda: Fleet(2, seed=1).simulate("2026-01-05", days=0), "days"),
        (lambda: Fleet(2, seed=1).simulate("2026-01-05"), "days"),
        (lambda: Fleet(2, seed=1).simulate("2026-01-05", end="2026-01-04"), "end"),
        (lambda: Fleet(2, seed=1).simulate("not a date", days=1), "start"),
        (
            lambda: list(Fleet(2, seed=1).simulate_chunks("2026-01-05", days=1, chunk="6h")),
            "chunk",
        ),
        (lambda: list(Fleet(2, seed=1).stream("2026-01-05", days=1, speed=0)), "speed"),
        (lambda: FaultConfig(rates={"spike": -1}), "rates"),
        (lambda: DeviceType("x", {"bogus_01": SignalModel(1.0)}), "sensor_id"),
        (lambda: SignalModel(1.0, {"moon": 1.0}), "loadings"),
    ],
)
def test_bad_parameters_name_the_parameter(call, field: str) -> None:
    with pytest.raises(ValidationError) as info:
        call()
    assert info.value.field == field
    assert str(info.value).startswith(f"{field}: ")


def test_sample_dataset_matches_the_simulation_it_was_made_from() -> None:
    sample, exact = load_sample(), make_sample()
    assert len(sample.devices) == 10 and sample.devices["device_type"].nunique() == 4
    assert sample.readings["ts"].min() == pd.Timestamp("2026-01-05", tz="UTC")
    assert (sample.readings["ts"].diff().dropna().mode()[0]) == pd.Timedelta("5min")
    for name in ("labels", "events", "devices", "sensors"):
        pd.testing.assert_frame_equal(getattr(sample, name), getattr(exact, name), obj=name)
    pd.testing.assert_frame_equal(
        sample.readings, exact.readings, check_exact=False, rtol=1e-5, obj="readings"
    )
