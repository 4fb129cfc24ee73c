"""append_all: which devices are attempted when some appends fail (a stub store)."""

from __future__ import annotations

import threading

import pytest

from iotlab.errors import ConcurrencyError, StoreConnectionError
from iotlab.history.aggregate import Device
from iotlab.history.appends import append_all, failure


class StubStore:
    """Records appends; raises the error planted for a device id."""

    def __init__(self, errors: dict[str, Exception]) -> None:
        self.errors = errors
        self.appended: list[str] = []
        self._lock = threading.Lock()

    def append_events(self, device_id, expected_version, events) -> None:
        assert events["version"].tolist() == [expected_version + 1]
        with self._lock:
            self.appended.append(device_id)
        if device_id in self.errors:
            raise self.errors[device_id]


def fleet(n: int) -> list[Device]:
    return [Device.provision(f"d{i}", "thermostat", "HQ", at="2026-01-01") for i in range(n)]


@pytest.mark.parametrize("workers", [1, 4])
def test_a_conflict_does_not_stop_the_other_appends(workers):
    devices = fleet(8)
    store = StubStore({"d0": ConcurrencyError("d0", 0), "d5": ConcurrencyError("d5", 0)})
    outcomes: dict[int, Exception | None] = {}
    append_all(store, devices, outcomes, workers=workers)
    assert sorted(store.appended) == [f"d{i}" for i in range(8)]
    assert sorted(i for i, e in outcomes.items() if e is not None) == [0, 5]
    error = failure(devices, outcomes)
    assert str(error).startswith("device d0: version 1 was already written")
    assert error.__notes__ == [
        "also failed: d5 (ConcurrencyError)",
        "6 of 8 devices were saved (projections included); reload the failed ones and retry",
    ]


@pytest.mark.parametrize("workers", [1, 4])
def test_a_store_failure_stops_appends_not_yet_started(workers):
    devices = fleet(8)
    store = StubStore({"d0": StoreConnectionError("no host available")})
    outcomes: dict[int, Exception | None] = {}
    append_all(store, devices, outcomes, workers=workers)
    assert store.appended == ["d0"] and list(outcomes) == [0]
    error = failure(devices, outcomes)
    assert isinstance(error, StoreConnectionError)
    assert error.__notes__ == [
        "0 of 8 devices were saved (projections included); 7 not attempted; "
        "reload the failed ones and retry"
    ]
    assert failure(devices, {0: None}) is None
