"""The bounds every value must keep to be stored, shared by the MQTT parser and the
batch validator, so a message and a DataFrame row are refused for the same reasons.

- Identifiers (device, sensor, status) must encode as UTF-8 (no lone surrogates) and
  stay within :data:`MAX_ID_BYTES`: Cassandra refuses partition key parts over 64 KiB
  and the drivers raise on text they cannot encode.
- Timestamps must lie in pandas' nanosecond range (years 1678-2261), the range every
  layer above the store computes in.
- ``quality`` is a CQL/SQL ``int``: 32 bits, signed.
- A value's magnitude stays at most :data:`MAX_ABS_VALUE`, so that the roll-up sum of
  a bucket of them (up to 1e8 rows) stays finite.

Examples
--------
>>> text_problem("d1", "device_id") is None
True
>>> text_problem("d\\ud800", "device_id")
'device_id: not valid UTF-8 text (lone surrogate)'
>>> text_problem("x" * 2000, "device_id")
'device_id: longer than 1024 bytes (2000)'
"""

from __future__ import annotations

import pandas as pd

__all__ = [
    "MAX_ABS_VALUE",
    "MAX_ID_BYTES",
    "MAX_MS",
    "MIN_MS",
    "QUALITY_MAX",
    "QUALITY_MIN",
    "text_problem",
]

#: Longest identifier or status text, in UTF-8 bytes.
MAX_ID_BYTES = 1024
#: Epoch milliseconds pandas can hold as nanoseconds (inclusive bounds).
MIN_MS = pd.Timestamp.min.ceil("ms").value // 1_000_000
MAX_MS = pd.Timestamp.max.floor("ms").value // 1_000_000
#: The ``quality`` column's range (a signed 32-bit ``int``).
QUALITY_MIN = -(2**31)
QUALITY_MAX = 2**31 - 1
#: Largest magnitude of a reading's value: 1e8 of them still sum to a finite number.
MAX_ABS_VALUE = 1e300


def text_problem(text: str, name: str) -> str | None:
    """Why ``text`` cannot be stored as identifier ``name``, or ``None`` if it can."""
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError:
        return f"{name}: not valid UTF-8 text (lone surrogate)"
    if size > MAX_ID_BYTES:
        return f"{name}: longer than {MAX_ID_BYTES} bytes ({size})"
    return None
