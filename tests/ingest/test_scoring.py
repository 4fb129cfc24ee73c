"""The live scorer's forecast tables: the default model's fleet-at-once path equals fitting
one detector per sensor, and scores do not depend on how a stream is cut into batches."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from iotlab.detect import RollingZScoreDetector
from iotlab.detect.base import robust_width
from iotlab.detect.baselines import trailing_forecasts
from iotlab.ingest.scoring import SCORE_FIELDS, ForecastCache
from iotlab.store import open_store


def _series(rng: np.random.Generator, n: int, step_s: int) -> pd.DataFrame:
    gaps = rng.integers(1, 3, n) * step_s  # irregular: some readings missing
    ts = pd.Timestamp("2026-01-01", tz="UTC") + pd.to_timedelta(np.cumsum(gaps), unit="s")
    return pd.DataFrame({"ts": ts.astype("datetime64[ms, UTC]"), "value": rng.normal(20, 2, n)})


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_trailing_forecasts_equal_one_detector_per_series(seed):
    rng = np.random.default_rng(seed)
    histories, probes, widths, expected, scales = [], [], [], [], []
    for code, (n, step_s) in enumerate([(5, 60), (400, 60), (90, 30), (300, 300), (250, 1)]):
        history = _series(rng, n, step_s)
        sensor_range = (0.0, 50.0) if code % 2 else None
        grid = history["ts"].iloc[-1] + pd.to_timedelta(np.arange(1, 61) * step_s, unit="s")
        detector = RollingZScoreDetector(window="2h", sensor_range=sensor_range).fit(history)
        forecast = detector.score(pd.DataFrame({"ts": grid, "value": np.nan}))
        z = detector.calibration.z_threshold(detector.threshold)
        expected.append(forecast["expected"].to_numpy())
        scales.append(((forecast["upper"] - forecast["expected"]) / z).to_numpy())
        histories.append(history.assign(series=code))
        probes.append(pd.DataFrame({"series": code, "ts": grid}))
        widths.append(50.0 if sensor_range else robust_width(history["value"].to_numpy()))
    got_expected, got_scale = trailing_forecasts(
        pd.concat(histories, ignore_index=True),
        pd.concat(probes, ignore_index=True),
        np.array(widths),
    )
    want_expected, want_scale = np.concatenate(expected), np.concatenate(scales)
    assert np.isnan(want_expected).any() and np.isfinite(want_expected).any()
    np.testing.assert_allclose(got_expected, want_expected, equal_nan=True)
    np.testing.assert_allclose(got_scale, want_scale, equal_nan=True)


def _stream(n_sensors: int = 6) -> pd.DataFrame:
    rng = np.random.default_rng(5)
    ts = pd.date_range("2026-01-01", periods=400, freq="1min", tz="UTC", unit="ms")
    frames = []
    for i in range(n_sensors):
        values = 20 + np.sin(np.arange(len(ts)) / 40) + rng.normal(0, 0.2, len(ts))
        values[300 + i] += 8  # one spike per sensor
        frames.append(
            pd.DataFrame(
                {
                    "device_id": f"d{i // 2}",
                    "sensor_id": f"s{i % 2}",
                    "ts": ts,
                    "value": values,
                    "quality": 100,
                    "status": "ok",
                }
            )
        )
    return pd.concat(frames, ignore_index=True).sort_values("ts", kind="stable")


def _score_in_batches(factory, stream: pd.DataFrame, cuts: list[int]) -> pd.DataFrame:
    with open_store("sqlite://") as store:
        cache = ForecastCache(store, detector=factory, refit_every="30min", history="2h")
        scored = []
        for lo, hi in zip([0, *cuts], [*cuts, len(stream)]):
            batch = stream.iloc[lo:hi]
            scored.append(cache.score(batch))  # the service scores, then writes
            store.write_rows("readings", batch)
    return pd.concat(scored, ignore_index=True).sort_values(
        ["device_id", "sensor_id", "ts"], ignore_index=True
    )


def test_default_model_scores_like_its_detector_fitted_per_sensor_in_any_batching():
    stream = _stream()

    def same_model(device_id, sensor_id, sensor_range):  # not the default: one fit per sensor
        return RollingZScoreDetector(window="2h", min_periods=10, sensor_range=sensor_range)

    fast = _score_in_batches("zscore", stream, [600, 1300, 1500])
    slow = _score_in_batches(same_model, stream, [97, 1000, 1800, 2222])
    assert fast["expected"].notna().mean() > 0.5  # most readings were scored
    for column in SCORE_FIELDS:
        pd.testing.assert_series_equal(fast[column], slow[column], check_exact=False)
    flagged = fast[fast["is_anomaly"]]
    assert len(flagged) >= 6
    assert set(zip(flagged["device_id"], flagged["sensor_id"])) == {
        (f"d{i // 2}", f"s{i % 2}") for i in range(6)
    }


class _CountingReads:
    """A store that counts its ``readings`` reads."""

    def __init__(self, store):
        self.store, self.reads = store, 0

    def __getattr__(self, name):
        return getattr(self.store, name)

    def read_rows(self, table, *args, **kwargs):
        self.reads += table == "readings"
        return self.store.read_rows(table, *args, **kwargs)


@pytest.mark.parametrize("cuts", [[600, 1300, 1500], [97, 1000, 1800, 2222]])
def test_refits_from_memory_score_like_refits_read_from_the_store(cuts):
    stream = _stream()
    history = stream.assign(ts=stream["ts"] - pd.Timedelta("400min"))  # stored before
    results = {}
    for remember in (True, False):
        with open_store("sqlite://") as raw:
            raw.write_rows("readings", history)
            store = _CountingReads(raw)
            cache = ForecastCache(store, detector="zscore", refit_every="30min")
            scored = []
            for lo, hi in zip([0, *cuts], [*cuts, len(stream)]):
                batch = stream.iloc[lo:hi]
                if not remember:
                    cache.forget_history()
                # The service scores a batch, then writes it: a refit that reads the
                # store must still see the batch's readings before its grid point.
                scored.append(cache.score(batch))
                raw.write_rows("readings", batch)
            results[remember] = (pd.concat(scored, ignore_index=True), store.reads)
    (memory, memory_reads), (stored, stored_reads) = results[True], results[False]
    assert memory["expected"].notna().mean() > 0.9
    for column in SCORE_FIELDS:
        pd.testing.assert_series_equal(memory[column], stored[column])
    # The memory is filled by the first refit: one read per sensor id (2), never again.
    assert memory_reads == 2
    assert stored_reads > 2 * len(cuts)


def test_a_batch_correcting_stored_readings_scores_as_if_it_were_stored_first():
    """The service scores a batch before writing it. Where the batch rewrites readings
    already stored with other values, refits (now and later) must use the batch's."""
    stream = _stream()
    history = stream.assign(ts=stream["ts"] - pd.Timedelta("400min"))
    stale = stream.assign(value=stream["value"] + 50.0)  # stored, then corrected
    results = []
    for score_first in (True, False):
        with open_store("sqlite://") as store:
            store.write_rows("readings", pd.concat([history, stale]))
            cache = ForecastCache(store, detector="zscore", refit_every="30min")
            scored = []
            for lo, hi in zip([0, 600, 1300, 1500], [600, 1300, 1500, len(stream)]):
                batch = stream.iloc[lo:hi]
                if not score_first:
                    store.write_rows("readings", batch)
                scored.append(cache.score(batch))
                store.write_rows("readings", batch)
            results.append(pd.concat(scored, ignore_index=True))
    assert results[0]["expected"].notna().mean() > 0.9
    for column in SCORE_FIELDS:
        pd.testing.assert_series_equal(results[0][column], results[1][column])


