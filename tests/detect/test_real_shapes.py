"""Scores that rank, p-values that know their tails, and score_online on real shapes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from iotlab.detect import ProphetResidualDetector
from iotlab.detect.calibration import Calibration
from iotlab.detect.reference import TailReference
from iotlab.detect.window_score import best_window_score, window_score
from iotlab.simulate.shapes import SHAPES, shape_series

# Deviations in hundredths of an sd: strictly larger ones must score strictly higher.
deviations = st.lists(
    st.integers(min_value=0, max_value=10**6).map(lambda i: i / 100), min_size=2, max_size=50
)


@given(deviations)
def test_score_is_strictly_increasing_in_the_deviation(values):
    z = np.unique(np.asarray(values))
    score = Calibration().score(z)
    assert np.all(np.diff(score) > 0), "equal scores for different deviations"
    assert np.all(np.isfinite(score))


@settings(max_examples=50)
@given(deviations, st.integers(min_value=0, max_value=2**32 - 1))
def test_reference_tail_probability_never_rises_with_the_deviation(values, seed):
    rng = np.random.default_rng(seed)
    reference = TailReference.learn(np.abs(rng.standard_t(2, 500)))
    z = np.unique(np.asarray(values))
    log10_p = reference.log10_p(z)
    assert np.all(np.diff(log10_p) <= 0)
    score = Calibration().score_from_log10_p(log10_p, z)
    assert np.all(np.diff(score) > 0)  # the tie-break keeps the ranking strict
    assert np.all(np.isfinite(score))


def test_heavy_tailed_errors_are_not_surprising_but_new_extremes_are():
    rng = np.random.default_rng(0)
    reference = TailReference.learn(np.abs(rng.standard_t(2, 5000)))
    common, extreme = reference.log10_p(np.array([8.0, 200.0]))
    assert common > -3  # a Gaussian tail would put it at -15
    assert extreme < -15


def test_window_score_rewards_early_detection_and_charges_false_alarms():
    ts = pd.Series(pd.date_range("2026-01-01", periods=2000, freq="5min", tz="UTC"))
    windows = {"s": pd.DataFrame({"start": [ts[1500]], "end": [ts[1600]]})}

    def scored(*rows):
        conf = np.zeros(len(ts))
        conf[list(rows)] = 0.9
        return {"s": pd.DataFrame({"ts": ts, "confidence": conf})}

    never = window_score(scored(), windows, threshold=0.5)
    early = window_score(scored(1505), windows, threshold=0.5)
    late = window_score(scored(1595), windows, threshold=0.5)
    noisy = window_score(scored(1505, 800, 900), windows, threshold=0.5)
    assert never.score == 0.0 and never.n_detected == 0
    assert 95 < early.score <= 100
    assert 0 < late.score < early.score
    assert noisy.score < early.score and noisy.n_false_alarms == 2
    assert noisy.false_alarms_per_1000 == pytest.approx(1000 * 2 / never.n_normal)
    # A detection in the probation period (first 15%) is ignored.
    assert window_score(scored(1505, 100), windows, threshold=0.5).score == early.score
    assert best_window_score(scored(1505), windows).score == early.score


@pytest.fixture(scope="module")
def online_scores():
    """score_online of the Prophet detector on every shape with 7 days of data."""
    out = {}
    for kind in SHAPES:
        for anomaly in (True, False):
            frame, labels = shape_series(kind, seed=11, days=7, anomaly=anomaly)
            out[kind, anomaly] = ProphetResidualDetector().score_online(frame), labels
    return out


def test_shapes_without_anomalies_raise_few_false_alarms(online_scores):
    flagged = scored = 0
    for (_kind, anomaly), (result, _) in online_scores.items():
        if not anomaly:
            flagged += int(result["is_anomaly"].sum())
            scored += int(result["confidence"].notna().sum())
    assert scored > 10_000
    assert 1000 * flagged / scored <= 1.0


@pytest.mark.parametrize("kind", [k for k in SHAPES if k != "drift"])
def test_each_shape_anomaly_is_found_as_one_early_alert(online_scores, kind):
    result, labels = online_scores[kind, True]
    start, end = labels["start"].iloc[0], labels["end"].iloc[0]
    events = ProphetResidualDetector().episodes(result)
    hits = events[(events["start"] >= start) & (events["start"] < end + pd.Timedelta("1h"))]
    assert len(hits) >= 1
    assert hits["start"].min() - start <= pd.Timedelta("1h")
    assert len(events) - len(hits) <= 1  # at most one false or split alert


def test_forecast_trend_is_held_across_a_long_gap():
    ts = pd.date_range("2026-01-01", periods=24 * 10, freq="1h", tz="UTC")
    rng = np.random.default_rng(2)
    values = 50 + rng.normal(0, 0.3, len(ts))
    ramp = (ts >= "2026-01-04") & (ts < "2026-01-05")
    values[ramp] += np.linspace(0, 5, ramp.sum())  # a day's rise that does not go on
    values[ts >= "2026-01-05"] += 5
    keep = (ts < "2026-01-05") | (ts >= "2026-01-08")  # three days offline
    frame = pd.DataFrame({"ts": ts[keep], "value": values[keep]})
    result = ProphetResidualDetector().score_online(frame)
    after = result[result["ts"] >= "2026-01-08"].head(12)
    assert after["confidence"].notna().all()
    # Extrapolated over the gap, the day's slope would put the forecast 15 units off.
    assert (after["expected"] - after["value"]).abs().max() < 6


def test_a_sensor_back_from_a_silence_is_not_an_anomaly_for_having_moved_on():
    ts = pd.date_range("2026-01-05", periods=6 * 288, freq="5min", tz="UTC")
    rng = np.random.default_rng(4)
    values = 20 + 2 * np.sin(2 * np.pi * ts.hour.to_numpy() / 24) + rng.normal(0, 0.2, len(ts))
    back = ts >= "2026-01-10"
    values[back] += 1.5  # the room warmed while its sensor was off for two days
    values[np.flatnonzero(back)[20]] += 15  # a real spike an hour and a half later
    keep = (ts < "2026-01-08") | back
    result = ProphetResidualDetector().score_online(
        pd.DataFrame({"ts": ts[keep], "value": values[keep]})
    )
    after = result[result["ts"] >= "2026-01-10"].reset_index(drop=True)
    assert not after["is_anomaly"].iloc[:3].any()  # the first readings back: a new level
    assert after["is_anomaly"].iloc[20]
    assert after.loc[20, "score"] == after["score"].max()


def test_day_profile_follows_a_schedule_off_the_bin_edges():
    from iotlab.detect.profile import DayProfile, ts_ns

    # Readings at xx:04, xx:09, ...; a job runs for the xx:59 and xx:09 readings only.
    ts = pd.date_range("2026-01-05 00:04", periods=7 * 288, freq="5min", tz="UTC")
    job = np.where(ts.minute.isin([59, 9]), 10.0, 0.0)
    profile = DayProfile.learn(ts_ns(ts), job)
    np.testing.assert_allclose(profile.at(ts_ns(ts)), job)


def test_an_office_on_off_square_wave_raises_no_alarm_in_two_weeks():
    """Noise-free steps at 09:00 and 18:00 on weekdays, off at weekends. Its scale
    floor follows the data's resolution (the 95-unit step, counted only once there are
    enough steps): it fell 500-fold from one day to the next, and the tail reference,
    kept in the old scale's units, called ordinary errors new extremes (10 readings
    flagged on the second Monday night)."""
    ts = pd.date_range("2026-01-05", periods=14 * 288, freq="5min", tz="UTC")
    on = (ts.hour >= 9) & (ts.hour < 18) & (ts.day_of_week < 5)
    series = pd.DataFrame({"ts": ts, "value": np.where(on, 100.0, 5.0)})
    scored = ProphetResidualDetector().score_online(series)
    assert scored["score"].notna().sum() > 3000
    assert not scored["is_anomaly"].any()
