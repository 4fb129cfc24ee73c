"""Property: after any sequence of batches, roll-ups equal pandas on the stored raw rows.

Runs on the in-memory SQLite store (fast); the contract suite checks the same rule on
every backend with fixed batches.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from iotlab.store import open_store
from iotlab.store.ingest import ingest_readings
from iotlab.store.queries import read_readings, read_rollups
from iotlab.store.validate import validate_readings

T0 = pd.Timestamp("2026-01-01 22:00", tz="UTC")  # batches cross a day bucket

batch = st.lists(
    st.tuples(
        st.sampled_from(["s1", "s2"]),
        st.integers(0, 4 * 3600 - 1),  # second offset: 4 hours
        st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False),
    ),
    min_size=1,
    max_size=40,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches=st.lists(batch, min_size=1, max_size=4), repeat=st.booleans())
def test_rollups_always_equal_pandas(batches, repeat):
    with open_store("sqlite://") as store:
        frames = [
            pd.DataFrame(rows, columns=["sensor_id", "offset", "value"]).assign(
                device_id="d", ts=lambda f: T0 + pd.to_timedelta(f["offset"], unit="s")
            )
            for rows in batches
        ]
        for frame in frames + (frames[:1] if repeat else []):  # maybe re-ingest the first
            ingest_readings(store, frame, require_provisioned=False, progress=False)
        raw = read_readings(store, "d", sensors=["s1", "s2"])
        for interval, freq in (("1min", "min"), ("1h", "h")):
            got = read_rollups(store, "d", sensors=["s1", "s2"], interval=interval)
            want = (
                raw.assign(bucket_start=raw["ts"].dt.floor(freq))
                .groupby(["bucket_start", "sensor_id"])["value"]
                .agg(["count", "sum", "min", "max"])
                .reset_index()
            )
            assert got["bucket_start"].tolist() == want["bucket_start"].tolist()
            assert got["count"].tolist() == want["count"].tolist()
            np.testing.assert_allclose(got["sum"], want["sum"], rtol=1e-9, atol=1e-6)
            np.testing.assert_array_equal(got["min"], want["min"])
            np.testing.assert_array_equal(got["max"], want["max"])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches=st.lists(batch, min_size=1, max_size=4), repeat=st.booleans())
def test_read_based_refresh_equals_in_store_aggregation(batches, repeat):
    """The backend-neutral path (used on Cassandra) gives the same roll-ups as SQLite's,
    also where single-reading minutes are left to the raw rows (as on Cassandra)."""
    from iotlab.store.rollups import refresh_rollups

    results = []
    for native, singles in ((True, True), (False, True), (False, False)):
        with open_store("sqlite://") as store:
            store.capabilities = replace(store.capabilities, single_reading_minutes=singles)
            for rows in batches + (batches[:1] if repeat else []):
                clean = _clean(rows)
                store.write_rows("readings", clean)
                refresh_rollups(store, clean, native=native)
            results.append(
                [
                    read_rollups(store, "d", sensors=["s1", "s2"], interval=i)
                    for i in ("1min", "1h")
                ]
            )
    for native_rollups, read_based, sparse in zip(*results):
        _assert_same_rollups(native_rollups, read_based)
        _assert_same_rollups(native_rollups, sparse)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches=st.lists(st.tuples(batch, st.booleans()), min_size=1, max_size=6))
def test_a_writer_with_memory_keeps_rollups_exact_beside_other_writers(batches):
    """One writer refreshes with a RollupMemory, another (re-ingesting, writing late or
    overlapping rows) without: the roll-ups still equal the in-store aggregation."""
    from iotlab.store.rollups import RollupMemory, refresh_rollups

    results = []
    for native, singles in ((True, True), (False, True), (False, False)):
        memory = RollupMemory()
        with open_store("sqlite://") as store:
            store.capabilities = replace(store.capabilities, single_reading_minutes=singles)
            for rows, by_the_other_writer in batches:
                clean = _clean(rows)
                store.write_rows("readings", clean)
                kept = None if native or by_the_other_writer else memory
                refresh_rollups(store, clean, native=native, memory=kept)
            results.append(
                [
                    read_rollups(store, "d", sensors=["s1", "s2"], interval=i)
                    for i in ("1min", "1h")
                ]
            )
    for in_store, remembered, sparse in zip(*results):
        _assert_same_rollups(in_store, remembered)
        _assert_same_rollups(in_store, sparse)


def test_read_based_refresh_before_1970_keeps_sensors_apart():
    """Minute and hour numbers before 1970 are negative; packed with a sensor's code
    they must still name one sensor and one bucket."""
    from iotlab.store.rollups import RollupMemory, refresh_rollups

    ts = pd.to_datetime(
        [
            "1969-12-31 22:10:00",
            "1969-12-31 23:58:10",
            "1969-12-31 23:59:50",
            "1970-01-01 00:00:30",
        ],
        utc=True,
    )
    rows = pd.concat(
        pd.DataFrame(
            {"device_id": "d", "sensor_id": sensor, "ts": ts, "value": values, "quality": 0}
        ).assign(status="ok")
        for sensor, values in (("s1", [1.0, 2.0, 3.0, 4.0]), ("s2", [10.0, 20.0, 30.0, 40.0]))
    )
    results = []
    for native in (True, False):
        memory = RollupMemory()
        with open_store("sqlite://") as store:
            for part in (rows[rows["ts"] < ts[2]], rows[rows["ts"] >= ts[2]]):
                store.write_rows("readings", part)
                refresh_rollups(store, part, native=native, memory=None if native else memory)
            results.append(
                [
                    read_rollups(store, "d", sensors=["s1", "s2"], interval=i)
                    for i in ("1min", "1h")
                ]
            )
    for in_store, read_based in zip(*results):
        pd.testing.assert_frame_equal(in_store, read_based)
    assert results[1][1]["count"].tolist() == [1, 1, 2, 2, 1, 1]


def _clean(rows: list[tuple]) -> pd.DataFrame:
    """Valid readings of device ``d`` from (sensor, second offset, value) tuples."""
    frame = pd.DataFrame(rows, columns=["sensor_id", "offset", "value"]).assign(
        device_id="d", ts=lambda f: T0 + pd.to_timedelta(f["offset"], unit="s")
    )
    return validate_readings(frame, require_provisioned=False)[0]


def _assert_same_rollups(want: pd.DataFrame, got: pd.DataFrame) -> None:
    assert want["bucket_start"].tolist() == got["bucket_start"].tolist()
    assert want["count"].tolist() == got["count"].tolist()
    np.testing.assert_allclose(want["sum"], got["sum"], rtol=1e-9, atol=1e-6)
    np.testing.assert_array_equal(want["min"], got["min"])
    np.testing.assert_array_equal(want["max"], got["max"])
