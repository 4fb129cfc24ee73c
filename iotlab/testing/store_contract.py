"""The store contract: every backend passes these tests (SQLite and Cassandra do).

Subclass :class:`StoreContract` in a ``test_*.py`` module as a class named ``Test...``
and provide a ``store_url`` fixture: the URL of a fresh, empty store for each test, which
opened twice gives the same store. The suite uses only the :class:`~iotlab.store.Store`
protocol and the backend-neutral modules above it (validation, roll-ups, queries), so
it is what "a backend works" means for everything built on the store.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from iotlab.errors import ConcurrencyError, NotFoundError, ValidationError
from iotlab.store import Store, open_store, parse_store_url
from iotlab.store.ingest import ingest_metrics, ingest_readings
from iotlab.store.queries import read_dataset, read_heartbeats, read_readings, read_rollups
from iotlab.store.rollups import RollupMemory, read_minute_rollups, refresh_rollups
from iotlab.store.schema import TABLES, TableSpec
from iotlab.store.validate import DUPLICATE_REASON, NAIVE_REASON
from iotlab.testing.data import T0, make_readings, provision

__all__ = ["StoreContract"]

_DERIVED = {"bucket", "day"}
_ROLLUP_COLUMNS = ["device_id", "sensor_id", "bucket_start", "count", "sum", "min", "max"]


def _sample_value(kind: str, column: str, i: int) -> object:
    if kind == "text":
        return [f"{column}-ä€-{i}", "x" * 300, "'; DROP TABLE readings; --"][i]
    if kind == "int":
        return [0, -7, 2**53 + 1][i]
    if kind == "double":
        return [0.0, -1.5e-300, 1.7976931348623157e308][i]
    if kind == "bool":
        return [True, False, True][i]
    # timestamp: millisecond precision, one before 1970, bucket-edge values
    return [
        pd.Timestamp("2026-01-01 00:00:00.000", tz="UTC"),
        pd.Timestamp("2026-01-01 23:59:59.999", tz="UTC"),
        pd.Timestamp("1969-12-31 23:59:59.123", tz="UTC"),
    ][i]


def _sample_frame(spec: TableSpec) -> pd.DataFrame:
    columns = {
        c: k for c, k in spec.columns.items() if not (spec.bucket_seconds and c in _DERIVED)
    }
    data = {c: [_sample_value(k, c, i) for i in range(3)] for c, k in columns.items()}
    frame = pd.DataFrame(data)
    for column, kind in columns.items():
        if kind == "timestamp":
            frame[column] = pd.to_datetime(frame[column], utc=True).astype("datetime64[ms, UTC]")
    return frame


def _pandas_rollups(raw: pd.DataFrame, freq: str) -> pd.DataFrame:
    keyed = raw.assign(bucket_start=raw["ts"].dt.floor(freq))
    out = keyed.groupby(["sensor_id", "bucket_start"])["value"].agg(["count", "sum", "min", "max"])
    return out.reset_index()


def _stored_rollups(store: Store, table: str, device: str) -> pd.DataFrame:
    sensors = store.read_rows("sensors", {"device_id": device})["sensor_id"].tolist()
    key = {"device_id": device, "sensor_id": sensors}
    if table == "rollups_minute":  # with the minutes a store leaves to their one reading
        rows = read_minute_rollups(store, key)
    else:
        rows = store.read_rows(table, key)
    return rows.sort_values(["sensor_id", "bucket_start"], ignore_index=True)


def _assert_rollups_match_raw(store: Store, device: str) -> None:
    raw = read_readings(store, device)
    for table, freq in (("rollups_minute", "min"), ("rollups_hour", "h")):
        got = _stored_rollups(store, table, device)
        want = _pandas_rollups(raw, freq)
        assert len(got) == len(want), table
        assert got["bucket_start"].tolist() == want["bucket_start"].tolist(), table
        assert got["count"].tolist() == want["count"].tolist(), table
        np.testing.assert_allclose(got["sum"], want["sum"], rtol=1e-12)
        np.testing.assert_array_equal(got["min"], want["min"])
        np.testing.assert_array_equal(got["max"], want["max"])


def _events(device: str, versions: list[int]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "device_id": device,
            "version": versions,
            "event_id": [f"e{v}" for v in versions],
            "event_type": "DeviceRegistered",
            "data": "{}",
            "occurred_at": pd.Timestamp("2026-01-01", tz="UTC"),
        }
    ).astype({"occurred_at": "datetime64[ms, UTC]"})


class StoreContract:
    """The tests every backend passes; a subclass provides the ``store_url`` fixture.

    See the module docstring. Each test gets a fresh store; the suite writes only a few
    hundred rows per test, so it runs in seconds on an embedded backend.
    """

    @pytest.fixture
    def store(self, store_url: str) -> Iterator[Store]:
        """The store at ``store_url``, schema created, closed after the test."""
        with open_store(store_url) as opened:
            yield opened

    @pytest.fixture
    def rng(self) -> np.random.Generator:
        return np.random.default_rng(42)

    # -- lifecycle ----------------------------------------------------------------------------
    def test_create_schema_twice_keeps_data(self, store, store_url):
        provision(store, {"dev-1": ["temp_01"]})
        store.create_schema()
        with open_store(store_url) as again:  # a second open creates the schema once more
            assert again.read_rows("sensors", {"device_id": "dev-1"})["sensor_id"].tolist() == [
                "temp_01"
            ]
        assert len(store.read_rows("devices")) == 1

    def test_close_is_idempotent_and_describe_names_backend(self, store_url):
        store = open_store(store_url)
        assert store.describe()["backend"] == parse_store_url(store_url).scheme
        assert store.describe()["server_version"]
        store.close()
        store.close()

    def test_url_prints_as_it_parses_and_a_local_file_is_where_it_says(self, store, store_url):
        url = store.url
        if url.password is None:  # a password prints as ***
            assert parse_store_url(str(url)) == url
        assert url.is_local_file == (url.path is not None)
        if url.is_local_file:
            assert Path(url.path).is_file()

    # -- round trip of every column type of every table ---------------------------------------
    def test_round_trip_every_column_type(self, store):
        # One store for all tables: a fresh Cassandra keyspace per table would cost minutes.
        for table, spec in TABLES.items():
            frame = _sample_frame(spec)
            assert store.write_rows(table, frame) == 3, table
            key = {c: frame[c].tolist() for c in spec.partition_key if c in frame}
            time_col = spec.clustering[0] if spec.clustering else None
            bounded = spec.bucket_seconds is not None and time_col in frame
            start = frame[time_col].min() if bounded else None
            end = frame[time_col].max() + pd.Timedelta("1ms") if bounded else None
            got = store.read_rows(table, key, start=start, end=end)
            assert list(got.columns) == list(frame.columns), table
            order = list(frame.columns)
            expected = frame.sort_values(order, ignore_index=True)
            got = got.sort_values(order, ignore_index=True)
            for column, kind in spec.columns.items():
                if column not in frame:
                    continue
                where = f"{table}.{column}"
                if kind == "timestamp":
                    assert str(got[column].dtype) == "datetime64[ms, UTC]", where
                if kind == "text":
                    assert got[column].tolist() == expected[column].tolist(), where
                else:
                    np.testing.assert_array_equal(
                        got[column].to_numpy(), expected[column].to_numpy(), err_msg=where
                    )

    def test_upsert_by_primary_key_leaves_one_row(self, store, rng):
        frame = make_readings(rng, ["dev-1"], ["temp_01"], T0, 5)
        store.write_rows("readings", frame)
        store.write_rows("readings", frame.assign(value=frame["value"] + 1))
        got = store.read_rows("readings", {"device_id": "dev-1", "sensor_id": "temp_01"})
        assert len(got) == 5
        np.testing.assert_allclose(got["value"], frame["value"] + 1)

    def test_many_partitions_over_a_short_range_read_like_one_at_a_time(self, store, rng):
        # A live batch writes a few rows to each of many partitions and reads them back over
        # a short range (Cassandra then packs partitions into shared batches and queries).
        devices = [f"dev-{i:02d}" for i in range(23)]
        sensors = ["temp_01", "hum_01", "co2_01"]
        start = pd.Timestamp("2026-01-01 23:58", tz="UTC")  # the range crosses a day bucket
        frame = make_readings(rng, devices, sensors, start, 7, freq="41s")
        assert store.write_rows("readings", frame) == len(frame)
        lo, hi = start + pd.Timedelta("30s"), start + pd.Timedelta("4min")
        got = store.read_rows(
            "readings", {"device_id": devices, "sensor_id": sensors}, start=lo, end=hi
        )
        one_by_one = pd.concat(
            [
                store.read_rows("readings", {"device_id": d, "sensor_id": s}, start=lo, end=hi)
                for d in devices
                for s in sorted(sensors)
            ],
            ignore_index=True,
        )
        pd.testing.assert_frame_equal(got, one_by_one)
        in_range = frame[(frame["ts"] >= lo) & (frame["ts"] < hi)]
        assert len(got) == len(in_range) > len(devices) * len(sensors)
        values_only = store.read_rows(
            "readings",
            {"device_id": devices, "sensor_id": sensors},
            start=lo,
            end=hi,
            columns=["value"],
        )
        pd.testing.assert_frame_equal(values_only, one_by_one[["value"]])
        only = store.read_rows(
            "readings", {"device_id": devices[:2], "sensor_id": "hum_01"}, start=lo, end=hi
        )
        assert set(zip(only["device_id"], only["sensor_id"])) == {
            (devices[0], "hum_01"),
            (devices[1], "hum_01"),
        }

    def test_delete_rows_removes_whole_partitions(self, store):
        provision(store, {"dev-1": ["temp_01", "hum_01"], "dev-2": ["temp_01"]})
        assert store.delete_rows("sensors", {"device_id": "dev-1"}) in (2, -1)  # -1: not counted
        assert store.read_rows("sensors")["device_id"].tolist() == ["dev-2"]

    # -- range queries at bucket edges --------------------------------------------------------
    def test_range_queries_at_bucket_edges(self, store):
        times = pd.to_datetime(
            [
                "2025-12-31 23:59:59.999",
                "2026-01-01 00:00:00.000",  # exactly a bucket start
                "2026-01-01 12:00:00.000",
                "2026-01-01 23:59:59.999",
                "2026-01-02 00:00:00.000",
                "2026-01-03 00:00:00.000",
                "2026-01-03 00:00:00.001",
            ],
            utc=True,
        ).astype("datetime64[ms, UTC]")
        frame = pd.DataFrame(
            {"device_id": "d", "sensor_id": "s", "ts": times, "value": np.arange(7.0)}
        ).assign(quality=100, status="ok")
        store.write_rows("readings", frame)
        key = {"device_id": "d", "sensor_id": "s"}

        def values(start, end):
            got = store.read_rows("readings", key, start=pd.Timestamp(start, tz="UTC"), end=end)
            return got["value"].tolist()

        day = pd.Timestamp("2026-01-02", tz="UTC")
        assert values("2026-01-01", day) == [1.0, 2.0, 3.0]  # end exclusive
        assert values("2026-01-02", pd.Timestamp("2026-01-03", tz="UTC")) == [4.0]
        assert values(
            "2025-12-31 23:59:59.999", pd.Timestamp("2026-01-03 00:00:00.001", tz="UTC")
        ) == [
            0.0,
            1.0,
            2.0,
            3.0,
            4.0,
            5.0,
        ]  # spans 4 buckets
        assert values("2026-01-03 00:00:00.001", None) == [6.0]
        assert store.read_rows("readings", key)["value"].tolist() == list(np.arange(7.0))

    # -- ingest: idempotence and roll-ups -----------------------------------------------------
    def test_reingest_changes_nothing(self, store, rng):
        provision(store, {"dev-1": ["temp_01", "hum_01"]})
        frame = make_readings(rng, ["dev-1"], ["temp_01", "hum_01"], T0, 200)
        assert ingest_readings(store, frame, progress=False).written == 400
        before = store.stats().set_index("table")["rows"]
        rollups = _stored_rollups(store, "rollups_minute", "dev-1")
        again = ingest_readings(store, frame, progress=False)
        assert again.written == 400 and again.rejected.empty
        after = store.stats().set_index("table")["rows"]
        pd.testing.assert_series_equal(before, after)
        pd.testing.assert_frame_equal(rollups, _stored_rollups(store, "rollups_minute", "dev-1"))
        _assert_rollups_match_raw(store, "dev-1")

    def test_rollups_equal_pandas_after_overlapping_and_late_batches(self, store, rng):
        provision(store, {"dev-1": ["temp_01", "hum_01"]})
        full = make_readings(rng, ["dev-1"], ["temp_01", "hum_01"], T0, 400)  # ~4 hours
        first, overlap = full.iloc[: len(full) // 2 + 60], full.iloc[len(full) // 2 - 60 :]
        ingest_readings(store, first, progress=False)
        rewritten = overlap.assign(value=overlap["value"] * 2)  # new values for some rows
        ingest_readings(store, rewritten, progress=False)
        late = make_readings(rng, ["dev-1"], ["temp_01"], T0 + pd.Timedelta("7s"), 20, "53s")
        ingest_readings(store, late, progress=False)  # late rows for hours already rolled up
        stored = read_readings(store, "dev-1")
        assert len(stored) == len(full) + len(late)
        _assert_rollups_match_raw(store, "dev-1")

    def test_rollups_in_store_equal_the_read_path_or_are_not_claimed(self, store, rng):
        """``capabilities.rollups_in_store`` is true exactly when the fast path exists, and
        then it gives the roll-ups of the backend-neutral path."""
        provision(store, {"dev-1": ["temp_01"], "dev-2": ["temp_01"]})
        batch = make_readings(rng, ["dev-1"], ["temp_01"], T0, 150)
        if not store.capabilities.rollups_in_store:
            with pytest.raises(NotImplementedError):
                store.write_readings_with_rollups(batch)
            with pytest.raises(NotImplementedError):
                store.refresh_rollups_of(batch)
            return
        assert store.write_readings_with_rollups(batch) == len(batch)
        twin = batch.assign(device_id="dev-2")
        store.write_rows("readings", twin)
        refresh_rollups(store, twin, native=False)
        for table in ("rollups_minute", "rollups_hour"):
            native = _stored_rollups(store, table, "dev-1").drop(columns="device_id")
            neutral = _stored_rollups(store, table, "dev-2").drop(columns="device_id")
            pd.testing.assert_frame_equal(native, neutral, check_exact=False, rtol=1e-12)
        late = make_readings(rng, ["dev-1", "dev-2"], ["temp_01"], T0 + pd.Timedelta("5s"), 4)
        store.write_rows("readings", late)
        assert store.refresh_rollups_of(late[late["device_id"] == "dev-1"]) > 0
        refresh_rollups(store, late[late["device_id"] == "dev-2"], native=False)
        for device in ("dev-1", "dev-2"):
            _assert_rollups_match_raw(store, device)

    def test_write_tables_stores_each_tables_rows(self, store, rng):
        provision(store, {"dev-1": ["temp_01"]})
        readings = make_readings(rng, ["dev-1"], ["temp_01"], T0, 30)
        beats = pd.DataFrame({"device_id": "dev-1", "ts": readings["ts"].iloc[:5], "cpu": 0.5})
        for column in ("memory", "battery", "signal"):
            beats[column] = np.nan
        written = store.write_tables(
            {"readings": readings, "device_metrics": beats, "dead_letters": pd.DataFrame()}
        )
        assert written == {"readings": 30, "device_metrics": 5, "dead_letters": 0}
        got = store.read_rows("readings", {"device_id": "dev-1", "sensor_id": "temp_01"})
        assert got["value"].tolist() == readings["value"].tolist()
        got = store.read_rows("device_metrics", {"device_id": "dev-1"})
        assert got["ts"].tolist() == beats["ts"].tolist() and (got["cpu"] == 0.5).all()
        with pytest.raises(ValidationError):
            store.write_tables({"readings": readings.drop(columns="value")})

    def test_rollup_memory_skips_its_own_minutes_but_sees_another_writers(
        self, store, rng, monkeypatch
    ):
        """A streaming writer reads one hour roll-up per sensor-hour: new hours and its own
        remembered minutes need no other read; a late row another writer stored in that hour
        makes it recompute the hour from the raw rows."""
        provision(store, {"dev-1": ["temp_01", "hum_01"]})
        stream = make_readings(rng, ["dev-1"], ["temp_01", "hum_01"], T0, 90, "20s")  # 30 min
        tables_read: list[str] = []
        read_rows = store.read_rows

        def recording_read_rows(table, *args, **kwargs):
            tables_read.append(table)
            return read_rows(table, *args, **kwargs)

        def refresh(rows, memory=None):
            store.write_rows("readings", rows)
            tables_read.clear()
            refresh_rollups(
                store, rows[["device_id", "sensor_id", "ts", "value"]], native=False, memory=memory
            )
            return set(tables_read)

        monkeypatch.setattr(store, "read_rows", recording_read_rows)
        memory = RollupMemory()
        ten_minutes = stream["ts"].dt.floor("10min")
        parts = [stream[ten_minutes == m] for m in sorted(ten_minutes.unique())]
        assert refresh(parts[0], memory) == {"rollups_hour"}  # a new hour: the batch is all of it
        assert refresh(parts[1], memory) == {"rollups_hour"}  # its own minutes, checked by hour
        late = make_readings(rng, ["dev-1"], ["temp_01"], T0 + pd.Timedelta("7s"), 3, "1min")
        refresh(late)  # another writer: late rows in minutes the memory holds
        assert refresh(parts[2], memory) == {"rollups_hour", "readings"}
        monkeypatch.undo()
        _assert_rollups_match_raw(store, "dev-1")
        assert len(read_readings(store, "dev-1")) == len(stream) + len(late)

    def test_every_bad_input_gets_its_reason_and_valid_rows_land(self, store):
        provision(store, {"dev-1": ["temp_01"]})
        ts = pd.Timestamp("2026-01-01 00:00", tz="UTC")
        rows = [
            ("dev-1", "temp_01", ts, 1.0, None),  # valid
            (
                "dev-1",
                "temp_01",
                ts + pd.Timedelta("1min"),
                float("nan"),
                "value is missing or NaN",
            ),
            ("dev-1", "temp_01", ts + pd.Timedelta("2min"), float("inf"), "value is infinite"),
            ("dev-1", "temp_01", None, 1.0, "missing timestamp"),
            ("dev-1", "temp_01", "2026-01-01 00:03", 1.0, NAIVE_REASON),
            ("dev-1", "temp_01", "yesterday-ish", 1.0, "unparseable timestamp"),
            ("dev-1", "temp_01", ts + pd.Timedelta("4min"), "warm", "unparseable value"),
            ("dev-1", "temp_01", ts + pd.Timedelta("5min"), 1.0, DUPLICATE_REASON),
            ("dev-1", "temp_01", ts + pd.Timedelta("5min"), 2.0, None),  # wins
            ("dev-1", "nope_01", ts, 1.0, "sensor not provisioned"),
            ("dev-9", "temp_01", ts, 1.0, "sensor not provisioned"),
            (None, "temp_01", ts, 1.0, "missing device_id"),
            ("dev-1", "temp_01", "2026-01-01T02:06:00+02:00", 3.0, None),  # converted to UTC
        ]
        frame = pd.DataFrame(
            [r[:4] for r in rows], columns=["device_id", "sensor_id", "ts", "value"]
        ).assign(tag=range(len(rows)))
        result = ingest_readings(store, frame, progress=False)
        expected_bad = {i: r[4] for i, r in enumerate(rows) if r[4]}
        assert dict(zip(result.rejected["row"], result.rejected["reason"])) == expected_bad
        assert result.rejected["tag"].tolist() == list(expected_bad)  # original columns kept
        assert result.written == len(rows) - len(expected_bad)
        stored = read_readings(store, "dev-1")
        assert stored["value"].tolist() == [1.0, 2.0, 3.0]
        assert stored["ts"].tolist()[-1] == pd.Timestamp("2026-01-01 00:06", tz="UTC")
        assert stored["quality"].tolist() == [100] * 3 and set(stored["status"]) == {"ok"}

    def test_missing_required_column_is_a_clear_error(self, store):
        frame = pd.DataFrame({"device_id": ["d"], "ts": [T0], "value": [1.0]})
        with pytest.raises(ValidationError, match="sensor_id"):
            ingest_readings(store, frame, progress=False)

    def test_unprovisioned_allowed_when_asked(self, store, rng):
        frame = make_readings(rng, ["dev-7"], ["temp_01"], T0, 10)
        result = ingest_readings(store, frame, require_provisioned=False, progress=False)
        assert (result.written, len(result.rejected)) == (10, 0)
        assert "reason" in result.rejected.columns
        assert len(read_readings(store, "dev-7", sensors="temp_01")) == 10

    # -- events -------------------------------------------------------------------------------
    def test_append_events_conflict_writes_nothing(self, store):
        store.append_events("dev-1", 0, _events("dev-1", [1, 2]))
        with pytest.raises(ConcurrencyError, match="dev-1"):
            store.append_events("dev-1", 1, _events("dev-1", [2, 3, 4]))
        stored = store.read_rows("events", {"device_id": "dev-1"})
        assert stored["version"].tolist() == [1, 2]
        assert stored["event_id"].tolist() == ["e1", "e2"]
        store.append_events("dev-1", 2, _events("dev-1", [3]))
        assert store.read_rows("events", {"device_id": "dev-1"})["version"].tolist() == [1, 2, 3]

    # -- stats and queries --------------------------------------------------------------------
    def test_stats_counts_rows_partitions_and_span(self, store, rng):
        frame = make_readings(rng, ["a", "b"], ["s1"], T0 + pd.Timedelta("23h"), 3, "1h")
        ingest_readings(store, frame, require_provisioned=False, progress=False)
        stats = store.stats().set_index("table")
        assert set(TABLES) <= set(stats.index)
        row = stats.loc["readings"]
        assert (row["rows"], row["partitions"]) == (6, 4)  # 2 devices x 2 day buckets
        assert row["first"] == T0 + pd.Timedelta("23h")
        assert row["last"] == T0 + pd.Timedelta("25h")
        assert stats.loc["rollups_hour", "rows"] == 6

    def test_unknown_device_and_bad_interval(self, store):
        with pytest.raises(NotFoundError, match="ghost"):
            read_readings(store, "ghost", sensors="temp_01")
        with pytest.raises(ValidationError, match="interval"):
            read_rollups(store, "ghost", sensors="temp_01", interval="fortnight")

    def test_readings_sorted_utc_and_dataset(self, store, rng):
        provision(store, {"a": ["temp_01", "hum_01"], "b": ["temp_01"]})
        frame = make_readings(rng, ["a", "b"], ["temp_01", "hum_01"], T0, 120, "1min")
        frame = frame[~((frame["device_id"] == "b") & (frame["sensor_id"] == "hum_01"))]
        ingest_readings(store, frame.sample(frac=1, random_state=3), progress=False)
        got = read_readings(store, "a", start="2026-01-01 00:30", end="2026-01-01 01:00")
        assert str(got["ts"].dtype) == "datetime64[ms, UTC]"
        assert got["ts"].is_monotonic_increasing and len(got) == 60
        ds = read_dataset(store, start=T0, end=T0 + pd.Timedelta("2h"), interval="1h")
        assert dict(ds.sizes) == {"device": 2, "time": 2}
        assert ds["temp_01"].attrs["units"] == "°C"
        hourly = frame.assign(h=frame["ts"].dt.floor("h")).groupby(["device_id", "sensor_id", "h"])
        want = hourly["value"].mean()
        assert ds["temp_01"].sel(device="a").values.tolist() == pytest.approx(
            want.loc[("a", "temp_01")].tolist()
        )
        assert np.isnan(ds["hum_01"].sel(device="b").values).all()
        raw = read_dataset(
            store, devices=["a"], sensors=["temp_01"], start=T0, end=T0 + pd.Timedelta("10min")
        )
        assert raw.sizes["time"] == 10
        by_15 = read_dataset(
            store,
            devices=["a"],
            sensors=["temp_01"],
            start=T0,
            end=T0 + pd.Timedelta("1h"),
            interval="15min",
        )
        subset = frame[(frame["device_id"] == "a") & (frame["sensor_id"] == "temp_01")]
        want15 = subset.set_index("ts")["value"].iloc[:60].resample("15min").mean()
        assert by_15["temp_01"].values[0].tolist() == pytest.approx(want15.tolist())

    def test_heartbeats_round_trip_and_rejections(self, store):
        provision(store, {"dev-1": ["temp_01"]})
        ts = pd.date_range(T0, periods=4, freq="1min", unit="ms")
        beats = pd.DataFrame(
            {
                "device_id": ["dev-1", "dev-1", "dev-1", "dev-2"],
                "ts": ts[[2, 0, 1, 3]],
                "cpu": [0.5, 0.2, float("inf"), 0.1],
                "memory": [0.3, 0.3, 0.3, 0.3],
                "battery": [float("nan"), 0.9, 0.9, 0.9],  # a metric may be missing
                "signal": [-60.0, -61.0, -62.0, -63.0],
            }
        )
        result = ingest_metrics(store, beats, progress=False)
        assert result.written == 2
        assert result.rejected["reason"].tolist() == ["cpu is infinite", "device not provisioned"]
        got = read_heartbeats(store, "dev-1")
        assert got["ts"].tolist() == [ts[0], ts[2]]
        assert got["cpu"].tolist() == [0.2, 0.5]
        assert np.isnan(got["battery"].iloc[1])

    def test_empty_batches_write_nothing(self, store):
        empty = pd.DataFrame(
            {
                "device_id": pd.Series([], dtype=str),
                "sensor_id": pd.Series([], dtype=str),
                "ts": pd.Series([], dtype="datetime64[ms, UTC]"),
                "value": pd.Series([], dtype=float),
            }
        )
        result = ingest_readings(store, empty, require_provisioned=False, progress=False)
        assert (result.written, len(result.rejected), "reason" in result.rejected) == (0, 0, True)
        assert store.stats().set_index("table").loc["readings", "rows"] == 0
