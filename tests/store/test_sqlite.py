"""What only the embedded backend does: TTL as a read filter + purge, schema checks,
in-memory stores, locking across processes."""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading

import pandas as pd
import pytest

from iotlab.errors import ConcurrencyError, SchemaMismatchError, ValidationError
from iotlab.store import open_store
from iotlab.store.schema import TABLES
from iotlab.store.sqlite import SQLiteStore
from iotlab.store.url import parse_store_url

T0 = pd.Timestamp("2026-01-01", tz="UTC")


class Clock:
    """A settable clock, in epoch seconds."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _readings(n: int, start: pd.Timestamp = T0) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "device_id": "d",
            "sensor_id": "s",
            "ts": pd.date_range(start, periods=n, freq="1min", unit="ms"),
            "value": range(n),
            "quality": 100,
            "status": "ok",
        }
    ).astype({"value": "float64"})


def test_ttl_hides_expired_rows_and_purge_deletes_them():
    clock = Clock(1_800_000_000.0)
    tables = dict(TABLES, readings=TABLES["readings"].with_settings(ttl_seconds=60))
    store = SQLiteStore(parse_store_url("sqlite://"), tables, clock=clock)
    store.create_schema()
    key = {"device_id": "d", "sensor_id": "s"}
    store.write_rows("readings", _readings(3))
    clock.now += 30
    store.write_rows("readings", _readings(2, T0 + pd.Timedelta("1h")))  # written later
    clock.now += 30  # first batch is exactly 60 s old: expired; second is 30 s old
    assert store.read_rows("readings", key)["ts"].tolist() == list(
        pd.date_range(T0 + pd.Timedelta("1h"), periods=2, freq="1min", unit="ms")
    )
    assert store.stats().set_index("table").loc["readings", "rows"] == 2
    assert store.purge_expired() == 3
    clock.now += 3600
    assert store.purge_expired() == 2
    store.write_rows("readings", _readings(1))  # rewriting restarts the clock
    assert len(store.read_rows("readings", key)) == 1
    store.close()


def test_table_missing_a_column_is_a_schema_mismatch(tmp_path):
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE readings (device_id TEXT, sensor_id TEXT, ts INTEGER)")
    with pytest.raises(SchemaMismatchError, match="readings .* lacks column"):
        open_store(f"sqlite:///{path}")
    with sqlite3.connect(path) as conn:  # nothing was dropped
        assert conn.execute("SELECT COUNT(*) FROM readings").fetchone() == (0,)


def test_in_memory_store_is_shared_by_threads():
    store = open_store("sqlite://")
    errors: list[BaseException] = []

    def write(i: int) -> None:
        try:
            store.write_rows("readings", _readings(50).assign(device_id=f"d{i}"))
        except BaseException as exc:  # collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert store.stats().set_index("table").loc["readings", "rows"] == 200
    assert store.describe()["location"] == ":memory:"
    store.close()


def test_naive_times_and_unknown_tables_are_refused():
    store = open_store("sqlite://")
    with pytest.raises(ValidationError, match="ts: must be tz-aware"):
        store.write_rows("readings", _readings(1).assign(ts=pd.Timestamp("2026-01-01")))
    with pytest.raises(ValidationError, match="unknown table 'nope'"):
        store.read_rows("nope")
    with pytest.raises(ValidationError, match="bucketed"):
        store.read_rows("readings")
    store.close()


def _race(path: str, barrier, results) -> None:
    store = open_store(f"sqlite:///{path}", create=False)
    events = pd.DataFrame(
        {
            "device_id": "dev",
            "version": [1],
            "event_id": [multiprocessing.current_process().name],
            "event_type": "DeviceRegistered",
            "data": "{}",
            "occurred_at": T0,
        }
    ).astype({"occurred_at": "datetime64[ms, UTC]"})
    barrier.wait()
    won = 0
    for device in range(20):
        try:
            store.append_events(f"dev-{device}", 0, events.assign(device_id=f"dev-{device}"))
            won += 1
        except ConcurrencyError:
            pass
    results.put(won)
    store.close()


def test_append_events_is_atomic_across_processes(tmp_path):
    path = str(tmp_path / "race.db")
    open_store(f"sqlite:///{path}").close()
    ctx = multiprocessing.get_context("fork")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    workers = [ctx.Process(target=_race, args=(path, barrier, results)) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert [w.exitcode for w in workers] == [0, 0]
    assert results.get(timeout=5) + results.get(timeout=5) == 20  # one winner per device
    with open_store(f"sqlite:///{path}") as store:
        events = store.read_rows("events", {"device_id": [f"dev-{d}" for d in range(20)]})
        assert len(events) == 20 and set(events["version"]) == {1}
