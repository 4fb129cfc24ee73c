"""A backend added from outside the package: registered by scheme, then held to the contract.

The backend (``memory_backend.MemoryStore``) is registered at run time and, in another
test, found through an installed package's ``iotlab.backends`` entry point.
"""

from __future__ import annotations

import importlib
import uuid

import pytest

import iotlab
from iotlab.errors import ConfigurationError, InvalidIdentifierError, UnknownBackendError
from iotlab.store import known_backends, open_store, parse_store_url, register_backend
from iotlab.store.registry import backend_class, unregister_backend
from iotlab.testing import StoreContract

from .memory_backend import MemoryStore

TARGET = "tests.store.memory_backend:MemoryStore"


@pytest.fixture(scope="module", autouse=True)
def memory_backend():
    register_backend("memory", TARGET)
    yield
    unregister_backend("memory")


class TestMemoryBackend(StoreContract):
    """The whole contract suite on the third backend."""

    @pytest.fixture
    def store_url(self) -> str:
        return f"memory:///t_{uuid.uuid4().hex[:12]}"


def test_registered_scheme_opens_its_backend_everywhere_a_url_is_taken():
    assert known_backends()["memory"] == TARGET
    url = parse_store_url("memory:///fleet")
    assert (url.scheme, url.keyspace, url.is_local_file) == ("memory", "fleet", False)
    assert str(url) == "memory:///fleet"
    with iotlab.connect("memory:///fleet") as lab:
        assert isinstance(lab.store, MemoryStore)
        assert lab.describe()["backend"] == "memory"
    with pytest.raises(InvalidIdentifierError, match="memory store name"):
        parse_store_url("memory:///no spaces")


def test_a_scheme_names_one_backend_unless_replaced_on_purpose():
    register_backend("memory", TARGET)  # the same again: nothing changes
    with pytest.raises(ValueError, match="already served by"):
        register_backend("memory", "iotlab.store.sqlite:SQLiteStore")
    register_backend("memory", "iotlab.store.sqlite:SQLiteStore", clobber=True)
    try:
        assert backend_class("memory").__name__ == "SQLiteStore"
    finally:
        register_backend("memory", TARGET, clobber=True)
    with pytest.raises(ValueError, match="invalid scheme"):
        register_backend("Mem ory", TARGET)
    with pytest.raises(ValueError, match="module:Class"):
        register_backend("mem2", "tests.store.memory_backend.MemoryStore")


def test_a_broken_registration_is_named_when_its_scheme_is_used():
    register_backend("broken", "tests.store.no_such_module:Store")
    register_backend("notastore", "tests.store.memory_backend:check_options")
    try:
        with pytest.raises(ConfigurationError, match="broken:// URLs.*cannot be imported"):
            parse_store_url("broken:///x")
        with pytest.raises(ConfigurationError, match="subclass of iotlab.store.Store"):
            open_store("notastore:///x")
    finally:
        unregister_backend("broken")
        unregister_backend("notastore")
    with pytest.raises(UnknownBackendError, match="unknown store scheme 'broken'"):
        parse_store_url("broken:///x")


def test_an_installed_packages_entry_point_adds_a_backend(tmp_path, monkeypatch):
    """A real (if tiny) installed distribution, found by importlib.metadata on sys.path."""
    info = tmp_path / "iotlab_memtest-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: iotlab-memtest\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[iotlab.backends]\nmemtest = {TARGET}\n")
    with pytest.raises(UnknownBackendError):
        parse_store_url("memtest:///x")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    assert known_backends()["memtest"] == TARGET
    try:
        with open_store(f"memtest:///t_{uuid.uuid4().hex[:12]}") as store:
            assert isinstance(store, MemoryStore) and store.url.scheme == "memtest"
    finally:
        unregister_backend("memtest")
