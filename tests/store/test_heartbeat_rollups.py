"""Contract: the ``heartbeats_hour`` roll-up always equals pandas on the stored heartbeats.

Runs on every backend, after re-ingest, overlapping batches and late heartbeats.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from iotlab.analytics.heartbeats import fleet_heartbeat_hours
from iotlab.store import open_store
from iotlab.store.ingest import ingest_metrics

T0 = pd.Timestamp("2026-01-01 22:00", tz="UTC")  # batches cross a day bucket
DEVICES = ["d1", "d2"]


@pytest.fixture
def store(store_url):
    with open_store(store_url) as opened:
        yield opened


def _beats(rng: np.random.Generator, devices, start, periods: int, freq: str) -> pd.DataFrame:
    ts = pd.date_range(start, periods=periods, freq=freq)
    frame = pd.MultiIndex.from_product([devices, ts], names=["device_id", "ts"]).to_frame(
        index=False
    )
    for column in ("cpu", "memory", "battery"):
        frame[column] = rng.uniform(0, 100, len(frame)).round(2)
    frame["signal"] = rng.uniform(-100, -40, len(frame)).round(2)
    return frame


def _ingest(store, frame: pd.DataFrame) -> None:
    result = ingest_metrics(store, frame, require_provisioned=False, progress=False)
    assert result.rejected.empty and result.written == len(frame)


def _check(store) -> pd.DataFrame:
    """Assert the roll-up equals pandas on every stored heartbeat; return the roll-up."""
    raw = store.read_rows("device_metrics", {"device_id": DEVICES}, columns=["device_id", "ts"])
    want = (
        raw.assign(hour_start=raw["ts"].dt.floor("h"))
        .groupby(["device_id", "hour_start"])["ts"]
        .agg(count="count", first_ts="min", last_ts="max")
        .reset_index()
    )
    got = store.read_rows("heartbeats_hour", {"device_id": DEVICES})
    got = got.sort_values(["device_id", "hour_start"], ignore_index=True)
    assert len(got) == len(want) > 0
    assert got["device_id"].astype(str).tolist() == want["device_id"].astype(str).tolist()
    assert got["hour_start"].tolist() == want["hour_start"].tolist()
    assert got["count"].tolist() == want["count"].tolist()
    assert got["first_ts"].tolist() == want["first_ts"].tolist()
    assert got["last_ts"].tolist() == want["last_ts"].tolist()
    return got


def test_reingest_changes_nothing(store, rng):
    frame = _beats(rng, DEVICES, T0, 40, "5min")  # 22:00 to 01:15, across midnight
    _ingest(store, frame)
    first = _check(store)
    assert first["count"].tolist() == [12, 12, 12, 4] * 2
    _ingest(store, frame)  # the same heartbeats again
    pd.testing.assert_frame_equal(_check(store), first)


def test_overlapping_batches(store, rng):
    _ingest(store, _beats(rng, DEVICES, T0, 30, "2min"))  # 22:00 .. 22:58
    # Overlaps the first batch on another grid, with a device the first one lacked.
    _ingest(store, _beats(rng, [*DEVICES[1:], "d3"], T0 + pd.Timedelta("37min"), 40, "3min"))
    got = _check(store)
    d2 = got[got["device_id"] == "d2"].set_index("hour_start")
    hour = T0
    assert d2.loc[hour, "first_ts"] == T0
    assert d2.loc[hour, "last_ts"] == T0 + pd.Timedelta("58min")
    # 30 on the 2-min grid plus the 3-min grid's 22:37..22:58 points not on it (22:37,
    # 22:43, 22:49, 22:55)
    assert d2.loc[hour, "count"] == 34


def test_late_heartbeats_recompute_their_hours(store, rng):
    _ingest(store, _beats(rng, DEVICES, T0, 48, "5min"))  # 22:00 .. 01:55
    late = _beats(rng, ["d1"], T0 + pd.Timedelta("1h2min30s"), 1, "1min")
    older = _beats(rng, ["d2"], T0 - pd.Timedelta("40D"), 2, "7min")  # another 30-day bucket
    _ingest(store, pd.concat([late, older], ignore_index=True))
    got = _check(store).set_index(["device_id", "hour_start"])
    assert got.loc[("d1", T0 + pd.Timedelta("1h")), "count"] == 13
    assert got.loc[("d2", (T0 - pd.Timedelta("40D")).floor("h")), "count"] == 2
    # the other device's hour is untouched
    assert got.loc[("d2", T0 + pd.Timedelta("1h")), "count"] == 12


def test_rollup_and_raw_hours_agree_for_unaligned_windows(store, rng):
    frame = _beats(rng, DEVICES, T0, 60, "4min")
    frame = frame[~frame["ts"].between(T0 + pd.Timedelta("70min"), T0 + pd.Timedelta("2h"))]
    _ingest(store, frame)
    for start, end in [
        (T0 + pd.Timedelta("13min20s"), T0 + pd.Timedelta("3h31min")),
        (T0 + pd.Timedelta("5min"), T0 + pd.Timedelta("50min")),
        (T0 - pd.Timedelta("1h"), T0 + pd.Timedelta("5h")),
    ]:
        fast = fleet_heartbeat_hours(store, DEVICES, start, end, "rollups")
        slow = fleet_heartbeat_hours(store, DEVICES, start, end, "raw")
        pd.testing.assert_frame_equal(fast, slow)
        inside = frame[(frame["ts"] >= start) & (frame["ts"] < end)]
        assert fast["count"].sum() == len(inside)
