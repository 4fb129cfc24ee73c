"""Property: after any sequence of batches, roll-ups equal pandas on the stored raw rows.

Runs on the in-memory SQLite store (fast); the contract suite checks the same rule on
every backend with fixed batches.
"""

from __future__ import annotations

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
        raw = read_readings(store, "d", ["s1", "s2"])
        for interval, freq in (("minute", "min"), ("hour", "h")):
            got = read_rollups(store, "d", ["s1", "s2"], interval=interval)
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
    """The backend-neutral path (used on Cassandra) gives the same roll-ups as SQLite's."""
    from iotlab.store.rollups import refresh_rollups

    results = []
    for native in (True, False):
        with open_store("sqlite://") as store:
            for rows in batches + (batches[:1] if repeat else []):
                frame = pd.DataFrame(rows, columns=["sensor_id", "offset", "value"]).assign(
                    device_id="d", ts=lambda f: T0 + pd.to_timedelta(f["offset"], unit="s")
                )
                clean = validate_readings(frame, require_provisioned=False)[0]
                store.write_rows("readings", clean)
                refresh_rollups(store, clean, native=native)
            results.append(
                [read_rollups(store, "d", ["s1", "s2"], interval=i) for i in ("minute", "hour")]
            )
    for native_rollups, read_based in zip(*results):
        assert native_rollups["bucket_start"].tolist() == read_based["bucket_start"].tolist()
        assert native_rollups["count"].tolist() == read_based["count"].tolist()
        np.testing.assert_allclose(native_rollups["sum"], read_based["sum"], rtol=1e-9, atol=1e-6)
        np.testing.assert_array_equal(native_rollups["min"], read_based["min"])
        np.testing.assert_array_equal(native_rollups["max"], read_based["max"])
