"""The ingestion service on both stores: write, score, alert, dead-letter, notify."""

from __future__ import annotations

import queue
import threading
import time

import numpy as np
import pandas as pd
import pytest

from iotlab.history.provisioning import provision
from iotlab.ingest import read_dead_letters
from iotlab.ingest.batch import PendingBatch
from iotlab.ingest.scoring import ForecastCache

from .conftest import START, spiked


def _batches(readings: pd.DataFrame, width: str = "30min") -> list[pd.DataFrame]:
    slot = (readings["ts"] - START) // pd.Timedelta(width)
    return [group for _, group in readings.groupby(slot, sort=True)]


def test_spike_is_stored_as_anomalies_and_alerted_once(platform, clean_fleet) -> None:
    platform.provision(clean_fleet)
    sim = clean_fleet.simulate(START, days=4 / 24, freq="1min")
    readings, key, spike_times = spiked(sim.readings, clean_fleet, START + pd.Timedelta("3h"))
    alerts = []
    cache = ForecastCache(platform.store, refit_every="30min")
    with platform.ingestion_service(
        scoring=cache, max_delay=0.05, connectivity_every=None
    ) as service:
        service.add_alert_handler(alerts.append)
        for batch in _batches(readings):
            service.submit(batch)
            service.flush()
    assert service.error is None
    assert service.stats.readings_written == len(readings)
    mine = [a for a in alerts if (a.device_id, a.sensor_id) == key]
    times = [a.ts for a in mine]
    assert spike_times[0] in times  # the spike raised an alert ...
    assert not set(spike_times[1:]) & set(times)  # ... once for the ongoing event
    assert all(a.value > a.upper for a in mine if a.ts == spike_times[0])
    stored = platform.store.read_rows(
        "anomalies", {"device_id": key[0]}, start=START, end=START + pd.Timedelta("1D")
    )
    stored = stored[stored["sensor_id"] == key[1]]
    assert set(spike_times) <= set(stored["ts"])
    assert (stored["status"] == "open").all()
    by_day = platform.store.read_rows(
        "anomalies_by_day", {}, start=START, end=START + pd.Timedelta("1D")
    )
    assert len(by_day) == service.stats.anomalies
    # roll-ups were refreshed: the hour holding the spikes sums the spiked values
    hour = platform.rollups(key[0], sensors=key[1], start=START, end=START + pd.Timedelta("4h"))
    assert hour["count"].sum() == len(
        readings[(readings["device_id"] == key[0]) & (readings["sensor_id"] == key[1])]
    )


def test_refused_rows_go_to_dead_letters_and_valid_ones_are_stored(platform, clean_fleet) -> None:
    platform.provision(clean_fleet)
    good = clean_fleet.simulate(START, days=1 / 24, freq="5min").readings
    bad = good.head(3).copy()
    bad["device_id"] = ["ghost", bad["device_id"].iloc[1], bad["device_id"].iloc[2]]
    bad["value"] = [1.0, np.nan, 2.0]
    bad["ts"] = bad["ts"] + pd.Timedelta("1s")
    bad.loc[bad.index[2], "sensor_id"] = "nope_01"
    with platform.ingestion_service(scoring=None, connectivity_every=None) as service:
        service.submit(pd.concat([good, bad], ignore_index=True))
        service.flush()
    assert service.stats.readings_written == len(good)
    letters = read_dead_letters(
        platform.store,
        START - pd.Timedelta("1D"),
        pd.Timestamp.now(tz="UTC") + pd.Timedelta("1min"),
    )
    assert sorted(letters["reason"]) == sorted(
        ["sensor not provisioned", "value is missing or NaN", "sensor not provisioned"]
    )
    assert (letters["source"] == "dataframe").all()
    assert letters["payload"].str.contains("ghost").sum() == 1


def test_sensor_provisioned_while_the_service_runs_is_accepted(platform, clean_fleet) -> None:
    # The service keeps a copy of the provisioned sensors; a reading of a sensor it has
    # not seen makes it look again before refusing, so new devices are never refused.
    platform.provision(clean_fleet)
    first = clean_fleet.simulate(START, days=1 / 24, freq="5min").readings
    with platform.ingestion_service(scoring=None, connectivity_every=None) as service:
        service.submit(first)
        service.flush()
        device_id = platform.provision_device("environmental", location="lab", sensors=["temp_01"])
        late = pd.DataFrame(
            {
                "device_id": [device_id, device_id, "ghost"],
                "sensor_id": ["temp_01", "temp_01", "temp_01"],
                "ts": START + pd.to_timedelta([1, 2, 3], unit="min"),
                "value": [20.0, 21.0, 22.0],
            }
        )
        service.submit(late)
        service.flush()
    assert service.stats.readings_written == len(first) + 2
    assert service.stats.dead_letters == 1
    assert platform.readings(device_id)["value"].tolist() == [20.0, 21.0]


