"""SQLite's one-transaction ingest path (:mod:`iotlab.store._sqlite_ingest`).

The hypothesis property in ``test_rollups_property`` runs every ingest through this path;
these tests pin the cases it treats specially: minutes copied instead of recomputed, raw
rows stored without their roll-ups, expired rows, duplicates, atomicity.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from iotlab.store import _sqlite_ingest, open_store
from iotlab.store.ingest import ingest_readings
from iotlab.store.queries import read_readings, read_rollups
from iotlab.store.schema import TABLES
from iotlab.store.sqlite import SQLiteStore
from iotlab.store.url import parse_store_url

T0 = pd.Timestamp("2026-01-01 23:30", tz="UTC")  # batches cross a day bucket
KEY = {"device_id": "d", "sensor_id": ["a", "b"]}


def _rows(offsets_s, values, sensor="a", status="ok") -> pd.DataFrame:
    return pd.DataFrame(
        {
            "device_id": "d",
            "sensor_id": sensor,
            "ts": (T0 + pd.to_timedelta(np.asarray(offsets_s), unit="s")).as_unit("ms"),
            "value": np.asarray(values, dtype="float64"),
            "quality": 100,
            "status": status,
        }
    )


def _assert_rollups_equal_pandas(store) -> None:
    raw = read_readings(store, "d", sensors=["a", "b"])
    for interval, freq in (("1min", "min"), ("1h", "h")):
        got = read_rollups(store, "d", sensors=["a", "b"], interval=interval)
        got = got.sort_values(["sensor_id", "bucket_start"], ignore_index=True)
        want = (
            raw.assign(bucket_start=raw["ts"].dt.floor(freq))
            .groupby(["sensor_id", "bucket_start"])["value"]
            .agg(["count", "sum", "min", "max"])
            .reset_index()
        )
        assert got["bucket_start"].tolist() == want["bucket_start"].tolist(), interval
        assert got["count"].tolist() == want["count"].tolist(), interval
        np.testing.assert_allclose(got["sum"], want["sum"], rtol=1e-12)
        np.testing.assert_array_equal(got["min"], want["min"])
        np.testing.assert_array_equal(got["max"], want["max"])


def test_single_and_multi_row_minutes_with_duplicates_last_wins():
    with open_store("sqlite://") as store:
        # minute 0: one row; minute 1: three rows; a duplicate ts whose later row wins
        batch = pd.concat(
            [
                _rows([5, 61, 70, 119, 61, 3600], [1.0, 2.0, 3.0, 4.0, 20.0, 5.0]),
                _rows([5], [7.0], sensor="b", status="late"),
            ],
            ignore_index=True,
        )
        assert store.write_readings_with_rollups(batch) == 6
        raw = store.read_rows("readings", KEY)
        assert raw["value"].tolist() == [1.0, 20.0, 3.0, 4.0, 5.0, 7.0]
        assert raw["status"].tolist() == ["ok"] * 5 + ["late"]
        minutes = store.read_rows("rollups_minute", KEY)
        assert minutes["count"].tolist() == [1, 3, 1, 1]
        assert minutes["sum"].tolist() == [1.0, 27.0, 5.0, 7.0]
        _assert_rollups_equal_pandas(store)


def test_raw_rows_stored_without_rollups_are_counted_when_their_minute_is_touched():
    with open_store("sqlite://") as store:
        store.write_rows("readings", _rows([10, 130], [1.0, 2.0]))  # no roll-ups refreshed
        store.write_readings_with_rollups(_rows([20, 190], [3.0, 4.0]))
        minutes = store.read_rows("rollups_minute", KEY)
        # minute 0 now holds 10 s and 20 s; minute 2 holds 130 s (untouched by the
        # batch, so it has no roll-up) and minute 3 holds only the new 190 s row
        assert minutes["count"].tolist() == [2, 1]
        assert minutes["sum"].tolist() == [4.0, 4.0]


def test_reingest_gives_bit_identical_rollups():
    rng = np.random.default_rng(5)
    offsets = np.sort(rng.choice(3 * 3600, size=400, replace=False))
    frame = _rows(offsets, rng.normal(0, 1e6, len(offsets)) / 3)
    with open_store("sqlite://") as store:
        ingest_readings(store, frame, require_provisioned=False, progress=False, chunk_rows=150)
        before = [store.read_rows(t, KEY) for t in ("rollups_minute", "rollups_hour")]
        ingest_readings(store, frame, require_provisioned=False, progress=False)
        after = [store.read_rows(t, KEY) for t in ("rollups_minute", "rollups_hour")]
        for old, new in zip(before, after):
            pd.testing.assert_frame_equal(old, new, check_exact=True)
        _assert_rollups_equal_pandas(store)


def test_expired_raw_rows_leave_the_rollups_of_a_late_row():
    now = [1_800_000_000.0]
    tables = dict(TABLES, readings=TABLES["readings"].with_settings(ttl_seconds=60))
    store = SQLiteStore(parse_store_url("sqlite://"), tables, clock=lambda: now[0])
    store.create_schema()
    store.write_readings_with_rollups(_rows([10, 20], [1.0, 2.0]))
    now[0] += 120  # both rows expire
    store.write_readings_with_rollups(_rows([30], [8.0]))  # late row, same minute
    minutes = store.read_rows("rollups_minute", KEY)
    assert minutes[["count", "sum", "min", "max"]].values.tolist() == [[1, 8.0, 8.0, 8.0]]
    _assert_rollups_equal_pandas(store)
    store.close()


def test_a_failed_chunk_leaves_neither_raw_rows_nor_rollups(monkeypatch):
    with open_store("sqlite://") as store:
        store.write_readings_with_rollups(_rows([0], [1.0]))

        def fail(store, conn, source, target, keys, now):
            if target == "rollups_hour":  # raw rows and minutes are written by now
                raise KeyboardInterrupt
            return recompute(store, conn, source, target, keys, now)

        recompute = _sqlite_ingest._recompute
        monkeypatch.setattr(_sqlite_ingest, "_recompute", fail)
        with pytest.raises(KeyboardInterrupt):
            store.write_readings_with_rollups(_rows([30, 90, 4000], [2.0, 3.0, 4.0]))
        assert store.read_rows("readings", KEY)["value"].tolist() == [1.0]
        assert store.read_rows("rollups_minute", KEY)["count"].tolist() == [1]
        monkeypatch.undo()
        store.write_readings_with_rollups(_rows([30, 90, 4000], [2.0, 3.0, 4.0]))
        _assert_rollups_equal_pandas(store)


def test_refresh_after_plain_writes_matches_pandas():
    from iotlab.store.rollups import refresh_rollups

    with open_store("sqlite://") as store:
        first = _rows(np.arange(0, 7200, 45), np.arange(160.0))
        store.write_rows("readings", first)
        assert refresh_rollups(store, first) == 3  # hours touched: 23:00, 00:00, 01:00
        late = _rows([50, 3700], [-5.0, 99.0], sensor="b")
        store.write_rows("readings", late)
        refresh_rollups(store, late)
        _assert_rollups_equal_pandas(store)


def test_times_before_1970_floor_to_the_right_buckets():
    before_epoch = pd.Timestamp("1969-12-31 23:57:50", tz="UTC")  # 75 s: a lone 23:59 row
    frame = _rows([0, 5, 75, 140], [1.0, 2.0, 3.0, 4.0]).assign(
        ts=(before_epoch + pd.to_timedelta([0, 5, 75, 140], unit="s")).as_unit("ms")
    )
    with open_store("sqlite://") as store:
        ingest_readings(store, frame, require_provisioned=False, progress=False)
        minutes = store.read_rows("rollups_minute", KEY)
        assert minutes["bucket_start"].dt.strftime("%H:%M").tolist() == ["23:57", "23:59", "00:00"]
        assert minutes["count"].tolist() == [2, 1, 1]
        hours = store.read_rows("rollups_hour", KEY)
        assert hours["count"].tolist() == [3, 1]
        _assert_rollups_equal_pandas(store)
