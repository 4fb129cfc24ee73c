"""The live scorer uses the Prophet detector of ``score_online``: same scores, however the
stream is batched; rows name the model that scored them; the fallback is said once."""

from __future__ import annotations

import logging
import time
import uuid

import numpy as np
import pandas as pd
import pytest

from iotlab.detect import ProphetResidualDetector
from iotlab.errors import ValidationError
from iotlab.ingest.mqtt import MqttSource
from iotlab.ingest.publisher import Publisher
from iotlab.ingest.scoring import SCORE_FIELDS, ForecastCache
from iotlab.store import open_store

from .conftest import START, spiked

#: Live and offline scores are computed by the same code on the same inputs; what
#: differs is only the order of a few floating-point sums (context + batch).
TOLERANCE = {"rtol": 1e-9, "atol": 1e-9}
FIRST = pd.Timestamp("2026-01-05 07:13", tz="UTC")  # refits at 07:13 two days on, then 00:00


def _sensor(device_id: str, start: pd.Timestamp, days: float, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ts = pd.date_range(start, periods=int(days * 144), freq="10min", tz="UTC", unit="ms")
    hours = ts.hour.to_numpy() + ts.minute.to_numpy() / 60
    values = 20 + 3 * np.sin(2 * np.pi * hours / 24) + rng.normal(0, 0.3, len(ts))
    return pd.DataFrame(
        {
            "device_id": device_id,
            "sensor_id": "temp",
            "ts": ts,
            "value": values,
            "quality": 100,
            "status": "ok",
        }
    )


@pytest.fixture(scope="module")
def stream() -> pd.DataFrame:
    """Two sensors: one with 4.6 days (Prophet from day 2 on, two spikes, a dip and a
    stuck run across batch cuts), one that starts on day 3.5 and so never has 2 days of
    history (the z-score)."""
    long = _sensor("d1", FIRST, 4.6, seed=3)
    long.loc[400, "value"] += 6
    long.loc[520:523, "value"] -= 5
    long.loc[590:611, "value"] = long.loc[589, "value"]  # stuck: 3.5 hours of one value
    short = _sensor("d2", FIRST + pd.Timedelta("3.5D"), 1.1, seed=4)
    short.loc[100, "value"] += 8
    return pd.concat([long, short]).sort_values("ts", kind="stable", ignore_index=True)


@pytest.fixture(scope="module")
def offline(stream) -> pd.DataFrame:
    """score_online of the long sensor (the short one is too short for Prophet)."""
    return ProphetResidualDetector().score_online(stream.loc[stream["device_id"] == "d1"])


def _live(stream: pd.DataFrame, cuts: list[int]) -> pd.DataFrame:
    """Score ``stream`` in batches ending at ``cuts``, storing each after scoring (as
    the service does), with a fresh cache on a fresh store."""
    with open_store("sqlite://") as store:
        store.create_schema()
        cache = ForecastCache(store, max_refits=10)
        assert cache.name == "prophet"
        scored = []
        for lo, hi in zip([0, *cuts], [*cuts, len(stream)]):
            batch = stream.iloc[lo:hi]
            scored.append(cache.score(batch))
            store.write_rows("readings", batch)
    return pd.concat(scored, ignore_index=True)


def _one_at_a_time_around_the_spike(stream: pd.DataFrame) -> list[int]:
    """Ragged batches, then single readings across a refit point and the first spike."""
    near = np.flatnonzero(
        (stream["ts"] >= FIRST + pd.Timedelta("2D 16h"))
        & (stream["ts"] < FIRST + pd.Timedelta("2D 18h"))
    )
    return sorted({37, 250, *range(int(near[0]), int(near[-1])), 700, len(stream) - 5})


@pytest.mark.parametrize("batching", ["one batch", "ragged", "single readings"])
def test_live_scores_equal_score_online_however_the_stream_is_batched(
    stream, offline, batching, caplog
):
    cuts = {
        "one batch": [],
        "ragged": [1, 2, 150, 151, 463, 600, 601, 777],
        "single readings": _one_at_a_time_around_the_spike(stream),
    }[batching]
    with caplog.at_level(logging.INFO, logger="iotlab.ingest.scoring"):
        live = _live(stream, cuts)
    assert set(SCORE_FIELDS) <= set(live.columns)
    got = live[live["device_id"] == "d1"].sort_values("ts", ignore_index=True)
    want = offline
    judged = want["score"].notna().to_numpy()
    assert 300 < judged.sum() < len(got)
    # Prophet scores exactly the readings score_online scores; the others (the first 2
    # days of the sensor) are the z-score's, and say so.
    assert got["detector"].tolist() == np.where(judged, "prophet", "rolling_zscore").tolist()
    for column in ("expected", "lower", "upper", "score", "confidence"):
        np.testing.assert_allclose(
            got[column].to_numpy()[judged], want[column].to_numpy()[judged], **TOLERANCE
        )
    assert got["is_anomaly"].to_numpy()[judged].tolist() == (
        want["is_anomaly"].to_numpy()[judged].tolist()
    )
    pd.testing.assert_series_equal(
        got["severity"][judged].reset_index(drop=True),
        want["severity"][judged].reset_index(drop=True),
    )
    short = live[live["device_id"] == "d2"]
    assert set(short["detector"]) == {"rolling_zscore"}  # never 2 days of history
    assert live["score"].notna().mean() > 0.8  # the z-score scored most of the rest
    flagged = live[live["is_anomaly"]]
    d1 = stream[stream["device_id"] == "d1"].reset_index(drop=True)
    spike_times = {d1.loc[400, "ts"], d1.loc[520, "ts"]}
    assert spike_times <= set(flagged.loc[flagged["detector"] == "prophet", "ts"])
    # The stuck run (across the batch cuts at 600 and 601) raises its alert a few
    # readings in, and only then.
    stuck = got["ts"].between(d1.loc[590, "ts"], d1.loc[611, "ts"]).to_numpy()
    assert 2 <= got.loc[stuck, "is_anomaly"].sum() <= 8
    assert (flagged["detector"] == "rolling_zscore").any()  # d2's spike, by the fallback
    # Why a sensor is on the z-score is said once per sensor, however many batches.
    said = [r.getMessage() for r in caplog.records if "min_history" in r.getMessage()]
    assert sorted(message.split("/")[0] for message in said) == ["d1", "d2"]


def test_a_cache_started_on_stored_history_scores_with_prophet_from_its_first_batch(stream):
    long = stream[stream["device_id"] == "d1"].reset_index(drop=True)
    stored, live = long.iloc[:500], long.iloc[500:]
    with open_store("sqlite://") as store:
        store.create_schema()
        store.write_rows("readings", stored)
        cache = ForecastCache(store, detector="prophet")
        scored = cache.score(live)
    assert cache.refits >= 2  # the segment it started in, and the next day's
    assert (scored["detector"] == "prophet").all()
    assert scored["score"].notna().all()
    assert scored.loc[scored["ts"].isin(long.loc[520:523, "ts"]), "is_anomaly"].any()


def test_zscore_detector_and_unknown_names(stream):
    with open_store("sqlite://") as store:
        store.create_schema()
        scored = ForecastCache(store, detector="zscore").score(stream.iloc[:300])
        assert set(scored["detector"]) == {"rolling_zscore"}
        with pytest.raises(ValidationError, match="detector.*prophet, zscore"):
            ForecastCache(store, detector="arima")


@pytest.mark.mqtt
def test_serve_scores_with_prophet_by_default_and_names_the_fallback(
    mqtt_contact, platform, clean_fleet, caplog
) -> None:
    """Over a real broker, on both backends: sensors with 2.5 days stored are scored by
    Prophet, a sensor with none by the z-score; the anomaly rows and alerts say which."""
    url = f"mqtt://{mqtt_contact[0]}:{mqtt_contact[1]}"
    platform.provision(clean_fleet)
    sim = clean_fleet.simulate(START, days=3, freq="10min")
    cut = START + pd.Timedelta("2D 12h")
    readings, key, spike_times = spiked(sim.readings, clean_fleet, cut + pd.Timedelta("3h"))
    newcomer = tuple(clean_fleet.sensors.iloc[3][["device_id", "sensor_id"]])
    of_newcomer = (readings["device_id"] == newcomer[0]) & (readings["sensor_id"] == newcomer[1])
    late_spike = readings.index[of_newcomer & (readings["ts"] >= cut + pd.Timedelta("6h"))][0]
    readings.loc[late_spike, "value"] += 20.0  # 40% of its 0-50 range
    platform.ingest(readings[(readings["ts"] < cut) & ~of_newcomer], progress=False)
    live = readings[readings["ts"] >= cut].sort_values(["ts", "device_id", "sensor_id"])
    alerts = []
    service = platform.ingestion_service(batch_size=100, max_delay=0.1, connectivity_every=None)
    assert service.scoring.name == "prophet"  # the default
    service.add_alert_handler(alerts.append)
    with caplog.at_level(logging.INFO, logger="iotlab.ingest.scoring"):
        assert service.warm(cut) == 3  # the newcomer has nothing to fit on yet
        service.start()
        source = MqttSource(service, url, client_id=f"test-{uuid.uuid4().hex[:8]}").start()
        try:
            with Publisher(url) as publisher:
                publisher.publish_readings(live)
            deadline = time.monotonic() + 120
            while service.stats.readings_written < len(live) and time.monotonic() < deadline:
                time.sleep(0.05)
            service.flush()
        finally:
            source.pause()
            service.stop()
            source.stop()
    assert service.error is None
    assert service.stats.readings_written == len(live)
    stored = platform.anomalies(start=cut, end=cut + pd.Timedelta("1D"))
    keys = list(zip(stored["device_id"], stored["sensor_id"]))
    names = {k: set(stored.loc[[x == k for x in keys], "detector"]) for k in set(keys)}
    assert set(spike_times) <= set(stored.loc[[k == key for k in keys], "ts"])
    assert names[key] == {"prophet"}
    assert names[newcomer] == {"rolling_zscore"}
    assert readings.loc[late_spike, "ts"] in set(stored.loc[[k == newcomer for k in keys], "ts"])
    assert {(a.device_id, a.sensor_id): a.detector for a in alerts}[newcomer] == "rolling_zscore"
    assert any(a.detector == "prophet" and a.ts == spike_times[0] for a in alerts)
    said = [r.getMessage() for r in caplog.records if "min_history" in r.getMessage()]
    assert len(said) == 1 and said[0].startswith(f"{newcomer[0]}/{newcomer[1]}:")


def test_the_old_call_forms_still_choose_the_detector_with_a_warning():
    def one_per_sensor(device_id, sensor_id, sensor_range):
        return ProphetResidualDetector(sensor_range=sensor_range)

    with open_store("sqlite://") as store:
        with pytest.warns(DeprecationWarning, match="detector"):
            old_default = ForecastCache(store, None)  # 0.1: None was the rolling z-score
        with pytest.warns(DeprecationWarning, match="detector_factory= is deprecated"):
            factory = ForecastCache(store, detector_factory=one_per_sensor)
    assert old_default.name == "rolling_zscore"
    assert factory.factory is one_per_sensor


def test_a_redelivered_batch_changes_nothing_that_follows(stream):
    """MQTT may deliver a batch twice: the copy is scored like the original and leaves
    the sensor's state (history, flags, errors) as it was."""
    long = stream[stream["device_id"] == "d1"].reset_index(drop=True)
    cuts = [300, 420, 430, 560]

    def run(redeliver: bool) -> tuple[pd.DataFrame, pd.DataFrame | None]:
        with open_store("sqlite://") as store:
            store.create_schema()
            cache = ForecastCache(store, detector="prophet")
            scored, again = [], None
            for lo, hi in zip([0, *cuts], [*cuts, len(long)]):
                batch = long.iloc[lo:hi]
                scored.append(cache.score(batch))
                store.write_rows("readings", batch)
                if redeliver and lo == 420:
                    again = cache.score(batch)
        return pd.concat(scored, ignore_index=True), again

    plain, _ = run(False)
    twice, again = run(True)
    first = plain.iloc[420:430].reset_index(drop=True)
    assert (again["detector"] == "prophet").all()
    for column in ("expected", "score", "confidence"):
        np.testing.assert_allclose(again[column], first[column], **TOLERANCE)
        np.testing.assert_allclose(twice[column], plain[column], **TOLERANCE)
    assert twice["is_anomaly"].tolist() == plain["is_anomaly"].tolist()


def test_many_sensors_batched_together_score_as_score_online(monkeypatch):
    """Sensors whose readings continue their stream are judged together in one pass
    (judge_fresh); each still gets score_online's scores, with its own model."""
    import iotlab.ingest.live_prophet as live_prophet

    together = []
    judge_fresh = live_prophet.judge_fresh

    def counting(engines, spans, *args):
        together.append(len(engines))
        return judge_fresh(engines, spans, *args)

    monkeypatch.setattr(live_prophet, "judge_fresh", counting)
    sensors = []
    for i in range(5):  # different starts: different refit points and histories
        one = _sensor(f"d{i}", FIRST + pd.Timedelta(f"{i * 37}min"), 3.6, seed=20 + i)
        one.loc[330 + 15 * i, "value"] += 6 + i
        if i == 2:  # stuck across several batches, while the others keep moving
            one.loc[400:430, "value"] = one.loc[399, "value"]
        sensors.append(one)
    stream = pd.concat(sensors).sort_values("ts", kind="stable", ignore_index=True)
    live = _live(stream, list(range(50, len(stream), 50)))  # about 100 minutes a batch
    assert max(together) == len(sensors)  # all five judged in one pass at times
    for i, one in enumerate(sensors):
        want = ProphetResidualDetector().score_online(one)
        got = live[live["device_id"] == f"d{i}"].sort_values("ts", ignore_index=True)
        judged = want["score"].notna().to_numpy()
        assert (got["detector"].to_numpy()[judged] == "prophet").all()
        for column in ("expected", "lower", "upper", "score", "confidence"):
            np.testing.assert_allclose(
                got[column].to_numpy()[judged], want[column].to_numpy()[judged], **TOLERANCE
            )
        flags = got["is_anomaly"].to_numpy()[judged]
        assert flags.tolist() == want["is_anomaly"].to_numpy()[judged].tolist()
        assert flags.any()  # the spike
        if i == 2:
            assert (
                flags[got["ts"].between(one.loc[400, "ts"], one.loc[430, "ts"])[judged]].sum() >= 2
            )


def test_tail_p_values_of_many_tables_at_once_equal_each_tables_own():
    from iotlab.detect.calibration import gaussian_log10_p
    from iotlab.detect.online import tail_log10_p
    from iotlab.detect.reference import TailReference

    rng = np.random.default_rng(5)
    tables = (
        TailReference.learn(np.abs(rng.standard_t(2, 3000))),  # heavy tails
        TailReference.learn(np.abs(np.round(rng.normal(0, 2, 400)))),  # quantised
        None,  # too little history: the normal tail
        TailReference.learn(np.abs(rng.normal(0, 1, 5000))),
    )
    codes = rng.integers(-1, len(tables), 20_000)
    abs_z = np.abs(rng.standard_t(1.5, len(codes))) * rng.choice([1.0, 30.0], len(codes))
    abs_z[::50] = np.nan
    own = np.flatnonzero(codes == 1)[:40]
    abs_z[own] = tables[1].sorted_abs_z[:40]  # exactly at past errors
    got = tail_log10_p(codes, tables, abs_z)
    for code, table in [*enumerate(tables), (-1, None)]:
        rows = codes == code
        want = table.log10_p(abs_z[rows]) if table is not None else gaussian_log10_p(abs_z[rows])
        np.testing.assert_array_equal(got[rows], want)  # to the last bit


def test_a_sensor_too_young_for_a_model_is_only_remembered(stream, monkeypatch):
    """Until min_history has passed, a sensor's readings are kept for its first fit and
    scored by the z-score, without a pass through its engine's judge at every batch; the
    scores stay those of the parity test above (which covers the same stream)."""
    from iotlab.detect.online import OnlineProphet

    judged_by: list[int | None] = []  # the judged series' first reading
    kept: list[int] = []
    judge, keep = OnlineProphet.judge, OnlineProphet.keep_unjudged

    def counting_judge(self, t_ns, values, **kwargs):
        judged_by.append(self.first_ns)
        return judge(self, t_ns, values, **kwargs)

    def counting_keep(self, t_ns, values):
        done = keep(self, t_ns, values)
        kept.append(len(t_ns) if done else 0)
        return done

    monkeypatch.setattr(OnlineProphet, "judge", counting_judge)
    monkeypatch.setattr(OnlineProphet, "keep_unjudged", counting_keep)
    live = _live(stream, [1, 2, 150, 151, 463, 600, 601, 777])
    d2 = stream["device_id"] == "d2"
    assert sum(kept) >= d2.sum()  # every reading of the short sensor, and d1's first days
    assert judged_by  # d1, from its first fit on
    assert (FIRST + pd.Timedelta("3.5D")).value not in judged_by  # d2 never needs it
    assert set(live.loc[live["device_id"] == "d2", "detector"]) == {"rolling_zscore"}
