"""Against a real Mosquitto broker: exactly-once storage, dead letters, alerts, crash-restart."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pandas as pd
import pytest

import iotlab
from iotlab.ingest import read_dead_letters
from iotlab.ingest.mqtt import MqttSource
from iotlab.ingest.publisher import Publisher
from iotlab.ingest.scoring import ForecastCache
from tests.conftest import make_store_url

from .conftest import START, per_key_counts, spiked, two_worker_fleet

pytestmark = pytest.mark.mqtt

MALFORMED = [  # (topic, payload, reason prefix)
    ("iotlab/{d}/{s}", b"{broken", "payload: not JSON"),
    ("iotlab/{d}/{s}", b'{"value": 1.0}', "ts: is missing"),
    (
        "iotlab/{d}/{s}",
        b'{"ts": "2026-01-05T00:00:00Z", "value": "warm"}',
        "value: must be a number",
    ),
    (
        "iotlab/{d}/{s}",
        b'{"ts": "2026-01-05T00:00:00Z", "value": NaN}',
        "value: must be a finite number",
    ),
    (
        "iotlab/ghost-device/{s}",
        b'{"ts": "2026-01-05T00:00:00Z", "value": 1.0}',
        "sensor not provisioned",
    ),
]


def _wait(condition, timeout: float = 60.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _ordered(readings: pd.DataFrame) -> pd.DataFrame:
    return readings.sort_values(["ts", "device_id", "sensor_id"], ignore_index=True)


def test_mqtt_stores_each_valid_reading_once_and_dead_letters_the_rest(
    mqtt_contact, platform, clean_fleet
) -> None:
    url = f"mqtt://{mqtt_contact[0]}:{mqtt_contact[1]}"
    platform.provision(clean_fleet)
    sim = clean_fleet.simulate(START, days=4 / 24, freq="1min")
    readings, key, spike_times = spiked(sim.readings, clean_fleet, START + pd.Timedelta("3h"))
    beats = sim.device_metrics
    alerts = []
    service = platform.ingestion_service(
        batch_size=300,
        max_delay=0.1,
        scoring=ForecastCache(platform.store, refit_every="30min"),
        connectivity_every=None,
    )
    service.add_alert_handler(alerts.append)
    service.start()
    source = MqttSource(service, url, client_id=f"test-{uuid.uuid4().hex[:8]}").start()
    try:
        with Publisher(url) as publisher:
            publisher.publish_heartbeats(beats)
            # Half the fleet sends a reading per message, half its sensors together.
            by_device = readings["device_id"].isin(clean_fleet.devices["device_id"][::2])
            publisher.publish_readings(_ordered(readings[~by_device]))
            publisher.publish_readings(_ordered(readings[by_device]), per="device")
            for topic, payload, _ in MALFORMED:
                publisher.publish(topic.format(d=key[0], s=key[1]), payload)
        total = len(readings) + len(beats) + len(MALFORMED)
        _wait(lambda: source.received >= total, what="all messages")
        service.flush()
    finally:
        source.pause()
        service.stop()
        source.stop()
    assert service.error is None
    assert service.stats.readings_written == len(readings)
    stored = pd.concat([platform.readings(d) for d in clean_fleet.devices["device_id"]])
    assert len(stored) == len(readings)
    assert set(per_key_counts(stored, ["device_id", "sensor_id", "ts"])) == {1}
    merged = stored.merge(readings, on=["device_id", "sensor_id", "ts"], suffixes=("", "_sent"))
    assert len(merged) == len(readings)
    assert (merged["value"] - merged["value_sent"]).abs().max() < 1e-9
    heartbeats = pd.concat([platform.heartbeats(d) for d in clean_fleet.devices["device_id"]])
    assert len(heartbeats) == len(beats)
    letters = read_dead_letters(
        platform.store,
        pd.Timestamp.now(tz="UTC") - pd.Timedelta("1h"),
        pd.Timestamp.now(tz="UTC") + pd.Timedelta("1min"),
    )
    assert len(letters) == len(MALFORMED)
    for _, payload, reason in MALFORMED:
        row = letters[letters["payload"] == payload.decode()]
        assert len(row) == 1 and row["reason"].iloc[0].startswith(reason), (payload, letters)
    assert (letters["source"] == "mqtt").all()
    mine = [a for a in alerts if (a.device_id, a.sensor_id) == key]
    times = [a.ts for a in mine]
    assert spike_times[0] in times  # the spike raised an alert ...
    assert not set(spike_times[1:]) & set(times)  # ... once for the ongoing event


def _serve(
    url: str, store: str, client_id: str, log: Path, *extra: str, scoring: str = "--no-scoring"
) -> subprocess.Popen:
    """``iotlab serve`` in a process of its own; ``scoring`` is ``--no-scoring`` or a
    ``--detector=...`` (these tests are about storage: never the default, Prophet, which
    fits a model per sensor before it serves)."""
    command = [
        sys.executable,
        "-m",
        "iotlab.ingest",
        "serve",
        "--mqtt",
        url,
        "--store",
        store,
        "--client-id",
        client_id,
        "--batch-size",
        "50",
        "--max-delay",
        "0.05",
        scoring,
        "--log-every",
        "1",
        *extra,
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with log.open("w") as stderr:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(command, stderr=stderr, stdout=subprocess.DEVNULL, env=env)


def _wait_serving(process: subprocess.Popen, log: Path) -> None:
    _wait(lambda: "serving" in log.read_text() or process.poll() is not None, 60, "serve")
    assert process.poll() is None, log.read_text()


def _children(pid: int) -> list[int]:
    """Process ids whose parent is ``pid`` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _gone(pid: int) -> bool:
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def _count(lab: iotlab.Platform, devices) -> pd.DataFrame:
    return pd.concat([lab.readings(d) for d in devices], ignore_index=True)


