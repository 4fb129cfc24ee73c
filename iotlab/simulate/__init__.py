"""A seeded, vectorised IoT fleet simulator with ground-truth fault labels.

Examples
--------
>>> from iotlab.simulate import Fleet, FaultConfig
>>> fleet = Fleet(n_devices=5, seed=7)
>>> sim = fleet.simulate(start="2026-01-05", days=1, freq="5min")
>>> sorted(sim.readings["status"].unique()) in (["ok"], ["maintenance", "ok"])
True
>>> clean = Fleet(5, seed=7, faults=FaultConfig.none()).simulate("2026-01-05", days=1)
>>> len(clean.labels)
0
"""

from iotlab.simulate.catalogue import (
    DEFAULT_DEVICE_TYPES,
    FACTORS,
    SENSOR_PREFIXES,
    DeviceType,
    SignalModel,
)
from iotlab.simulate.faults import DEFAULT_RATES, FAULT_KINDS, FaultConfig
from iotlab.simulate.fleet import Fleet
from iotlab.simulate.simulation import Simulation

__all__ = [
    "DEFAULT_DEVICE_TYPES",
    "DEFAULT_RATES",
    "FACTORS",
    "FAULT_KINDS",
    "SENSOR_PREFIXES",
    "DeviceType",
    "FaultConfig",
    "Fleet",
    "SignalModel",
    "Simulation",
]
