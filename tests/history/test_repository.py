"""DeviceRepository on both backends: save/load, time travel, snapshots, subscribers, feed."""

from __future__ import annotations

import logging

import pandas as pd
import pytest

from iotlab.errors import ConcurrencyError, NotFoundError, ValidationError
from iotlab.history import Device, DeviceRepository, SensorSpec
from iotlab.history.events import events_to_frame

T0 = pd.Timestamp("2026-01-01", tz="UTC")
TEMP = SensorSpec("temp_01", "temperature", "C", -40, 125)


def saved_device(repo: DeviceRepository, device_id: str, n_updates: int = 0) -> Device:
    d = Device.provision(
        device_id, "environmental", "HQ/1/101", sensors=[TEMP], firmware_version="0", at=T0
    )
    d.activate(at=T0 + pd.Timedelta("1h"))
    for i in range(n_updates):
        d.update_firmware(f"{i + 1}", at=T0 + pd.Timedelta(days=1, minutes=i))
    repo.save(d)
    return d


def test_save_load_and_time_travel(lab, new_id):
    repo = DeviceRepository(lab.store, snapshot_every=3)
    saved_device(repo, new_id, n_updates=5)  # versions 1..7
    d = repo.load(new_id)
    assert (d.version, d.status, d.firmware_version, d.saved_version) == (7, "active", "5", 7)
    assert d.pending_events == ()
    assert repo.load(new_id, version=1).status == "inactive"
    assert repo.load(new_id, version=4).firmware_version == "2"
    assert repo.load(new_id, as_of=T0 + pd.Timedelta("30min")).version == 1
    assert repo.load(new_id, as_of=T0 + pd.Timedelta(days=1, minutes=2)).firmware_version == "3"
    snapshots = lab.store.read_rows("snapshots", {"device_id": new_id})
    assert sorted(snapshots["version"]) == [7]  # one save crossing 3 and 6: one snapshot
    assert snapshots["taken_at"].iloc[0] == T0 + pd.Timedelta(days=1, minutes=4)


def test_load_errors_are_clear(lab, new_id):
    repo = DeviceRepository(lab.store)
    with pytest.raises(NotFoundError, match=f"device {new_id} not found"):
        repo.load(new_id)
    saved_device(repo, new_id)
    with pytest.raises(
        ValidationError, match=f"version: device {new_id} has 2 events, no version 9"
    ):
        repo.load(new_id, version=9)
    with pytest.raises(ValidationError, match="version: must be an integer >= 1"):
        repo.load(new_id, version=0)
    with pytest.raises(NotFoundError, match="did not exist at 2025-12-31"):
        repo.load(new_id, as_of="2025-12-31")
    with pytest.raises(ValidationError, match="as_of: give version or as_of, not both"):
        repo.load(new_id, version=1, as_of=T0)


def test_stale_writer_gets_concurrency_error_and_writes_nothing(lab, new_id):
    repo = DeviceRepository(lab.store)
    saved_device(repo, new_id)
    first, second = repo.load(new_id), repo.load(new_id)
    first.start_maintenance("filter")
    repo.save(first)
    second.update_firmware("9")
    with pytest.raises(ConcurrencyError, match=f"device {new_id}: version 3 was already"):
        repo.save(second)
    assert [e.event_type for e in repo.events(new_id)][-1] == "MaintenanceStarted"
    row = lab.store.read_rows("devices", {"device_id": new_id}).iloc[0]
    assert (row["status"], row["firmware_version"], row["version"]) == ("maintenance", "0", 3)
    retry = repo.load(new_id)
    retry.update_firmware("9")
    assert [e.version for e in repo.save(retry)] == [4]


def test_projections_follow_saves(lab, new_id):
    repo = DeviceRepository(lab.store)
    d = saved_device(repo, new_id)
    d.add_sensor(SensorSpec("co2_01", "co2", "ppm", 0, 5000))
    d.update_location({"building": "B2", "floor": 3, "room": "7"})
    repo.save(d)
    sensors = lab.store.read_rows("sensors", {"device_id": new_id})
    assert sensors["sensor_id"].tolist() == ["co2_01", "temp_01"]
    d.remove_sensor("temp_01")
    d.mark_offline(T0)
    repo.save(d)
    sensors = lab.store.read_rows("sensors", {"device_id": new_id})
    assert sensors["sensor_id"].tolist() == ["co2_01"]
    row = lab.store.read_rows("devices", {"device_id": new_id}).iloc[0]
    assert row["location"] == '{"building":"B2","floor":3,"room":"7"}'
    assert (row["status"], row["last_seen"], row["created_at"]) == ("offline", T0, T0)


def test_history_says_who_changed_what_when(lab, new_id):
    repo = DeviceRepository(lab.store)
    saved_device(repo, new_id, n_updates=1)
    h = repo.history(new_id)
    assert h["version"].tolist() == [1, 2, 3]
    assert h["status"].tolist() == ["inactive", "active", "active"]
    assert h["change"].tolist()[1:] == ["activated", "firmware 0 -> 1"]
    assert h["occurred_at"].iloc[1] == T0 + pd.Timedelta("1h")
    assert str(h["occurred_at"].dtype) == "datetime64[ms, UTC]"