def test_kill_9_and_restart_loses_and_doubles_nothing(
    mqtt_contact, store_url, clean_fleet, tmp_path
) -> None:
    url = f"mqtt://{mqtt_contact[0]}:{mqtt_contact[1]}"
    lab = iotlab.connect(store_url)  # one connection for all the polling below
    lab.provision(clean_fleet)
    devices = list(clean_fleet.devices["device_id"])
    readings = _ordered(clean_fleet.simulate(START, days=6 / 24, freq="1min").readings)
    half = len(readings) // 2
    client_id = f"test-crash-{uuid.uuid4().hex[:8]}"
    first = _serve(url, store_url, client_id, tmp_path / "first.log")
    try:
        _wait_serving(first, tmp_path / "first.log")
        with Publisher(url) as publisher:
            publisher.publish_readings(readings.iloc[:half])
        _wait(lambda: len(_count(lab, devices)) > 0, what="first rows stored")
        receivers = _children(first.pid)  # the MQTT receiver process
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    assert first.returncode == -signal.SIGKILL
    assert receivers
    # Orphaned, the receiver quits at once: it must not keep the session's messages.
    _wait(lambda: all(_gone(pid) for pid in receivers), 10, "the receiver to exit")
    stored_at_kill = len(_count(lab, devices))
    with Publisher(url) as publisher:  # the broker queues these for the dead session
        publisher.publish_readings(readings.iloc[half:])
    second = _serve(url, store_url, client_id, tmp_path / "second.log")
    try:
        _wait_serving(second, tmp_path / "second.log")
        _wait(lambda: len(_count(lab, devices)) >= len(readings), what="all rows stored")
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(30)
    assert second.returncode == 0, (tmp_path / "second.log").read_text()
    assert "stopped:" in (tmp_path / "second.log").read_text()
    stored = _count(lab, devices)
    assert stored_at_kill < len(readings)
    assert len(stored) == len(readings)
    assert set(per_key_counts(stored, ["device_id", "sensor_id", "ts"])) == {1}
    hours = pd.concat(
        [lab.rollups(d, start=START, end=START + pd.Timedelta("1D")) for d in devices]
    )  # roll-ups count every reading once too
    lab.close()
    assert hours["count"].sum() == len(readings)


