"""Heartbeat interval and uptime from hourly aggregates, against the per-heartbeat rule."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from iotlab.analytics.heartbeats import (
    hourly_heartbeats,
    interval_from_hours,
    summarise_heartbeats,
    uptime_from_hours,
)

T0 = pd.Timestamp("2026-01-01", tz="UTC")


def _per_heartbeat(ts: pd.DatetimeIndex, start, end, step: pd.Timedelta) -> float:
    """Each heartbeat covers up to one interval, cut by the next one and the window end."""
    instants = ts.as_unit("ns").asi8
    until = np.append(instants[1:], end.value)
    return float(np.minimum(until - instants, step.value).sum() / (end - start).value)


@settings(max_examples=60, deadline=None)
@given(
    period_s=st.sampled_from([30, 60, 300, 600, 1800, 5400]),
    gaps=st.lists(st.tuples(st.integers(0, 300), st.integers(1, 200)), max_size=4),
    offset_s=st.integers(0, 7200),
    length_s=st.integers(3600, 3 * 86_400),
)
def test_regular_heartbeats_match_the_per_heartbeat_rule(period_s, gaps, offset_s, length_s):
    """Regular heartbeats with offline periods more than an hour apart (so no hour holds two
    long gaps): the hourly form is exactly the per-heartbeat rule."""
    period = pd.Timedelta(period_s, "s")
    ts = pd.date_range(T0, T0 + pd.Timedelta("4D"), freq=period, inclusive="left")
    keep = np.ones(len(ts), dtype=bool)
    position, apart = 0, 3600 // period_s + 2
    for i, (skip, length) in enumerate(gaps):
        first = position + skip + (apart if i else 0)
        keep[first : first + length] = False
        position = first + length
    start = T0 + pd.Timedelta(offset_s, "s")
    end = start + pd.Timedelta(length_s, "s")
    beats = ts[keep]
    beats = beats[(beats >= start) & (beats < end)]
    hours = hourly_heartbeats(beats, start, end)
    interval = interval_from_hours(hours)
    if len(beats) < 2:
        assert interval is None
        return
    assert interval == pd.Timedelta(np.median(np.diff(beats.as_unit("ns").asi8)))
    got = uptime_from_hours(hours, start, end, interval)
    assert got == pytest.approx(_per_heartbeat(beats, start, end, interval), abs=1e-12)


def test_jitter_and_early_heartbeats_stay_close() -> None:
    rng = np.random.default_rng(5)
    ts = pd.date_range(T0, periods=24 * 12, freq="5min")
    beats = (ts + pd.to_timedelta(rng.integers(-5, 6, len(ts)), unit="s")).sort_values()
    beats = beats.delete(range(100, 130))  # 2.5 h offline
    end = T0 + pd.Timedelta("1D")
    summary = summarise_heartbeats(hourly_heartbeats(beats, T0, end), T0, end)
    assert abs(summary.interval - pd.Timedelta("5min")) <= pd.Timedelta("5s")
    exact = _per_heartbeat(beats[beats >= T0], T0, end, summary.interval)
    # early heartbeats' shortfall inside an hour may count as covered, never less
    assert exact <= summary.uptime <= exact + len(beats) * 10 / 86_400
    assert summary.uptime == pytest.approx(1 - 2.5 / 24, abs=2 * 300 / 86_400)
    assert summary.count == len(beats[beats >= T0]) and summary.last == beats[-1]


def test_empty_and_single_heartbeats() -> None:
    end = T0 + pd.Timedelta("1h")
    empty = summarise_heartbeats(hourly_heartbeats(pd.DatetimeIndex([], tz="UTC")), T0, end)
    assert (empty.count, empty.interval, empty.uptime, empty.last) == (0, None, 0.0, None)
    one = hourly_heartbeats(pd.DatetimeIndex([T0 + pd.Timedelta("10min")]))
    assert interval_from_hours(one) is None
    assert uptime_from_hours(one, T0, end) == 0.0
    assert uptime_from_hours(one, T0, end, pd.Timedelta("6min")) == pytest.approx(0.1)
