"""Integer codes for (device_id, sensor_id) pairs, shared by every layer that groups rows
per sensor: hashing two short strings once per row, then working on integers, is far
cheaper than a pandas groupby on the two text columns."""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["sensor_pairs"]


def sensor_pairs(device: object, sensor: object) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Code each row's (device, sensor) pair; pairs are numbered in name order.

    Returns
    -------
    codes, devices, sensors
        The pair code of each row (int64), and the device and sensor of each pair.

    Examples
    --------
    >>> codes, devices, sensors = sensor_pairs(["d2", "d1", "d2"], ["t", "t", "t"])
    >>> codes.tolist(), devices.tolist(), sensors.tolist()
    ([1, 0, 1], ['d1', 'd2'], ['t', 't'])
    """
    dcodes, dnames = pd.factorize(np.asarray(device, dtype=object), sort=True)
    scodes, snames = pd.factorize(np.asarray(sensor, dtype=object), sort=True)
    n_sensors = max(len(snames), 1)
    packed = dcodes.astype(np.int64) * n_sensors + scodes
    unique, codes = np.unique(packed, return_inverse=True)
    devices = np.asarray(dnames, dtype=object)[unique // n_sensors]
    sensors = np.asarray(snames, dtype=object)[unique % n_sensors]
    return codes.reshape(-1).astype(np.int64), devices, sensors
