"""Two OS processes append to one device: each version is won once, nothing is lost."""

from __future__ import annotations

import multiprocessing as mp

import pandas as pd

from iotlab.history import Device, DeviceRepository
from iotlab.store import StoreURL, open_store

PER_WRITER = 30


def writer(url: StoreURL, device_id: str, name: str, barrier, results) -> None:
    """Append ``PER_WRITER`` firmware updates, reloading and retrying on each conflict."""
    from iotlab.errors import ConcurrencyError
    from iotlab.store import open_store

    won, conflicts = [], []
    with open_store(url) as store:
        repo = DeviceRepository(store, snapshot_every=7)
        barrier.wait()
        while len(won) < PER_WRITER:
            device = repo.load(device_id)
            device.update_firmware(f"{name}-{len(won)}")
            try:
                repo.save(device)
            except ConcurrencyError:
                conflicts.append(device.version)  # the version the other writer took
                continue
            won.append(device.version)
    results.put((name, won, conflicts))


def race(url: StoreURL, device_id: str) -> dict[str, tuple[list[int], list[int]]]:
    with open_store(url) as store:
        repo = DeviceRepository(store)
        d = Device.provision(
            device_id,
            "environmental",
            "HQ/1/101",
            firmware_version="0",
            at=pd.Timestamp("2026-01-01", tz="UTC"),
        )
        d.activate()
        repo.save(d)
    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    procs = [
        ctx.Process(target=writer, args=(url, device_id, n, barrier, results)) for n in ("a", "b")
    ]
    for p in procs:
        p.start()
    out = {}
    for _ in procs:
        name, won, conflicts = results.get(timeout=300)
        out[name] = (won, conflicts)
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    with open_store(url) as store:
        events = DeviceRepository(store).events(device_id)
        out["stream"] = ([e.version for e in events], [e.event_type for e in events])
        out["projection"] = (
            store.read_rows("devices", {"device_id": device_id})["version"].tolist(),
            [],
        )
    return out


def check(out) -> None:
    (won_a, conflicts_a), (won_b, conflicts_b) = out["a"], out["b"]
    versions, types = out["stream"]
    total = 2 + 2 * PER_WRITER
    assert versions == list(range(1, total + 1))  # gap-free, nothing lost or overwritten
    assert types.count("FirmwareUpdated") == 2 * PER_WRITER
    assert len(won_a) == len(won_b) == PER_WRITER
    assert sorted(won_a + won_b) == list(range(3, total + 1))  # each version won exactly once
    # One ConcurrencyError per version lost: every conflict is a version the other one won.
    assert set(conflicts_a) <= set(won_b) and set(conflicts_b) <= set(won_a)
    assert len(set(conflicts_a)) == len(conflicts_a) and len(set(conflicts_b)) == len(conflicts_b)
    assert out["projection"][0] == [total]
    assert conflicts_a or conflicts_b  # they did race (both start at a barrier)


def test_two_processes_race_on_one_device(lab, new_id):
    check(race(lab.store.url, new_id))  # sqlite: a file DB; cassandra: LWT on the real node
