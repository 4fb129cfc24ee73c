"""Hypothesis properties over random command sequences.

- replay of the recorded events equals the live state (and survives table rows);
- snapshot + tail equals full replay; ``load(version=k)`` and ``load(as_of=t_k)`` equal the
  state after k events;
- projections after ``rebuild_projections()`` equal the incremental ones.
"""

from __future__ import annotations

import uuid

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import iotlab
from iotlab.errors import InvalidTransitionError, NotFoundError
from iotlab.history import Device, DeviceRepository, SensorSpec
from iotlab.history.events import events_from_frame, events_to_frame
from iotlab.history.state import DeviceState, replay, state_from_json, state_to_json

T0 = pd.Timestamp("2026-01-01", tz="UTC")
SPECS = [
    SensorSpec("temp_01", "temperature", "C", -40, 125, "2025-06-01"),
    SensorSpec("temp_01", "temperature", "F", -40, 257),  # same id, other spec
    SensorSpec("co2_01", "co2", "ppm", 0, 5000),
    SensorSpec("humidity_01", "humidity", "%RH", 0, 100),
]
LOCATIONS = ["HQ/1/101", "HQ/2/201", {"building": "B2", "floor": 3, "room": "7"}]

commands = st.one_of(
    st.just(("activate",)),
    st.tuples(st.just("update_location"), st.sampled_from(LOCATIONS)),
    st.tuples(st.just("add_sensor"), st.sampled_from(SPECS)),
    st.tuples(st.just("remove_sensor"), st.sampled_from(["temp_01", "co2_01", "humidity_01"])),
    st.tuples(st.just("update_firmware"), st.sampled_from(["1.0", "1.1", "2.0"])),
    st.tuples(st.just("start_maintenance"), st.sampled_from(["filter", ""])),
    st.just(("end_maintenance",)),
    st.tuples(st.just("mark_offline"), st.sampled_from([None, T0])),
    st.just(("mark_online",)),
    st.tuples(st.just("decommission"), st.just("eol")),
)
command_lists = st.lists(commands, max_size=25)


def run(device_id: str, cmds: list[tuple]) -> tuple[Device, list[DeviceState]]:
    """Provision, then run ``cmds`` one minute apart; return the device and the state after
    each event (index k = after k events)."""
    device = Device.provision(
        device_id, "environmental", "HQ/1/101", sensors=[SPECS[0]], firmware_version="1.0", at=T0
    )
    states = [DeviceState.initial(device_id), device.state]
    for i, (name, *args) in enumerate(cmds, start=1):
        try:
            event = getattr(device, name)(*args, at=T0 + pd.Timedelta(minutes=i))
        except (InvalidTransitionError, NotFoundError):
            continue
        if event is not None:
            states.append(device.state)
    assert len(states) == device.version + 1
    return device, states


@settings(max_examples=50, deadline=None)
@given(command_lists)
def test_replay_equals_live_state(cmds):
    device, states = run("d1", cmds)
    events = list(device.pending_events)
    assert replay("d1", events) == device.state
    assert events_from_frame(events_to_frame(events)) == events
    assert replay("d1", events_from_frame(events_to_frame(events))) == device.state
    for k, state in enumerate(states):
        assert replay("d1", events[:k]) == state
        assert state_from_json(state_to_json(state)) == state


def check_repository(store, cmds, cuts, snapshot_every):
    """Save in chunks at ``cuts``, then compare every way of loading with the live states."""
    device_id = f"d-{uuid.uuid4().hex[:8]}"
    live, states = run(device_id, cmds)
    repo = DeviceRepository(store, snapshot_every=snapshot_every)
    events = list(live.pending_events)
    # Save in chunks through fresh loads, as separate sessions would.
    first = Device.provision(
        device_id, "environmental", "HQ/1/101", sensors=[SPECS[0]], firmware_version="1.0", at=T0
    )
    repo.save(first)
    bounds = sorted({1, *(1 + c % len(events) for c in cuts), len(events)})
    for lo, hi in zip(bounds, bounds[1:]):
        loaded = repo.load(device_id)
        for event in events[lo:hi]:
            loaded._record_event(event)
        repo.save(loaded)
    snapshots = store.read_rows("snapshots", {"device_id": device_id})
    if len(events) >= snapshot_every + 1:
        assert len(snapshots) >= 1
    full = DeviceRepository(store, snapshot_every=None)
    assert repo.load(device_id).state == live.state
    assert full.load(device_id).state == live.state
    for k in range(1, len(events) + 1):
        assert repo.load(device_id, version=k).state == states[k]
        assert repo.load(device_id, as_of=events[k - 1].occurred_at).state == states[k]
    # Between events k and k+1 (one minute apart or more): still state k.
    assert repo.load(device_id, as_of=events[-1].occurred_at + pd.Timedelta("1s")).state == (
        live.state
    )
    return repo, device_id


def projections(store, device_id):
    devices = store.read_rows("devices", {"device_id": device_id})
    sensors = store.read_rows("sensors", {"device_id": device_id})
    return devices.reset_index(drop=True), sensors.reset_index(drop=True)


def check_rebuild(store, repo, device_id, live_state):
    incremental = projections(store, device_id)
    assert incremental[0].loc[0, "status"] == live_state.status
    assert sorted(incremental[1]["sensor_id"]) == sorted(
        s.spec.sensor_id for s in live_state.sensors
    )
    # Damage the projections, then rebuild them from the log.
    store.delete_rows("sensors", {"device_id": device_id})
    damaged = incremental[0].assign(status="bogus", version=0)
    store.write_rows("devices", damaged)
    assert repo.rebuild_projections([device_id]) == 1
    rebuilt = projections(store, device_id)
    pd.testing.assert_frame_equal(rebuilt[0], incremental[0])
    pd.testing.assert_frame_equal(rebuilt[1], incremental[1])


@pytest.fixture(scope="module")
def sqlite_store():
    with iotlab.connect("sqlite://") as lab:
        yield lab.store


@settings(max_examples=40, deadline=None)
@given(command_lists, st.lists(st.integers(0, 30), max_size=3), st.integers(1, 4))
def test_repository_loads_equal_live_states_sqlite(sqlite_store, cmds, cuts, snapshot_every):
    repo, device_id = check_repository(sqlite_store, cmds, cuts, snapshot_every)
    check_rebuild(sqlite_store, repo, device_id, repo.load(device_id).state)


@settings(max_examples=6, deadline=None)
@given(command_lists, st.lists(st.integers(0, 30), max_size=2), st.integers(2, 4))
def test_repository_loads_equal_live_states_on_each_backend(lab, cmds, cuts, every):
    repo, device_id = check_repository(lab.store, cmds, cuts, every)
    check_rebuild(lab.store, repo, device_id, repo.load(device_id).state)