def test_a_warmed_cache_scores_its_first_batch_without_fitting_or_reading():
    stream = _stream()
    history = stream.assign(ts=stream["ts"] - pd.Timedelta("400min"))
    live = stream[stream["ts"] >= stream["ts"].iloc[0] + pd.Timedelta("40min")]
    first = live[live["ts"] < live["ts"].iloc[0] + pd.Timedelta("10min")]
    sensors = (
        stream[["device_id", "sensor_id"]]
        .drop_duplicates()
        .assign(sensor_type="t", unit="u", min_value=np.nan, max_value=np.nan)
        .assign(calibration_date=stream["ts"].iloc[0], added_at=stream["ts"].iloc[0])
    )
    results = {}
    for warm in (True, False):
        with open_store("sqlite://") as raw:
            raw.write_rows("sensors", sensors)
            raw.write_rows(
                "readings", pd.concat([history, stream[stream["ts"] < first["ts"].min()]])
            )
            store = _CountingReads(raw)
            cache = ForecastCache(store, detector="zscore", refit_every="30min")
            fitted = cache.warm(first["ts"].min()) if warm else 0
            reads_before, refits_before = store.reads, cache.refits
            scored = cache.score(first)
            results[warm] = (
                scored,
                fitted,
                store.reads - reads_before,
                cache.refits - refits_before,
            )
    (warmed, fitted, reads, refits), (cold, _, cold_reads, cold_refits) = (
        results[True],
        results[False],
    )
    assert fitted == len(sensors)
    assert (reads, refits) == (0, 0)  # the first batch found every forecast made
    assert cold_reads > 0 and cold_refits == len(sensors)
    assert warmed["expected"].notna().all()
    for column in SCORE_FIELDS:
        pd.testing.assert_series_equal(warmed[column], cold[column])
