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


def test_a_stuck_run_is_flagged_within_minutes_offline_and_online():
    series = _stuck(seasonal_series(days=4, freq="5min", seed=11), start=900, length=36)
    run = series.index.to_series().between(900, 935).to_numpy()
    for scored in (
        ProphetResidualDetector().score(series),
        ProphetResidualDetector().score_online(series),
    ):
        flagged = scored["is_anomaly"].to_numpy()
        assert flagged[run].sum() >= 30  # from the 3rd-4th repeated reading on
        assert flagged[~run].sum() <= 2
        # The longer the run, the less likely: scores rise along it.
        assert np.all(np.diff(scored["score"].to_numpy()[run][4:]) > 0)


def test_a_stuck_day_in_the_history_does_not_teach_that_runs_are_normal():
    series = seasonal_series(days=5, freq="5min", seed=12)
    once = _stuck(series, start=300, length=200)  # 17 hours stuck on day 2
    rule = RepeatRule.learn(ts_ns(series["ts"]), once["value"])
    assert rule.usual == 3  # runs of three are always usual
    scored = ProphetResidualDetector().score(_stuck(once, start=1100, length=24))
    # A history with repeats makes each one less telling: flagged within 40 minutes.
    assert scored["is_anomaly"].to_numpy()[1100:1124].sum() >= 15


def test_a_quantised_sensor_is_judged_by_its_own_runs():
    """A people counter: integer counts by day, 0 all night (runs of 10 hours every
    day). Its nights are normal; a count frozen for a day and a half is not."""
    rng = np.random.default_rng(5)
    ts = pd.date_range("2026-01-05", periods=7 * 144, freq="10min", tz="UTC")
    hours = ts.hour.to_numpy()
    day = (hours >= 7) & (hours < 21)
    counts = np.where(day, rng.poisson(12 + 8 * np.sin(np.pi * (hours - 7) / 14)), 0)
    series = pd.DataFrame({"ts": ts, "value": counts.astype(float)})
    quiet = ProphetResidualDetector().score(series)
    night = ~day
    assert quiet["is_anomaly"].to_numpy()[night].sum() == 0
    frozen = series.copy()
    frozen.loc[4 * 144 + 60 : 5 * 144 + 144, "value"] = 0.0  # 0 from day 5 10:00 to day 6 end
    scored = ProphetResidualDetector().score(frozen)
    assert scored["is_anomaly"].to_numpy()[5 * 144 + 60 : 5 * 144 + 144].any()


def test_a_square_wave_with_a_long_weekend_step_is_not_stuck():
    """Flat between its steps every day, and flatter for a whole weekend: it repeats
    itself nearly always, so even a run three times its usual one is not unlikely."""
    ts = pd.date_range("2026-01-05", periods=14 * 288, freq="5min", tz="UTC")
    on = (ts.hour >= 9) & (ts.hour < 18) & (ts.day_of_week < 5)
    series = pd.DataFrame({"ts": ts, "value": np.where(on, 100.0, 5.0)})
    rule = RepeatRule.learn(ts_ns(ts), series["value"].to_numpy())
    assert rule.log10_q > -0.01
    scored = ProphetResidualDetector().score_online(series)
    weekend = ts.day_of_week >= 5
    assert scored["score"].notna()[weekend].sum() > 500  # the second weekend was judged
    assert not scored["is_anomaly"][weekend].any()


def test_too_short_a_history_teaches_no_rule():
    t = np.arange(50, dtype=np.int64) * 60 * 10**9
    assert RepeatRule.learn(t, np.ones(50)) == NO_RULE
    assert (NO_RULE.log10_p(np.array([1, 10, 1000])) == 0).all()
