"""A real 3-node Cassandra cluster for the tests in this folder.

``make test`` (scripts/with-services) starts it with ``scripts/cassandra cluster start 3``
and names it by ``IOTLAB_TEST_CLUSTER=h1,h2,h3:port`` and its folder by
``CASSANDRA_CLUSTER_BASE``, in the background while the rest of the suite runs (these
tests run last and wait for it: ``IOTLAB_TEST_CLUSTER_READY``); the tests kill
(``kill -9``) and restart its nodes through the same script. Without it these tests are
skipped for a quick local run, unless ``IOTLAB_REQUIRE_SERVICES=1``, where they fail. Every
test leaves all nodes running.

The fault tests note what they wrote, lost and doubled; the counts are printed at the
end of the run (``pytest_terminal_summary``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "cassandra"
DC = "datacenter1"  # SimpleSnitch's datacenter
_COUNTS_KEY = pytest.StashKey[list]()


@dataclass
class Cluster:
    """The test cluster: its contact points, and its nodes to kill and start again."""

    hosts: list[str]
    port: int
    base: str
    keyspaces: list[str] = field(default_factory=list)

    def url(self, *, rf: int = 3, dc: str | None = DC, **options: str) -> str:
        """A store URL for a fresh keyspace on every node (dropped after the session)."""
        keyspace = f"c_{uuid.uuid4().hex[:16]}"
        self.keyspaces.append(keyspace)
        query = {"replication_factor": str(rf), **({"dc": dc} if dc else {}), **options}
        text = "&".join(f"{k}={v}" for k, v in query.items())
        return f"cassandra://{','.join(self.hosts)}:{self.port}/{keyspace}?{text}"

    def _script(self, *args: str, timeout: float = 600) -> str:
        env = {
            **os.environ,
            "CASSANDRA_CLUSTER_BASE": self.base,
            # its readiness probe uses this python's Cassandra driver
            "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]),
        }
        result = subprocess.run(
            [str(SCRIPT), "cluster", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        return result.stdout

    def kill(self, node: int) -> None:
        """``kill -9`` node ``node`` (1-based): a crash, no drain."""
        self._script("kill", str(node))

    def start(self) -> None:
        """Start every node that is not running and wait until all see each other."""
        self._script("start")

    def status(self) -> str:
        return self._script("status")

    def address(self, node: int) -> str:
        return self.hosts[node - 1]


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    value = os.environ.get("IOTLAB_TEST_CLUSTER")
    base = os.environ.get("CASSANDRA_CLUSTER_BASE")
    if not value or not base:
        message = (
            "Cassandra cluster not configured: set IOTLAB_TEST_CLUSTER=h1,h2,h3:port and "
            "CASSANDRA_CLUSTER_BASE (scripts/with-services does)"
        )
        if os.environ.get("IOTLAB_REQUIRE_SERVICES") == "1":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    started_for_us = os.environ.get("IOTLAB_TEST_CLUSTER_READY")
    _wait_for_the_start(started_for_us)
    hosts, _, port = value.rpartition(":")
    cluster = Cluster(hosts.split(","), int(port), base)
    yield cluster
    if started_for_us:
        return  # scripts/with-services stops the nodes and deletes their data next
    cluster.start()  # a failed test may have left a node down
    _drop(cluster)


def _wait_for_the_start(ready: str | None, timeout: float = 900) -> None:
    """Wait for a cluster that scripts/with-services starts in the background: it writes
    the start's exit status to ``ready`` (``cluster.log`` beside it says what happened)."""
    if not ready:
        return
    path = Path(ready)
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            pytest.fail(f"the cluster did not start within {timeout:.0f} s", pytrace=False)
        time.sleep(1)
    if path.read_text().strip() != "0":
        log = path.with_name("cluster.log")
        tail = log.read_text()[-3000:] if log.exists() else "(no log)"
        pytest.fail(f"the cluster did not start:\n{tail}", pytrace=False)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The cluster tests run last: scripts/with-services starts the cluster in the
    background, and the rest of the suite runs meanwhile."""
    items.sort(key=lambda item: item.get_closest_marker("cluster") is not None)


def _drop(cluster: Cluster) -> None:
    from cassandra.cluster import Cluster as Driver

    driver = Driver(cluster.hosts, port=cluster.port)
    try:
        session = driver.connect()
        for keyspace in cluster.keyspaces:
            session.execute(f"DROP KEYSPACE IF EXISTS {keyspace}", timeout=120)
    finally:
        driver.shutdown()


@pytest.fixture
def fault_counts(request: pytest.FixtureRequest) -> list:
    """Append ``(case, written, lost, doubled)``: printed at the end of the run."""
    return request.config.stash.setdefault(_COUNTS_KEY, [])


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    counts = config.stash.get(_COUNTS_KEY, [])
    if counts:
        terminalreporter.section("cluster fault tests: readings written / lost / doubled")
        for case, written, lost, doubled in counts:
            terminalreporter.write_line(
                f"{case}: written {written:,}, lost {lost}, doubled {doubled}"
            )


def wait_until(condition, timeout: float, what: str, every: float = 0.5) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)
