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
