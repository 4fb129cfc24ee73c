"""Fault injection against real services: ``iotlab serve`` on a Cassandra node this test
starts on ports of its own (and kills, and starts again) and the test broker.

One run, in order: poison messages and a reading dated a year ahead are published among
valid readings; the MQTT receiver process is killed; the Cassandra node is killed while
readings keep coming, then started again. The service must recover by itself each time,
exit 0 on SIGTERM, and every valid reading must be stored exactly once, roll-ups included.
Slow (two node starts): kept to this single test.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import iotlab
from iotlab.ingest import read_dead_letters
from iotlab.ingest.publisher import Publisher
from iotlab.store.validate import FUTURE_REASON

from .conftest import START, per_key_counts
from .test_mqtt import _children, _count, _gone, _ordered, _wait

pytestmark = pytest.mark.mqtt

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "cassandra"

#: Published among the valid readings: (topic under the root, payload, reason prefix).
POISON = [
    (
        "{d}/{s}",
        b'{"ts": 1e20, "value": 1}',
        "ts: outside the supported range (years 1678-2261), got 1e+20",
    ),
    ("{d}/{s}", b"[" * 100_000, "payload: JSON nested too deeply"),
    (
        "{d}/{s}",
        b'{"ts": "2262-05-01T00:00:00Z", "value": 1}',
        "ts: outside the supported range (years 1678-2261), got '2262",
    ),
    (
        "{d}/{s}",
        b'{"ts": "2026-01-05T00:00:00Z", "value": 1, "pad": "' + b"x" * (3 << 20) + b'"}',
        "payload: 3145",
    ),
    ("{d}", b'{"ts": "2026-01-05T00:00:00Z", "value": 1}', "sensor_id: is missing"),
    ("{d}/{s}/x", b'{"ts": "2026-01-05T00:00:00Z", "value": 1}', "topic: expected"),
    (
        "{d}/{s}",
        b'{"ts": "2026-01-05T00:00:00Z", "value": 1, "status": "\\udc00"}',
        "status: not valid",
    ),
    (
        "d" * 65_000 + "/{s}",
        b'{"ts": "2026-01-05T00:00:00Z", "value": 1}',
        "topic: device_id: longer",
    ),
    (
        "{d}/{s}",
        b'{"ts": "2026-01-05T00:00:00Z", "value": 1, "quality": 100000000000000000000}',
        "quality: outside",
    ),
]


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_ports() -> tuple[int, int]:
    """A CQL port, and a storage port whose JMX port (+199, see scripts/cassandra) is free."""
    rng = np.random.default_rng()
    while True:
        cql, storage = (int(p) for p in rng.integers(20_000, 40_000, 2))
        if abs(cql - storage) > 200 and all(map(_port_free, (cql, storage, storage + 199))):
            return cql, storage


class Node:
    """A Cassandra node of this test's own (scripts/cassandra), to kill and restart."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.port, self.storage_port = _free_ports()
        path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
        self.env = {
            **os.environ,
            "PATH": path,  # its readiness probe uses this python's Cassandra driver
            "CASSANDRA_PORT": str(self.port),
            "CASSANDRA_STORAGE_PORT": str(self.storage_port),
            "CASSANDRA_BASE": str(base),
            "CASSANDRA_HEAP": "1G",
            # `make test` runs its own node with unsafesystem (schema changes not synced to
            # disk); this node is killed with kill -9, so its schema must survive that.
            "CASSANDRA_UNSAFE_SYSTEM": "0",
        }

    def _script(self, command: str, timeout: float) -> None:
        result = subprocess.run(
            [str(SCRIPT), command],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        assert result.returncode == 0, result.stderr[-3000:]

    def start(self) -> None:
        self._script("start", 420)

    def kill(self) -> None:
        """SIGKILL: no drain, no goodbye to clients (a crash, not a shutdown)."""
        pid_file = self.base / "cassandra.pid"
        pid = int(pid_file.read_text())
        os.kill(pid, signal.SIGKILL)
        _wait(lambda: _gone(pid), 30, "the node to die")
        # A zombie still answers kill -0, so scripts/cassandra would think it runs: the
        # pid file goes, as after a crash an operator would clear it.
        pid_file.unlink()

    def stop(self) -> None:
        self._script("stop", 120)


def _serve(mqtt: str, store: str, client_id: str, root: str, log: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "iotlab.ingest", "serve", "--mqtt", mqtt, "--store", store]
    command += ["--client-id", client_id, "--topic-root", root, "--batch-size", "50"]
    command += ["--max-delay", "0.05", "--no-scoring", "--log-every", "1", "--retry-max", "2"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with log.open("w") as stderr:
        return subprocess.Popen(command, stderr=stderr, stdout=subprocess.DEVNULL, env=env)


def test_serve_survives_poison_a_dead_receiver_and_a_cassandra_crash(
    mqtt_contact, cassandra_contact, clean_fleet, tmp_path
) -> None:
    # cassandra_contact: this test runs where the other Cassandra tests run (make test).
    node = Node(tmp_path / "node")
    node.start()
    try:
        _run_faults(node, f"mqtt://{mqtt_contact[0]}:{mqtt_contact[1]}", clean_fleet, tmp_path)
    finally:
        node.stop()


def _run_faults(node: Node, mqtt: str, fleet, tmp_path: Path) -> None:
    tag = uuid.uuid4().hex[:8]
    store = f"cassandra://127.0.0.1:{node.port}/faults_{tag}?replication_factor=1"
    with iotlab.connect(store) as lab:
        _faults_on(lab, node, mqtt, fleet, store, tmp_path, tag)


def _faults_on(lab, node: Node, mqtt: str, fleet, store: str, tmp_path: Path, tag: str) -> None:
    lab.provision(fleet)
    root, log = f"faults-{tag}", tmp_path / "serve.log"
    devices = list(fleet.devices["device_id"])
    sensor = fleet.sensors.iloc[0]
    readings = _ordered(fleet.simulate(START, days=3 / 24, freq="1min").readings)
    ahead = pd.Timestamp.now(tz="UTC") + pd.Timedelta("365D")
    future = f'{{"ts": "{ahead.isoformat()}", "value": 1.0}}'.encode()
    serve = _serve(mqtt, store, f"faults-{tag}", root, log)

    def stored() -> int:
        return len(_count(lab, devices))

    def logged(text: str) -> bool:
        assert serve.poll() is None, log.read_text()[-5000:]
        return text in log.read_text()

    try:
        _scenario(node, mqtt, root, sensor, readings, future, serve, logged, stored)
    except AssertionError as exc:  # say what the service said
        raise AssertionError(f"{exc}\n--- serve log (end) ---\n{log.read_text()[-6000:]}") from exc
    finally:
        serve.send_signal(signal.SIGTERM)
        serve.wait(60)
    _check(lab, serve, log, readings, devices)


def _scenario(node, mqtt, root, sensor, readings, future, serve, logged, stored) -> None:
    parts = np.array_split(np.arange(len(readings)), 4)
    first, second, third, fourth = (readings.iloc[p] for p in parts)
    _wait(lambda: logged("serving"), 120, "serve to start")
    # 1. Poison and a reading dated a year ahead, among valid readings.
    with Publisher(mqtt, topic_root=root) as publisher:
        publisher.publish_readings(first)
        for topic, payload, _ in POISON:
            name = topic.format(d=sensor["device_id"], s=sensor["sensor_id"])
            publisher.publish(f"{root}/{name}", payload)
        publisher.publish(f"{root}/{sensor['device_id']}/{sensor['sensor_id']}", future)
        publisher.publish_readings(second)
    _wait(lambda: stored() == len(first) + len(second), 120, "the first half stored")
    # 2. The receiver process dies: it is replaced, and nothing is lost.
    receivers = _children(serve.pid)
    assert len(receivers) == 1
    os.kill(receivers[0], signal.SIGKILL)
    _wait(lambda: logged("MQTT receiver restarted"), 60, "the receiver restarted")
    # 3. The node crashes while readings arrive, and comes back.
    node.kill()
    with Publisher(mqtt, topic_root=root) as publisher:
        publisher.publish_readings(third)
    _wait(lambda: logged("store unavailable"), 60, "the outage noticed")
    assert serve.poll() is None
    node.start()
    _wait(lambda: logged("store is back"), 180, "the service to resume")
    with Publisher(mqtt, topic_root=root) as publisher:
        publisher.publish_readings(fourth)
    _wait(lambda: stored() == len(readings), 180, "every reading stored")


def _check(lab, serve, log, readings, devices) -> None:
    text = log.read_text()
    assert serve.returncode == 0, text[-5000:]
    assert "NoHostAvailable" not in text.split("store unavailable")[0]  # no raw traceback
    # Every valid reading once, with its value; roll-ups count and sum each once.
    rows = _count(lab, devices)
    assert set(per_key_counts(rows, ["device_id", "sensor_id", "ts"])) == {1}
    both = readings.merge(rows, on=["device_id", "sensor_id", "ts"], suffixes=("", "_stored"))
    assert len(both) == len(readings)
    assert np.allclose(both["value"], both["value_stored"])
    hours = pd.concat(
        [lab.rollups(d, start=START, end=START + pd.Timedelta("1D")) for d in devices]
    )
    assert hours["count"].sum() == len(readings)
    sums = readings.groupby(["device_id", "sensor_id"])["value"].sum()
    rolled = hours.groupby(["device_id", "sensor_id"])["sum"].sum()
    assert np.allclose(sums.sort_index(), rolled.reindex(sums.index))
    # Each poison message and the future reading: one dead letter, with its reason.
    letters = read_dead_letters(
        lab.store, pd.Timestamp.now(tz="UTC") - pd.Timedelta("1h"), pd.Timestamp.now(tz="UTC")
    )
    reasons = letters["reason"].tolist()
    assert len(reasons) == len(POISON) + 1, reasons
    for _, _, reason in POISON:
        expected = sum(other == reason for _, _, other in POISON)  # two wrong-level topics
        assert sum(r.startswith(reason) for r in reasons) == expected, (reason, reasons)
    assert reasons.count(FUTURE_REASON) == 1
    devices_now = lab.store.read_rows("devices")
    assert (devices_now["updated_at"] <= pd.Timestamp.now(tz="UTC")).all()
    assert set(devices_now["status"]) == {"active"}
