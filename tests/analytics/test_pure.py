"""The store-free parts of iotlab.analytics: statistics, uptime, windows, counts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from iotlab.analytics import (
    anomalies_by_device,
    heartbeat_interval,
    sensor_statistics,
    severity_counts,
    split_window,
    uptime,
)
from iotlab.analytics.metrics import resolve_window
from iotlab.errors import ValidationError

T0 = pd.Timestamp("2026-01-01", tz="UTC")


def test_sensor_statistics_equal_pandas() -> None:
    rng = np.random.default_rng(3)
    rows = pd.DataFrame(
        {
            "sensor_id": rng.choice(["hum_01", "temp_01", "vib_01"], 500),
            "value": rng.normal(20, 5, 500),
        }
    )
    stats = sensor_statistics(rows).set_index("sensor_id")
    for sensor, values in rows.groupby("sensor_id")["value"]:
        got = stats.loc[sensor]
        assert got["count"] == len(values)
        assert got["min"] == values.min() and got["max"] == values.max()
        assert got["mean"] == pytest.approx(values.mean())
        assert got["median"] == pytest.approx(np.median(values))
        assert got["std"] == pytest.approx(np.std(values, ddof=1))
        assert got["p05"] == pytest.approx(np.percentile(values, 5))
        assert got["p95"] == pytest.approx(np.percentile(values, 95))
    assert list(stats.index) == ["hum_01", "temp_01", "vib_01"]


def test_heartbeat_interval_is_the_median_spacing_despite_gaps_and_jitter() -> None:
    ts = pd.date_range(T0, periods=200, freq="5min")
    jitter = pd.to_timedelta(np.random.default_rng(0).integers(-5, 6, 200), unit="s")
    beats = (ts + jitter).delete(range(50, 80))  # a 2.5 h gap
    assert abs(heartbeat_interval(beats) - pd.Timedelta("5min")) <= pd.Timedelta("5s")
    assert heartbeat_interval(ts[:1]) is None


def test_uptime_counts_offline_gap_against_the_devices_own_interval() -> None:
    ts = pd.date_range(T0, T0 + pd.Timedelta("1D"), freq="5min", inclusive="left")
    offline = (ts >= T0 + pd.Timedelta("6h")) & (ts < T0 + pd.Timedelta("8h"))
    got = uptime(ts[~offline], T0, T0 + pd.Timedelta("1D"))
    assert got == pytest.approx(1 - 2 / 24)
    # the seed's rule (one heartbeat a minute) would have said 20% here
    assert uptime(ts, T0, T0 + pd.Timedelta("1D")) == 1.0


def test_uptime_does_not_double_count_early_heartbeats() -> None:
    beats = pd.DatetimeIndex([T0, T0 + pd.Timedelta("10s"), T0 + pd.Timedelta("5min")])
    got = uptime(beats, T0, T0 + pd.Timedelta("20min"), pd.Timedelta("5min"))
    assert got == pytest.approx(10 / 20)
    assert uptime(beats[:0], T0, T0 + pd.Timedelta("1h")) == 0.0


def test_resolve_window_rejects_empty_ranges() -> None:
    with pytest.raises(ValidationError, match="end: must be after start"):
        resolve_window(T0, T0)
    assert resolve_window(None, "2026-01-02") == (None, pd.Timestamp("2026-01-02", tz="UTC"))


@settings(max_examples=200, deadline=None)
@given(
    st.integers(0, 3 * 86_400_000),
    st.integers(1, 2 * 86_400_000),
)
def test_split_window_covers_the_window_exactly(offset_ms: int, length_ms: int) -> None:
    start = T0 + pd.Timedelta(offset_ms, "ms")
    end = start + pd.Timedelta(length_ms, "ms")
    pieces = sorted(split_window(start, end), key=lambda p: p[1])
    assert pieces[0][1] == start and pieces[-1][2] == end
    for (_, _, high), (_, low, _) in zip(pieces, pieces[1:]):
        assert high == low
    for source, low, high in pieces:
        assert low < high
        if source != "raw":
            unit = "h" if source == "hour" else "min"
            assert low == low.floor(unit) and high == high.floor(unit)
    assert sum(1 for p in pieces if p[0] == "hour") <= 1


def test_severity_and_device_counts() -> None:
    rows = pd.DataFrame(
        {
            "device_id": ["b", "a", "b", "c", "c"],
            "severity": ["critical", "low", "low", "high", "low"],
        }
    )
    assert severity_counts(rows) == {"low": 3, "medium": 0, "high": 1, "critical": 1}
    table = anomalies_by_device(rows)
    assert table["device_id"].tolist() == ["b", "c", "a"]  # ties by id
    assert table["anomalies"].tolist() == [2, 2, 1]
    assert table["critical"].tolist() == [1, 0, 0]
    assert anomalies_by_device(rows.iloc[:0]).empty
