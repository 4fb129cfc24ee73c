"""A reduced version of benchmarks/eval_detect.py: Prophet against the rolling z-score on
the simulator's default fleet with its labelled faults.

Four devices (one of each default type) for four weeks at 1 minute, as in the full table: every
day of the week is seen four times, and it takes ~15 s of fits. The floors sit
below what the full table shows (event F1 0.86+ at 1 minute, 20 devices, 4 weeks) so
the test pins the method, not one seed's luck.
"""

from __future__ import annotations

import pandas as pd
import pytest

from iotlab.detect import ProphetResidualDetector, RollingZScoreDetector, evaluate
from iotlab.detect.fleet import score_many
from iotlab.simulate import Fleet

VALUE_FAULTS = ("spike", "dip", "level_shift", "drift", "stuck", "noise_burst")
#: Sensors of the shift and office devices: strong daily and weekly steps.
SEASONAL = ("co2_01", "power_01", "temp_01", "vibration_01")


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    sim = Fleet(n_devices=4, seed=7).simulate(start="2026-01-05", days=28, freq="1min")
    labels = sim.labels[sim.labels["kind"].isin(VALUE_FAULTS)]
    series = {
        key: group[["ts", "value"]]
        for key, group in sim.readings.groupby(["device_id", "sensor_id"], sort=True)
    }
    sensors = sim.sensors.set_index(["device_id", "sensor_id"])
    ranges = {key: tuple(sensors.loc[key, ["min_value", "max_value"]]) for key in series}
    rows = []
    for detector in (ProphetResidualDetector(), RollingZScoreDetector()):
        scored, failures = score_many(series, detector, sensor_ranges=ranges, progress=False)
        assert failures.empty
        seasonal = scored[scored["sensor_id"].isin(SEASONAL)]
        for part, frame in (("all", scored), ("seasonal", seasonal)):
            result = evaluate(frame, labels).to_frame().assign(detector=detector.name, part=part)
            rows.append(result)
    return pd.concat(rows, ignore_index=True).set_index(["detector", "part"])


def test_prophet_reaches_the_f1_floor(table):
    prophet = table.loc[("prophet", "all")]
    assert prophet["n_labels"] >= 40  # the faults really were there to find
    assert prophet["event_f1"] >= 0.75
    assert prophet["event_recall"] >= 0.9


def test_prophet_beats_the_rolling_zscore_on_seasonal_sensors(table):
    prophet, rolling = (
        table.loc[("prophet", "seasonal")],
        table.loc[("rolling_zscore", "seasonal")],
    )
    assert prophet["event_f1"] >= rolling["event_f1"] + 0.2
    # The baseline's trouble is false alarms at the shift and office-hour steps.
    assert prophet["n_false_events"] < rolling["n_false_events"] / 3
