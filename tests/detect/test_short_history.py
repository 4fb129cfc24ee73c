"""A week of history: the day profile learns a weekend it has seen once, and its days meet
at midnight.

With 7 days each weekend day is seen once: borrowing the weekdays' profile flagged every
weekend step of an office or a machine (event precision 0.46 on the simulated fleet).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from iotlab.detect import ProphetResidualDetector
from iotlab.detect.profile import DayProfile, ts_ns


def _office_week(seed: int) -> pd.DataFrame:
    """Seven days at 1 min from a Monday: +10 from 08:00 to 18:00 on weekdays only."""
    ts = pd.date_range("2026-03-02", periods=7 * 1440, freq="1min", tz="UTC")
    rng = np.random.default_rng(seed)
    office = (ts.hour >= 8) & (ts.hour < 18) & (ts.day_of_week < 5)
    values = 20.0 + 10.0 * office + rng.normal(0, 0.2, len(ts))
    return pd.DataFrame({"ts": ts, "value": values})


def test_a_weekend_seen_once_is_not_flagged_for_missing_the_office_hours():
    frame = _office_week(seed=8101)
    scored = ProphetResidualDetector().score(frame)
    weekend = scored["ts"].dt.day_of_week >= 5
    assert weekend.sum() == 2 * 1440
    assert not scored.loc[weekend, "is_anomaly"].any()
    # Nor the weekdays' own steps at 08:00 and 18:00 sharp, seen in 1-minute readings.
    assert not scored["is_anomaly"].any()


def test_a_fault_on_the_weekend_seen_once_is_still_found():
    frame = _office_week(seed=8102)
    saturday_noon = frame.index[frame["ts"] == pd.Timestamp("2026-03-07 12:00", tz="UTC")][0]
    frame.loc[saturday_noon, "value"] += 5.0  # 25 noise sds
    scored = ProphetResidualDetector().score(frame)
    assert scored.loc[saturday_noon, "is_anomaly"]


def test_readings_every_minute_stay_on_their_own_day():
    # Offsets spread over the whole 5-minute bin have no mean; shifting by a noisy one
    # put Monday 00:00:00 on Sunday's row.
    ts = pd.date_range("2026-03-02", periods=14 * 1440, freq="1min", tz="UTC")
    residual = np.where(ts.day_of_week == 6, 10.0, 0.0)
    profile = DayProfile.learn(ts_ns(ts), residual)
    at = pd.to_datetime(["2026-03-16 00:00:00", "2026-03-15 23:59:00"], utc=True)
    monday, sunday = profile.at(ts_ns(at))
    assert abs(monday) < 0.5
    assert abs(sunday - 10.0) < 0.5


def test_days_meet_at_midnight_where_the_readings_do():
    # A level rising steadily over the week: a bin's median is over different nights at
    # 23:55 (Mon..Fri evenings) and at 00:00 (Mon..Fri mornings), a jump no reading makes.
    ts = pd.date_range("2026-03-02", periods=7 * 1440, freq="1min", tz="UTC")
    days = (ts - ts[0]) / pd.Timedelta("1D")
    shape = np.sin(2 * np.pi * days.to_numpy())  # smooth across midnight
    profile = DayProfile.learn(ts_ns(ts), 0.5 * days.to_numpy() + shape)
    for night in ("2026-03-03", "2026-03-04", "2026-03-05"):
        midnight = pd.Timestamp(night, tz="UTC")
        instants = pd.DatetimeIndex([midnight - pd.Timedelta("1min"), midnight])
        before, after = profile.at(ts_ns(instants))
        assert abs(after - before) < 0.1, night


def test_a_step_every_midnight_is_kept():
    ts = pd.date_range("2026-03-02", periods=14 * 1440, freq="1min", tz="UTC")
    job = np.where(ts.hour < 1, 5.0, 0.0)  # a nightly job from 00:00 to 01:00
    profile = DayProfile.learn(ts_ns(ts), job)
    before, after = profile.at(
        ts_ns(pd.to_datetime(["2026-03-10 23:58", "2026-03-11 00:02"], utc=True))
    )
    assert abs(before) < 0.5
    assert abs(after - 5.0) < 0.5


def test_the_first_monday_after_a_friday_to_sunday_history_starts_where_sunday_ended():
    # Three days, Friday to Sunday: a busy Friday, a quiet weekend. Prophet's trend
    # falls from Friday to Sunday and goes on falling into Monday, and Monday's borrowed
    # weekday row was learned against Friday's higher trend: Monday started 25 units
    # (20 noise sds) below Sunday night, and every sensor was flagged from midnight
    # until the local correction caught up (816 of 24,000 live readings).
    ts = pd.date_range("2027-01-08", periods=3 * 1440 + 240, freq="1min", tz="UTC")
    rng = np.random.default_rng(8103)
    hours = ts.hour + ts.minute / 60
    friday_shift = (ts.day_of_week == 4) & (hours >= 6) & (hours < 18)
    values = 12.0 + 2.0 * np.sin(2 * np.pi * hours / 24) + 35.0 * friday_shift
    frame = pd.DataFrame({"ts": ts, "value": values + rng.normal(0, 1.2, len(ts))})
    scored = ProphetResidualDetector().score_online(frame)
    monday = scored["ts"] >= pd.Timestamp("2027-01-11", tz="UTC")
    assert monday.sum() == 240
    assert not scored.loc[monday, "is_anomaly"].any()
    assert (scored.loc[monday, "expected"] - scored.loc[monday, "value"]).abs().max() < 6.0


def test_the_second_monday_after_one_week_starts_where_sunday_ended():
    """A week of an office's on/off square wave: the wrap from Sunday to Monday was
    never seen, and the trend fell over the quiet weekend. Monday started 40 units
    below the readings (flagged critical for half an hour); the history's own Monday
    keeps its row."""
    ts = pd.date_range("2026-01-05", periods=8 * 288, freq="5min", tz="UTC")
    on = (ts.hour >= 9) & (ts.hour < 18) & (ts.day_of_week < 5)
    frame = pd.DataFrame({"ts": ts, "value": np.where(on, 100.0, 5.0)})
    scored = ProphetResidualDetector().score_online(frame)
    night = scored["ts"].between(
        pd.Timestamp("2026-01-12 00:00", tz="UTC"), pd.Timestamp("2026-01-12 02:00", tz="UTC")
    )
    assert not scored.loc[night, "is_anomaly"].any()
    assert (scored.loc[night, "expected"] - 5.0).abs().max() < 2.0
    # The offset is for the days ahead only: the week's own Monday keeps its row.
    # Residuals against a trend that followed the week: nights 35 below it on weekdays,
    # the quiet weekend on it.
    residual = np.where(on, 60.0, np.where(ts.day_of_week < 5, -35.0, 0.0))[: 7 * 288]
    profile = DayProfile.learn(ts_ns(ts[: 7 * 288]), residual)
    mondays = ts_ns(pd.to_datetime(["2026-01-05 00:30", "2026-01-12 00:30"], utc=True))
    own, ahead = profile.at(mondays)
    assert own == -35.0
    assert ahead == profile.at(ts_ns(ts[7 * 288 - 1 : 7 * 288]))[0] == 0.0  # Sunday's end


def test_a_day_seen_once_and_partly_left_out_keeps_its_level_in_every_hour():
    # A weekday type seen on a Friday whose 03:15-04:00 readings were left out, and on a
    # Monday that ends at 03:15: the forecast's shape had no value in 03:15-04:00, and
    # the coarse profile there took the readings' level (230) as a residual, doubling
    # the expectation.
    # The forecast has a shape the weekday readings lack (they stay flat at 230): only
    # the readings less the forecast's shape follow them, so that candidate is chosen.
    ts = pd.date_range("2027-01-08", "2027-01-11 03:14", freq="1min", tz="UTC")
    hours = ts.hour + ts.minute / 60
    forecast = 230.0 + 3.0 * np.sin(2 * np.pi * hours / 2)
    weekday = ts.day_of_week < 5
    noise = np.random.default_rng(8104).normal(0, 0.3, len(ts))
    residual = np.where(weekday, 230.0 - forecast, 0.0) + noise
    keep = ~((ts.day_of_week == 4) & (hours >= 3.25) & (hours < 4))
    profile = DayProfile.learn(ts_ns(ts), residual, keep=keep, forecast=forecast)
    assert np.abs(profile.table).max() < 10.0  # the shape is ±3; the level is 230