def test_subscribers_hear_saved_events_and_a_failing_one_is_only_logged(lab, new_id, caplog):
    repo = DeviceRepository(lab.store)
    every, firmware = [], []
    cancel = repo.subscribe(every.append)
    repo.subscribe(firmware.append, event_types="FirmwareUpdated")

    def broken(event):
        raise RuntimeError("boom")

    repo.subscribe(broken, event_types="DeviceActivated")
    with caplog.at_level(logging.ERROR, logger="iotlab.history.bus"):
        saved_device(repo, new_id, n_updates=2)
    assert [e.version for e in every] == [1, 2, 3, 4]
    assert [e.new_version for e in firmware] == ["1", "2"]
    assert "boom" in caplog.text
    assert repo.load(new_id).version == 4  # the save went through
    cancel()
    d = repo.load(new_id)
    d.update_firmware("3")
    repo.save(d)
    assert len(every) == 4 and len(firmware) == 3
    with pytest.raises(
        ValidationError, match=r"event_types: unknown event type\(s\) \['Firmware'\]"
    ):
        repo.subscribe(print, event_types="Firmware")


def test_events_by_day_feed(lab, new_id):
    repo = DeviceRepository(lab.store)
    saved_device(repo, new_id, n_updates=2)
    day0 = repo.events_by_day("2026-01-01")
    mine = day0[day0["device_id"] == new_id]
    assert mine["version"].tolist() == [1, 2]
    assert mine["event_type"].tolist() == ["DeviceProvisioned", "DeviceActivated"]
    day1 = repo.events_by_day(pd.Timestamp("2026-01-02T15:00", tz="UTC"))
    assert day1[day1["device_id"] == new_id]["version"].tolist() == [3, 4]


def test_rebuild_projections_restores_damaged_tables(lab, new_id):
    repo = DeviceRepository(lab.store)
    saved_device(repo, new_id, n_updates=1)
    before = lab.store.read_rows("devices", {"device_id": new_id})
    lab.store.write_rows("devices", before.assign(status="bogus", firmware_version="x"))
    lab.store.delete_rows("sensors", {"device_id": new_id})
    assert lab.rebuild_projections() is None  # Platform wiring; rebuilds every device
    pd.testing.assert_frame_equal(lab.store.read_rows("devices", {"device_id": new_id}), before)
    assert lab.store.read_rows("sensors", {"device_id": new_id})["sensor_id"].tolist() == [
        "temp_01"
    ]


def test_snapshot_every_must_be_positive(lab):
    with pytest.raises(ValidationError, match="snapshot_every: must be a positive integer"):
        DeviceRepository(lab.store, snapshot_every=0)
    with pytest.raises(ValidationError, match="append_workers: must be a positive integer"):
        DeviceRepository(lab.store, append_workers=0)
    # Appends run concurrently where each is a round trip; SQLite serialises them anyway.
    assert lab.repository.append_workers == (1 if lab.store.scheme == "sqlite" else 16)


def test_conflicting_multi_event_save_writes_none_of_its_events(lab, new_id):
    saved_device(DeviceRepository(lab.store), new_id)  # versions 1, 2
    repo_a, repo_b = DeviceRepository(lab.store), DeviceRepository(lab.store)
    a, b = repo_a.load(new_id), repo_b.load(new_id)
    for i in range(3):
        a.update_firmware(f"a{i}")
        b.update_location(f"B{i}/1/1")
    assert [e.version for e in repo_a.save(a)] == [3, 4, 5]
    with pytest.raises(ConcurrencyError, match=f"device {new_id}: version 3 was already"):
        repo_b.save(b)
    stream = repo_a.events(new_id)
    assert [e.version for e in stream] == [1, 2, 3, 4, 5]
    assert [getattr(e, "new_version", None) for e in stream[2:]] == ["a0", "a1", "a2"]
    assert len(b.pending_events) == 3 and b.saved_version == 2  # still unsaved, retryable
    row = lab.store.read_rows("devices", {"device_id": new_id}).iloc[0]
    assert (row["version"], row["firmware_version"]) == (5, "a2")


def test_append_conflicting_mid_batch_is_all_or_nothing(lab, new_id):
    # A conflict on the 2nd of 3 events (planted without a check, as a racing writer's
    # row would be) must not leave the 1st behind: the batch is one conditional write.
    d = Device.provision(new_id, "environmental", "HQ", at=T0)
    for i in range(3):
        d.update_firmware(f"{i}", at=T0 + pd.Timedelta(minutes=i + 1))
    frame = events_to_frame(d.pending_events)  # versions 1..4
    lab.store.write_rows("events", frame.iloc[[2]])  # version 3 taken
    with pytest.raises(ConcurrencyError, match=new_id):
        lab.store.append_events(new_id, 1, frame.iloc[1:])  # versions 2, 3, 4
    stored = lab.store.read_rows("events", {"device_id": new_id})
    assert stored["version"].tolist() == [3]


def test_save_all_saves_every_device_that_does_not_conflict(lab, new_id):
    repo = DeviceRepository(lab.store, append_workers=4)
    ids = [f"{new_id}-{i}" for i in range(6)]
    for device_id in ids:
        saved_device(repo, device_id)
    devices = [repo.load(device_id) for device_id in ids]
    rival = repo.load(ids[2])
    rival.update_firmware("rival")
    repo.save(rival)
    for d in devices:
        d.update_firmware("fleet")
    with pytest.raises(ConcurrencyError, match=f"device {ids[2]}: version 3") as info:
        repo.save_all(devices)
    assert info.value.__notes__ == [
        "5 of 6 devices were saved (projections included); reload the failed ones and retry"
    ]
    rows = lab.store.read_rows("devices", {"device_id": ids}).set_index("device_id")
    expected = {i: "rival" if i == ids[2] else "fleet" for i in ids}
    assert rows["firmware_version"].to_dict() == expected
    assert rows["version"].tolist() == [3] * 6
    assert [d.saved_version for d in devices] == [3, 3, 2, 3, 3, 3]
