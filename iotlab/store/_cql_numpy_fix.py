"""The one patch iotlab applies to cassandra-driver, kept alone so it is easy to drop.

cassandra-driver's NumPy result parser (``NumpyProtocolHandler``, what the bulk session
uses to decode pages into arrays without per-row objects) calls
``cassandra.numpy_parser.make_native_byteorder`` on every numeric column, and that calls
``ndarray.newbyteorder()``, removed in NumPy 2.0: the Cython parser then fails silently
and every numeric page comes back empty. The driver offers no supported hook for this
(``cython_protocol_handler`` takes a column parser, and ``NumpyParser`` is a compiled
class whose ``parse_rows`` calls the helper by its module-global name). So the helper
is replaced in that module's globals by an equivalent that works on NumPy 1 and 2.

Bounds: pyproject pins ``cassandra-driver`` to the releases this was checked on
(3.29 and 3.30, whose helper is the same). ``tests/store/test_driver_patch.py`` fails
when a driver release changes the helper (its name, its one argument, or the bug it
fixes), which is the moment to widen the pin or drop this module.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["native_byteorder", "patch_numpy_parser"]

#: The driver attribute replaced; tests check it still exists and still needs replacing.
PATCHED = "cassandra.numpy_parser.make_native_byteorder"


def native_byteorder(arr: np.ndarray) -> np.ndarray:
    """``arr`` in native byte order, values and any mask kept (object arrays as they are).

    Examples
    --------
    >>> big = np.ma.masked_array(np.array([1, 2], dtype=">i8"), mask=[False, True])
    >>> out = native_byteorder(big)
    >>> out.dtype.isnative, out.data[0], bool(out.mask[1])
    (True, np.int64(1), True)
    """
    if arr.dtype.kind == "O" or arr.dtype.isnative:
        return arr
    return arr.astype(arr.dtype.newbyteorder("="))  # keeps a masked array's mask


def patch_numpy_parser() -> None:
    """Install :func:`native_byteorder` in the driver where NumPy 2 needs it. Idempotent.

    The driver's own helper stays reachable as the replacement's ``__wrapped__``.
    """
    if hasattr(np.ndarray, "newbyteorder"):  # NumPy 1: the driver's helper works
        return
    import cassandra.numpy_parser as numpy_parser

    current = numpy_parser.make_native_byteorder
    if getattr(current, "__wrapped__", None) is not None:
        return

    def make_native_byteorder(arr: np.ndarray) -> np.ndarray:
        return native_byteorder(arr)

    replacement: Any = make_native_byteorder
    replacement.__wrapped__ = current
    numpy_parser.make_native_byteorder = replacement
