"""Helpers shared by the store tests: provisioning without history, small reading frames.

They are the ones the contract suite uses (:mod:`iotlab.testing.data`).
"""

from __future__ import annotations

import numpy as np
import pytest

from iotlab.testing.data import make_readings, provision


@pytest.fixture(name="provision")
def provision_fixture():
    """``provision(store, {"dev": ["temp_01", ...]})`` writes the projections."""
    return provision


@pytest.fixture(name="make_readings")
def make_readings_fixture():
    """``make_readings(rng, devices, sensors, start, periods, freq)``."""
    return make_readings


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(42)
