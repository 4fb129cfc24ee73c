"""``iotlab.connect``: URL resolution, context management, and clear errors before any I/O."""

from __future__ import annotations

import pytest

import iotlab
from iotlab.errors import (
    InvalidIdentifierError,
    InvalidURLError,
    StoreConnectionError,
    UnknownBackendError,
)


def test_connect_in_memory_and_repr():
    with iotlab.connect("sqlite://") as lab:
        assert "sqlite" in repr(lab)
        assert lab.describe()["backend"] == "sqlite"


def test_no_url_uses_env_then_embedded_default(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("IOTLAB_STORE", raising=False)
    with iotlab.connect() as lab:
        assert lab.store.url.path == "./.iotlab/iotlab.db"
    assert (tmp_path / ".iotlab" / "iotlab.db").exists()
    monkeypatch.setenv("IOTLAB_STORE", f"sqlite:///{tmp_path / 'env.db'}")
    with iotlab.connect() as lab:
        assert lab.store.url.path == str(tmp_path / "env.db")


@pytest.mark.parametrize(
    ("url", "error", "message"),
    [
        ("not a url", InvalidURLError, "malformed store URL"),
        ("postgres://h/db", UnknownBackendError, "unknown store scheme 'postgres'"),
        ("cassandra://127.0.0.1:9042/x; DROP KEYSPACE y", InvalidIdentifierError, "keyspace"),
        ("cassandra://127.0.0.1:99999/ks", InvalidURLError, "invalid port"),
        ("cassandra://127.0.0.1/ks?consistency=SOMETIMES", InvalidURLError, "consistency"),
        ("cassandra://127.0.0.1/ks?colour=blue", InvalidURLError, "unknown cassandra URL option"),
        ("cassandra://127.0.0.1:9042", InvalidURLError, "needs a keyspace"),
    ],
)
def test_bad_urls_fail_before_any_io(url, error, message):
    with pytest.raises(error, match=message):
        iotlab.connect(url)


def test_unreachable_cassandra_is_a_clear_error():
    with pytest.raises(StoreConnectionError, match="127.0.0.1"):
        iotlab.connect("cassandra://127.0.0.1:1/iot?connect_timeout=2")


def test_both_backends_connect_and_report_their_server(platform, backend):
    facts = platform.describe()
    assert facts["backend"] == backend
    print(f"{backend} server version: {facts['server_version']}")
    if backend == "cassandra":
        assert str(facts["server_version"]).startswith("5.0")


def test_close_is_idempotent(store_url):
    lab = iotlab.connect(store_url)
    lab.close()
    lab.close()
