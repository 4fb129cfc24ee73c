"""One store per backend for the whole history test package (keyspaces are slow to make)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

import iotlab


@pytest.fixture(
    scope="package", params=["sqlite", pytest.param("cassandra", marks=pytest.mark.cassandra)]
)
def lab(request: pytest.FixtureRequest, tmp_path_factory) -> Iterator[iotlab.Platform]:
    """A Platform shared by this package's tests; tests use fresh device ids."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('history') / 'iotlab.db'}"
    else:
        request.applymarker(pytest.mark.cassandra)
        host, port = request.getfixturevalue("cassandra_contact")
        keyspace = f"t_hist_{uuid.uuid4().hex[:12]}"
        request.getfixturevalue("cassandra_keyspaces").append(keyspace)
        url = f"cassandra://{host}:{port}/{keyspace}?replication_factor=1"
    with iotlab.connect(url) as platform:
        yield platform


@pytest.fixture
def new_id() -> str:
    """A device id no other test uses."""
    return f"dev-{uuid.uuid4().hex[:10]}"
