"""A stuck sensor (one value repeated) is found from the run itself, offline and online;
series that repeat values as a matter of course (quantised, flat between steps) are not
flagged for doing so."""

from __future__ import annotations

import numpy as np
import pandas as pd

from iotlab.detect import ProphetResidualDetector
from iotlab.detect.profile import ts_ns
from iotlab.detect.repeats import NO_RULE, RepeatRule, run_positions

from .conftest import seasonal_series


def _stuck(series: pd.DataFrame, start: int, length: int) -> pd.DataFrame:
    out = series.copy()
    out.loc[start : start + length - 1, "value"] = out.loc[start - 1, "value"]
    return out


def test_run_positions_continue_a_run_from_an_earlier_batch():
    values = np.array([3.0, 3.0, 3.0, 4.0, 4.0, 3.0])
    whole = run_positions(values)
    assert whole.tolist() == [1, 2, 3, 1, 2, 1]
    head = run_positions(values[:2])
    tail = run_positions(values[2:], previous=values[1], previous_run=int(head[-1]))
    assert np.concatenate([head, tail]).tolist() == whole.tolist()


def test_a_stuck_run_raises_one_early_alert_offline_and_online():
    series = _stuck(seasonal_series(days=4, freq="5min", seed=11), start=900, length=36)
    run = series.index.to_series().between(900, 935).to_numpy()
    for scored in (
        ProphetResidualDetector().score(series),
        ProphetResidualDetector().score_online(series),
    ):
        flagged = scored["is_anomaly"].to_numpy()
        assert flagged[900:908].sum() >= 2  # within 40 minutes of the start
        assert flagged[~run].sum() <= 2
        # One alert, not three hours of them: quiet once the run has said its piece.
        assert not flagged[915:936].any()
        episodes = ProphetResidualDetector().episodes(scored)
        assert (
            (episodes["start"] >= series["ts"][900]) & (episodes["end"] <= series["ts"][935])
        ).sum() == 1


def test_a_stuck_spell_in_the_history_does_not_teach_that_runs_are_normal():
    series = seasonal_series(days=10, freq="5min", seed=12)
    once = _stuck(series, start=300, length=60)  # 5 hours stuck on day 2
    rule = RepeatRule.learn(ts_ns(series["ts"]), once["value"])
    assert rule.usual == 3  # runs of three are always usual
    assert rule.log10_q < -1.5
    scored = ProphetResidualDetector().score(_stuck(once, start=2200, length=24))
    assert scored["is_anomaly"].to_numpy()[2200:2212].sum() >= 3


def test_a_sensor_that_often_repeats_itself_gets_no_rule():
    """A people counter: integer counts by day, 0 all night. Its runs come and go in
    lengths no chance per repeat describes: no rule, and its nights are not alerts."""
    rng = np.random.default_rng(5)
    ts = pd.date_range("2026-01-05", periods=7 * 144, freq="10min", tz="UTC")
    hours = ts.hour.to_numpy()
    day = (hours >= 7) & (hours < 21)
    counts = np.where(day, rng.poisson(12 + 8 * np.sin(np.pi * (hours - 7) / 14)), 0)
    series = pd.DataFrame({"ts": ts, "value": counts.astype(float)})
    assert RepeatRule.learn(ts_ns(ts), series["value"].to_numpy()) == NO_RULE
    quiet = ProphetResidualDetector().score(series)
    assert quiet["is_anomaly"].to_numpy()[~day].sum() == 0


def test_a_square_wave_with_a_long_weekend_step_is_not_stuck():
    """Flat between its steps every day, and flatter for a whole weekend."""
    ts = pd.date_range("2026-01-05", periods=14 * 288, freq="5min", tz="UTC")
    on = (ts.hour >= 9) & (ts.hour < 18) & (ts.day_of_week < 5)
    series = pd.DataFrame({"ts": ts, "value": np.where(on, 100.0, 5.0)})
    assert RepeatRule.learn(ts_ns(ts), series["value"].to_numpy()) == NO_RULE
    scored = ProphetResidualDetector().score_online(series)
    weekend = ts.day_of_week >= 5
    assert scored["score"].notna()[weekend].sum() > 500  # the second weekend was judged
    assert not scored["is_anomaly"][weekend].any()


def test_too_short_a_history_teaches_no_rule():
    t = np.arange(50, dtype=np.int64) * 60 * 10**9
    assert RepeatRule.learn(t, np.ones(50)) == NO_RULE
    assert (NO_RULE.log10_p(np.array([1, 10, 1000])) == 0).all()