def test_serve_rejects_a_bad_broker_url(tmp_path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "iotlab.cli",
            "serve",
            "--mqtt",
            "http://nowhere",
            "--store",
            f"sqlite:///{tmp_path / 'x.db'}",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "MQTT URL must look like mqtt://host:port" in result.stderr


def _stored_by(log: Path) -> int:
    """Readings a worker says it stored, from its last line."""
    return int(re.findall(r"stopped: (\d+) readings", log.read_text())[-1])


def test_two_workers_on_a_shared_subscription_survive_kill_9(
    mqtt_contact, cassandra_contact, request, tmp_path
) -> None:
    """Two ``iotlab serve --group`` workers share ``$share/<group>/<root>/#`` (MQTT 5); one is
    killed (kill -9) mid-stream and started again with its client id: every reading is
    stored once, roll-ups included, and both workers stored some."""
    url = f"mqtt://{mqtt_contact[0]}:{mqtt_contact[1]}"
    store = make_store_url("cassandra", request, tmp_path)
    lab, devices, readings = two_worker_fleet(store, 6)
    tag = uuid.uuid4().hex[:8]
    root, group = f"shared{tag}", f"g{tag}"
    logs = {name: tmp_path / f"{name}.log" for name in ("a", "b", "a2")}
    options = ("--group", group, "--topic-root", root)
    # Scored as in production by the cheap rolling z-score (not about detection; see _serve):
    # any worker may get any sensor's reading, so each scores against what it has seen.
    zscore = "--detector=zscore"
    workers = {
        name: _serve(url, store, f"{name}-{tag}", logs[name], *options, scoring=zscore)
        for name in ("a", "b")
    }
    try:
        for name in ("a", "b"):
            _wait_serving(workers[name], logs[name])
        receivers = _children(workers["a"].pid)
        with Publisher(url, topic_root=root) as publisher:
            publisher.publish_readings(readings.iloc[: len(readings) // 2])
        _wait(lambda: len(_count(lab, devices)) > 0, what="first rows stored")
        workers["a"].send_signal(signal.SIGKILL)
        workers["a"].wait(10)
        _wait(lambda: all(_gone(pid) for pid in receivers), 10, "a's receiver to exit")
        stored_at_kill = len(_count(lab, devices))
        with Publisher(url, topic_root=root) as publisher:  # b takes them while a is down
            publisher.publish_readings(readings.iloc[len(readings) // 2 :])
        workers["a2"] = _serve(url, store, f"a-{tag}", logs["a2"], *options, scoring=zscore)
        _wait_serving(workers["a2"], logs["a2"])
        _wait(lambda: len(_count(lab, devices)) >= len(readings), 60, "every reading stored")
    finally:
        for process in workers.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in workers.values():
            process.wait(30)
    for name in ("b", "a2"):
        assert workers[name].returncode == 0, logs[name].read_text()
    assert "queue depth" in logs["b"].read_text()  # b ran throughout (a2 may be brief)
    stored = _count(lab, devices)
    hours = pd.concat(
        [lab.rollups(d, start=START, end=START + pd.Timedelta("1D")) for d in devices]
    )
    lab.close()
    assert 0 < stored_at_kill < len(readings)
    assert _stored_by(logs["b"]) > 0  # the stream was shared
    assert len(stored) == len(readings)
    assert set(per_key_counts(stored, ["device_id", "sensor_id", "ts"])) == {1}
    assert hours["count"].sum() == len(readings)
    expected = readings.groupby(["device_id", "sensor_id"])["value"].sum()
    got = hours.groupby(["device_id", "sensor_id"])["sum"].sum()
    assert (got.reindex(expected.index) - expected).abs().max() < 1e-6


def test_an_episode_split_over_shared_workers_is_alerted_once(
    mqtt_contact, tmp_path, clean_fleet
) -> None:
    """Two scoring workers on one shared subscription: the broker hands an anomaly
    episode's readings to both, and only the one that got its start alerts (the other
    finds that start in the store)."""
    url = f"mqtt://{mqtt_contact[0]}:{mqtt_contact[1]}"
    tag = uuid.uuid4().hex[:8]
    root, group = f"episode{tag}", f"g{tag}"
    sim = clean_fleet.simulate(START, days=4 / 24, freq="1min")
    live_from = START + pd.Timedelta("3h")
    readings, key, spike_times = spiked(
        sim.readings, clean_fleet, live_from + pd.Timedelta("20min"), n=4
    )
    live = readings[readings["ts"] >= live_from]
    is_spike = (
        (live["device_id"] == key[0])
        & (live["sensor_id"] == key[1])
        & live["ts"].isin(spike_times)
    )
    store = f"sqlite:///{tmp_path / 'lab.db'}"
    with iotlab.connect(store) as lab:
        lab.provision(clean_fleet)
        lab.ingest(readings[readings["ts"] < live_from])
    labs = [iotlab.connect(store) for _ in range(2)]
    alerts: list = []
    services, sources = [], []
    try:
        for i, lab in enumerate(labs):
            service = lab.ingestion_service(
                batch_size=50,
                max_delay=0.05,
                scoring=ForecastCache(lab.store, detector="zscore"),
                connectivity_every=None,
                topic_root=root,
                shared_sensors=True,
            )
            service.add_alert_handler(alerts.append)
            services.append(service.start())
            client = f"w{i}-{tag}"
            sources.append(MqttSource(service, url, client_id=client, share_group=group).start())

        def stored() -> int:
            return sum(s.stats.readings_written for s in services)

        with Publisher(url, topic_root=root) as publisher:
            publisher.publish_readings(_ordered(live[live["ts"] < spike_times[0]]))
            publisher.wait(10)
            _wait(lambda: stored() == (live["ts"] < spike_times[0]).sum(), what="the calm")
            got_spike = []
            for _, row in live[is_spike].iterrows():  # one message each, as minutes pass
                before = [s.stats.readings_written for s in services]
                want = sum(before) + 1
                publisher.publish_readings(row.to_frame().T.astype(live.dtypes.to_dict()))
                _wait(lambda want=want: stored() == want, what="a spike reading")
                after = [s.stats.readings_written for s in services]
                got_spike.append(next(i for i in range(2) if after[i] > before[i]))
            rest = live[~is_spike & (live["ts"] >= spike_times[0])]
            publisher.publish_readings(_ordered(rest))
        _wait(lambda: stored() == len(live), what="every reading")
    finally:
        for source in sources:
            source.pause()
        for service in services:
            service.stop()
        for source in sources:
            source.stop(end_session=True)
    anomalies = labs[0].anomalies(devices=key[0])
    for lab in labs:
        lab.close()
    assert set(got_spike) == {0, 1}  # the episode was split over the workers
    flagged = anomalies[(anomalies["sensor_id"] == key[1]) & anomalies["ts"].isin(spike_times)]
    assert len(flagged) >= 2  # ... and both flagged readings of it
    mine = [a for a in alerts if (a.device_id, a.sensor_id) == key]
    assert [a.ts for a in mine] == [spike_times[0]]
