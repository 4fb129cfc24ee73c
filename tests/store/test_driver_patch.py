"""The cassandra-driver patch (``iotlab.store._cql_numpy_fix``) is still needed and still right.

These fail when a driver release changes what the patch replaces, so the version pin
in pyproject is widened (or the patch dropped) knowingly, not by accident.
"""

from __future__ import annotations

import inspect
import re
import tomllib
import uuid
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from iotlab.store import open_store
from iotlab.store._cql_numpy_fix import PATCHED, native_byteorder, patch_numpy_parser

numpy_parser = pytest.importorskip("cassandra.numpy_parser")  # compiled; the wheel ships it
ROOT = Path(__file__).resolve().parents[2]
NUMPY_2 = not hasattr(np.ndarray, "newbyteorder")


def _drivers_helper():
    helper = numpy_parser.make_native_byteorder
    return getattr(helper, "__wrapped__", helper)


def _big_endian(dtype: str) -> np.ma.MaskedArray:
    values = np.array([1, -2, 3, 0], dtype=dtype.replace(">", "<"))
    return np.ma.masked_array(values.astype(dtype), mask=[False, False, True, False])


def test_the_driver_version_is_inside_the_pinned_range():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    line = next(d for d in project["dependencies"] if d.startswith("cassandra-driver"))
    low, high = re.fullmatch(r"cassandra-driver>=([\d.]+),<([\d.]+)", line).groups()
    installed = tuple(int(p) for p in version("cassandra-driver").split(".")[:2])
    assert (
        tuple(int(p) for p in low.split(".")) <= installed < tuple(int(p) for p in high.split("."))
    ), f"cassandra-driver {version('cassandra-driver')} is outside {line}"


def test_the_patched_helper_is_still_the_drivers_one_argument_function():
    module, _, name = PATCHED.rpartition(".")
    assert module == numpy_parser.__name__
    assert list(inspect.signature(_drivers_helper()).parameters) == ["arr"]


def test_the_drivers_helper_still_needs_the_patch_on_numpy_2():
    helper = _drivers_helper()
    array = _big_endian(">i8")
    if NUMPY_2:  # the bug the patch works around; a fixed driver makes this fail
        with pytest.raises(AttributeError, match="newbyteorder"):
            helper(array)
    else:  # NumPy 1: the driver's helper works and the patch stays out of the way
        assert helper(array).dtype.isnative
        patch_numpy_parser()
        assert numpy_parser.make_native_byteorder is helper


@pytest.mark.parametrize("dtype", [">i8", ">i4", ">i2", ">f8", ">f4"])
def test_the_replacement_gives_native_arrays_with_values_and_mask(dtype):
    patch_numpy_parser()
    patch_numpy_parser()  # idempotent: one wrapper, around the driver's helper
    installed = numpy_parser.make_native_byteorder
    if NUMPY_2:
        assert installed.__wrapped__ is _drivers_helper()
        assert not hasattr(installed.__wrapped__, "__wrapped__")
    array = _big_endian(dtype)
    out = installed(array)
    assert out.dtype.isnative and out.dtype.kind == array.dtype.kind
    assert out.dtype.itemsize == array.dtype.itemsize
    assert out.tolist() == array.tolist() == [1, -2, None, 0]
    objects = np.array(["a", None], dtype=object)
    assert native_byteorder(objects) is objects


@pytest.mark.cassandra
def test_bulk_reads_decode_numbers_through_the_patched_parser(
    cassandra_contact, cassandra_keyspaces
):
    host, port = cassandra_contact
    keyspace = f"tp_{uuid.uuid4().hex[:16]}"
    cassandra_keyspaces.append(keyspace)
    ts = pd.date_range("2026-01-01", periods=500, freq="1s", tz="UTC")
    rows = pd.DataFrame(
        {
            "device_id": "d",
            "sensor_id": "s",
            "ts": ts.astype("datetime64[ms, UTC]"),
            "value": np.linspace(-1e6, 1e6, 500),
            "quality": np.arange(500) % 101,
            "status": "ok",
        }
    )
    with open_store(f"cassandra://{host}:{port}/{keyspace}?replication_factor=1") as store:
        assert store.connection.bulk is not None  # the NumPy handler is in use
        store.write_rows("readings", rows)
        got = store.read_rows(
            "readings", {"device_id": "d", "sensor_id": "s"}, start=ts[0], end=ts[-1]
        )
    assert len(got) == 499
    np.testing.assert_array_equal(got["value"], rows["value"].iloc[:499])
    np.testing.assert_array_equal(got["quality"], rows["quality"].iloc[:499])