def test_subscriber_on_service_thread_feeds_another_thread(platform, clean_fleet) -> None:
    platform.provision(clean_fleet)
    sim = clean_fleet.simulate(START, days=1 / 24, freq="1min")
    device = clean_fleet.devices["device_id"].iloc[1]
    inbox: queue.Queue = queue.Queue()  # what a live notebook would read from
    threads: list[str] = []

    def on_readings(note) -> None:
        threads.append(threading.current_thread().name)
        inbox.put(note)

    def broken(note) -> None:
        raise RuntimeError("a broken notebook cell")

    with platform.ingestion_service(
        scoring=None, max_delay=0.05, connectivity_every=None
    ) as service:
        service.subscribe(broken)
        cancel = service.subscribe(on_readings, devices=device, kinds=("readings",))
        service.submit(sim.readings)
        note = inbox.get(timeout=10)
        cancel()
        service.submit(sim.readings.assign(value=sim.readings["value"] + 1))
        service.flush()
    assert service.error is None
    assert inbox.empty()  # cancelled before the second batch
    assert threads == ["iotlab-ingest"]
    assert note.kind == "readings" and note.device_id == device
    assert set(note.data["device_id"]) == {device}
    assert len(note.data) == (sim.readings["device_id"] == device).sum()
    assert service.stats.batches == 2


def test_a_closing_batch_takes_what_waited_and_dates_from_its_first_arrival(
    platform, clean_fleet
) -> None:
    frames = _batches(clean_fleet.simulate(START, days=1 / 24, freq="1min").readings, "10min")
    service = platform.ingestion_service(batch_size=3 * len(frames[0]), max_delay=60)
    # not started: this test plays the service thread's part
    before = time.monotonic()
    for frame in frames[:4]:
        service.submit(frame)
        time.sleep(0.01)
    batch = PendingBatch()
    service._add(batch, service._inbox.get_nowait())
    assert service._take_waiting(batch) is None
    assert batch.size == 3 * len(frames[0])  # up to batch_size; the fourth frame waits
    assert before <= batch.opened < before + 0.01  # the first frame's arrival, not now
    assert service._inbox.qsize() == 1


def test_flush_queued_behind_waiting_rows_while_a_batch_is_processed(
    platform, clean_fleet
) -> None:
    platform.provision(clean_fleet)
    frames = _batches(clean_fleet.simulate(START, days=1 / 24, freq="1min").readings, "20min")
    busy, release = threading.Event(), threading.Event()
    notes: list[pd.DataFrame] = []

    def slow_subscriber(note) -> None:  # holds the service thread on the first batch
        notes.append(note.data)
        busy.set()
        release.wait(30)

    with platform.ingestion_service(
        scoring=None, max_delay=0.05, connectivity_every=None
    ) as service:
        service.subscribe(slow_subscriber, kinds=("readings",))
        service.submit(frames[0])
        assert busy.wait(30)
        service.submit(frames[1])
        service.submit(frames[2])
        flusher = threading.Thread(target=service.flush)
        flusher.start()  # its flush waits behind frames 1 and 2
        time.sleep(0.2)  # longer than max_delay: frame 1's batch is due when the thread is back
        release.set()
        flusher.join(30)
        assert not flusher.is_alive()
    assert service.error is None
    assert [len(n) for n in notes] == [len(frames[0]), len(frames[1]) + len(frames[2])]
    stored = sum(len(platform.readings(d)) for d in clean_fleet.devices["device_id"])
    assert stored == service.stats.readings_written == sum(len(f) for f in frames)


def test_offline_device_is_announced(platform, clean_fleet) -> None:
    # history is never rewritten, so the heartbeats must come after the provisioning, and
    # the service judges connectivity no later than the wall clock: all of it in the past
    start = pd.Timestamp.now(tz="UTC").floor("min") - pd.Timedelta("3h")
    ids = provision(platform.repository, clean_fleet, at=start - pd.Timedelta("1h"))
    sim = clean_fleet.simulate(start, days=2 / 24, freq="5min")
    beats = sim.device_metrics
    silent = ids[0]
    late = beats[(beats["device_id"] != silent) & (beats["ts"] >= start + pd.Timedelta("1h"))]
    early = beats[beats["ts"] < start + pd.Timedelta("1h")]
    notes: queue.Queue = queue.Queue()
    with platform.ingestion_service(
        scoring=None, heartbeat_timeout="20min", connectivity_every=3600
    ) as service:
        service.subscribe(notes.put, kinds=("connectivity",))
        service.submit_metrics(early)
        service.flush()
        service.submit_metrics(late)
        service.flush()
    events = [notes.get_nowait() for _ in range(notes.qsize())]
    assert [(e.device_id, e.data["event_type"]) for e in events] == [(silent, "DeviceWentOffline")]


@pytest.mark.parametrize("size", [0, -1])
def test_bad_settings_are_refused(platform, size) -> None:
    with pytest.raises(ValueError, match="batch_size: must be >= 1"):
        platform.ingestion_service(batch_size=size)
