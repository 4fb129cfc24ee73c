"""Shared fixtures: every backend-facing test runs on SQLite and on a real Cassandra node.

The Cassandra node is named by ``IOTLAB_TEST_CASSANDRA=host:port`` (``make test`` starts one
and sets it). Without it, Cassandra tests are skipped for a quick local run, unless
``IOTLAB_REQUIRE_SERVICES=1`` (set by ``make test`` and CI), where they fail loudly.
The same holds for the MQTT broker and ``IOTLAB_TEST_MQTT``, and for the Kafka broker and
``IOTLAB_TEST_KAFKA``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from hypothesis import settings

import iotlab

BACKENDS = ("sqlite", "cassandra")

# Property tests check properties, not speed: hypothesis's per-example deadline turns a
# busy 2-core machine into failures (timed assertions do not belong in tests).
settings.register_profile("iotlab", deadline=None)
settings.load_profile("iotlab")

# Fixtures shared by several test folders (a tiny simulated fleet loaded per backend).
pytest_plugins = ["tests.fixtures.tiny_fleet"]


def _service(env: str, what: str) -> tuple[str, int]:
    value = os.environ.get(env)
    if not value:
        message = f"{what} not configured: set {env}=host:port (make test does)"
        if os.environ.get("IOTLAB_REQUIRE_SERVICES") == "1":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    host, _, port = value.rpartition(":")
    return host, int(port)


@pytest.fixture(scope="session")
def cassandra_contact() -> tuple[str, int]:
    """(host, port) of the test Cassandra node; fails under make test if missing."""
    return _service("IOTLAB_TEST_CASSANDRA", "Cassandra")


@pytest.fixture(scope="session")
def mqtt_contact() -> tuple[str, int]:
    """(host, port) of the test MQTT broker; fails under make test if missing."""
    return _service("IOTLAB_TEST_MQTT", "MQTT broker")


@pytest.fixture(scope="session")
def kafka_contact() -> tuple[str, int]:
    """(host, port) of the test Kafka broker; fails under make test if missing."""
    return _service("IOTLAB_TEST_KAFKA", "Kafka broker")


@pytest.fixture(scope="session")
def cassandra_keyspaces(cassandra_contact: tuple[str, int]) -> Iterator[list[str]]:
    """Collects keyspaces made by tests and drops them when the session ends (not on a
    node scripts/with-services started: it deletes the node's data next, and dropping
    hundreds of keyspaces one by one took 90 s of make test)."""
    created: list[str] = []
    yield created
    if os.environ.get("IOTLAB_TEST_CASSANDRA_THROWAWAY") == "1":
        return
    from cassandra.cluster import Cluster

    host, port = cassandra_contact
    cluster = Cluster([host], port=port)
    try:
        session = cluster.connect()
        for keyspace in created:
            session.execute(f"DROP KEYSPACE IF EXISTS {keyspace}", timeout=60)
    finally:
        cluster.shutdown()


def make_store_url(backend: str, request: pytest.FixtureRequest, tmp_path) -> str:
    """A fresh, empty store URL for ``backend``."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'iotlab.db'}"
    host, port = request.getfixturevalue("cassandra_contact")
    keyspace = f"t_{uuid.uuid4().hex[:16]}"
    request.getfixturevalue("cassandra_keyspaces").append(keyspace)
    return f"cassandra://{host}:{port}/{keyspace}?replication_factor=1"


@pytest.fixture(
    params=[
        pytest.param(name, marks=pytest.mark.cassandra) if name == "cassandra" else name
        for name in BACKENDS
    ]
)
def backend(request: pytest.FixtureRequest) -> str:
    """Each backend-facing test runs once per backend.

    The Cassandra run carries the ``cassandra`` mark at collection time, so that
    ``-m "not cassandra"`` leaves it out instead of collecting it and skipping it.
    """
    return request.param


@pytest.fixture
def store_url(backend: str, request: pytest.FixtureRequest, tmp_path) -> str:
    """A fresh, empty store on the current backend."""
    return make_store_url(backend, request, tmp_path)


@pytest.fixture
def platform(store_url: str) -> Iterator[iotlab.Platform]:
    """A Platform on a fresh store of the current backend."""
    with iotlab.connect(store_url) as lab:
        yield lab


_SERVICE_FIXTURES = {
    "cassandra": {"cassandra_contact", "cassandra_keyspaces"},
    "mqtt": {"mqtt_contact"},
    "kafka": {"kafka_contact"},
}


@pytest.hookimpl(tryfirst=True)  # before -m deselects by mark
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that uses a service with that service's mark.

    A test uses Cassandra if its fixtures include ``cassandra_contact`` (directly or
    through other fixtures), or if one of its parameters is ``"cassandra"`` (the
    ``backend``-style fixtures open the node only for that value). So ``-m cassandra``
    selects every Cassandra test and ``-m "not cassandra"`` none, whatever mark its
    author remembered; :func:`_service_tests_are_marked` catches any other route.
    """
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        params = getattr(getattr(item, "callspec", None), "params", {})
        for service, fixtures in _SERVICE_FIXTURES.items():
            by_param = any(isinstance(v, str) and v == service for v in params.values())
            if names & fixtures or by_param:
                item.add_marker(getattr(pytest.mark, service))


@pytest.fixture(autouse=True)
def _service_tests_are_marked(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail a test that reached a service (e.g. by ``getfixturevalue``) without its mark."""
    yield
    used = set(request.fixturenames)
    for service, fixtures in _SERVICE_FIXTURES.items():
        if used & fixtures and request.node.get_closest_marker(service) is None:
            pytest.fail(
                f"{request.node.nodeid} uses {service} but is not marked {service!r}: give it "
                f"a {service!r} parameter or request {sorted(fixtures)[0]} directly",
                pytrace=False,
            )


def pytest_report_header(config: pytest.Config) -> list[str]:
    """Show which real services this run talks to, with the Cassandra server's version."""
    lines = []
    contact = os.environ.get("IOTLAB_TEST_CASSANDRA")
    if contact:
        from cassandra.cluster import Cluster

        host, _, port = contact.rpartition(":")
        cluster = Cluster([host], port=int(port), connect_timeout=10)
        try:
            row = cluster.connect().execute("SELECT release_version FROM system.local").one()
            lines.append(f"cassandra: {contact}, release_version {row[0]}")
        except Exception as exc:  # the Cassandra tests will fail with the details
            lines.append(f"cassandra: {contact} NOT REACHABLE ({type(exc).__name__})")
        finally:
            cluster.shutdown()
    else:
        lines.append("cassandra: not configured (IOTLAB_TEST_CASSANDRA unset)")
    lines.append(f"mqtt broker: {os.environ.get('IOTLAB_TEST_MQTT', 'not configured')}")
    lines.append(f"kafka broker: {os.environ.get('IOTLAB_TEST_KAFKA', 'not configured')}")
    return lines
