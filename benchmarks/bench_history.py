"""Benchmark iotlab.history: loading a long device stream with vs without snapshots, and
provisioning throughput.

Run::

    .venv/bin/python benchmarks/bench_history.py [--events 10000] [--devices 200] \\
        [--workers 16] [--rounds 3]

Cassandra at ``$IOTLAB_TEST_CASSANDRA`` (default 127.0.0.1:9042) in a scratch keyspace
that is dropped afterwards; SQLite in a temporary file. Ratios are against a baseline
measured in the same run (full replay for loads; one append at a time for
provisioning). The machine may be shared: the load average is printed with the figures.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import pandas as pd

from iotlab.history import Device, DeviceRepository
from iotlab.history.appends import DEFAULT_WORKERS
from iotlab.history.events import events_to_frame
from iotlab.history.provisioning import provision
from iotlab.history.repository import _snapshot_frame
from iotlab.store import open_store

T0 = pd.Timestamp("2026-01-01", tz="UTC")
SNAPSHOT_EVERY = 50


def long_device(device_id: str, n_events: int) -> tuple[Device, list]:
    """A device with ``n_events`` events, and its state at every multiple of 50."""
    d = Device.provision(
        device_id,
        "environmental",
        "HQ/1/101",
        sensors=["temp_01", "humidity_01"],
        firmware_version="0",
        at=T0,
    )
    d.activate(at=T0)
    snapshots = []
    for i in range(n_events - 2):
        at = T0 + pd.Timedelta(minutes=i + 1)
        if i % 100 == 0:
            d.start_maintenance("check", at=at)
        elif i % 100 == 1:
            d.end_maintenance(at=at)
        else:
            d.update_firmware(f"{i}", at=at)
        if d.version % SNAPSHOT_EVERY == 0:
            snapshots.append(d.state)
    return d, snapshots


def timed(fn, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench_load(store, n_events: int) -> tuple[float, float]:
    device_id = f"bench-{uuid.uuid4().hex[:8]}"
    d, snapshots = long_device(device_id, n_events)
    # The stream is written directly (one upsert per row) so the set-up is fast; loads
    # read it exactly as they read a stream appended through save().
    store.write_rows("events", events_to_frame(d.pending_events))
    store.write_rows("snapshots", _snapshot_frame(snapshots))
    with_snap = DeviceRepository(store, snapshot_every=SNAPSHOT_EVERY)
    without = DeviceRepository(store, snapshot_every=None)
    assert with_snap.load(device_id).state == without.load(device_id).state == d.state
    return timed(lambda: without.load(device_id)), timed(lambda: with_snap.load(device_id))


def bench_provision(store, n_devices: int, workers: int) -> float:
    from iotlab.simulate import Fleet

    # A fresh seed per call: the fleet's device ids must be new to this store.
    fleet = Fleet(n_devices=n_devices, seed=int(uuid.uuid4().int % 10**6))
    repo = DeviceRepository(store, append_workers=workers)
    start = time.perf_counter()
    ids = provision(repo, fleet, at=T0)
    elapsed = time.perf_counter() - start
    assert len(repo.versions(ids)) == n_devices
    return n_devices / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--devices", type=int, default=200)
    parser.add_argument("--workers", type=int, default=DEFAULT_WORKERS)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    contact = os.environ.get("IOTLAB_TEST_CASSANDRA", "127.0.0.1:9042")
    keyspace = f"bench_history_{uuid.uuid4().hex[:8]}"
    rates = {}
    print(f"load average (1, 5, 15 min) at the start: {os.getloadavg()}")
    with tempfile.TemporaryDirectory() as tmp:
        urls = {
            "sqlite": f"sqlite:///{Path(tmp) / 'bench.db'}",
            "cassandra": f"cassandra://{contact}/{keyspace}?replication_factor=1",
        }
        for backend, url in urls.items():
            store = open_store(url)
            try:
                full, snap = bench_load(store, args.events)
                print(
                    f"{backend:9s} load {args.events} events: full replay {full * 1e3:7.1f} ms,"
                    f" snapshot+tail {snap * 1e3:6.1f} ms, speed-up {full / snap:5.1f}x"
                )
                # Alternate the two settings and take medians: the machine may be shared.
                ones, manys = [], []
                for _ in range(args.rounds):
                    ones.append(bench_provision(store, args.devices, workers=1))
                    manys.append(bench_provision(store, args.devices, workers=args.workers))
                one, rates[backend] = statistics.median(ones), statistics.median(manys)
                print(
                    f"{backend:9s} provision {args.devices} devices (median of {args.rounds}): "
                    f"one append at a time {one:6.1f} devices/s, {args.workers} in flight "
                    f"{rates[backend]:6.1f} devices/s ({rates[backend] / one:.1f}x); default "
                    f"for this backend: {DeviceRepository(store).append_workers} in flight"
                )
            finally:
                if backend == "cassandra":
                    store._execute(f"DROP KEYSPACE IF EXISTS {keyspace}")  # ours, made above
                store.close()
    print(f"load average (1, 5, 15 min) at the end: {os.getloadavg()}")
    print(f"cassandra provisioning vs sqlite: {rates['cassandra'] / rates['sqlite']:.2f}x")


if __name__ == "__main__":
    main()
