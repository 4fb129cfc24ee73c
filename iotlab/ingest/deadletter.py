"""Dead letters: messages and rows the service refused, kept with the reason and raw payload.

They live in the ``dead_letters`` table (partitioned by day of ``received_at``). The
``id`` of a dead letter is a hash of its source, topic and payload (and, for an element
of a message that carries several readings, its position, which its reason starts with:
``[3].value: ...``), so an MQTT message redelivered after a crash is stored under the
same id; :func:`read_dead_letters` keeps one row per id and day (two byte-identical bad
messages on one day count once).

Examples
--------
>>> import pandas as pd
>>> from iotlab.store import open_store
>>> store = open_store("sqlite://"); store.create_schema()
>>> at = pd.Timestamp("2026-01-01 12:00", tz="UTC")
>>> rows = dead_letter_rows(["mqtt"], ["iotlab/d1/t"], ["{oops"], ["payload: not JSON"], at)
>>> write_dead_letters(store, rows)
1
>>> read_dead_letters(store, "2026-01-01", "2026-01-02")[["topic", "payload", "reason"]]
         topic payload             reason
0  iotlab/d1/t   {oops  payload: not JSON
>>> store.close()
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import pandas as pd

from iotlab._time import TimeLike, utc_timestamp
from iotlab.store.base import Store

__all__ = ["DEAD_LETTER_COLUMNS", "dead_letter_rows", "read_dead_letters", "write_dead_letters"]

DEAD_LETTER_COLUMNS = ("received_at", "id", "source", "topic", "payload", "reason")


def _letter_id(source: str, topic: str, payload: str, reason: str) -> str:
    # Not the whole reason: some name the time they were judged at, and a redelivery
    # must keep its id. Only the element's position, so that two bad elements of one
    # message are two letters.
    element = reason[: reason.find("]") + 1] if reason.startswith("[") else ""
    key = f"{source}\0{topic}\0{payload}" + (f"\0{element}" if element else "")
    return hashlib.blake2b(key.encode(), digest_size=12).hexdigest()


def dead_letter_rows(
    sources: Sequence[str],
    topics: Sequence[str],
    payloads: Sequence[str],
    reasons: Sequence[str],
    received_at: pd.Timestamp,
) -> pd.DataFrame:
    """A frame for the ``dead_letters`` table (the store derives ``day``)."""
    ids = [_letter_id(*letter) for letter in zip(sources, topics, payloads, reasons)]
    return pd.DataFrame(
        {
            "received_at": pd.Series([received_at] * len(ids), dtype="datetime64[ms, UTC]"),
            "id": pd.Series(ids, dtype=object),
            "source": pd.Series(list(sources), dtype=object),
            "topic": pd.Series(list(topics), dtype=object),
            "payload": pd.Series(list(payloads), dtype=object),
            "reason": pd.Series(list(reasons), dtype=object),
        }
    )


def write_dead_letters(store: Store, rows: pd.DataFrame) -> int:
    """Write dead letters (columns :data:`DEAD_LETTER_COLUMNS`); return how many."""
    if rows.empty:
        return 0
    return store.write_rows("dead_letters", rows[list(DEAD_LETTER_COLUMNS)])


def read_dead_letters(store: Store, start: TimeLike, end: TimeLike) -> pd.DataFrame:
    """Dead letters received in ``[start, end)``, oldest first, one per id and day."""
    start_ts = utc_timestamp(start, field="start")
    end_ts = utc_timestamp(end, field="end")
    rows = store.read_rows("dead_letters", {}, start=start_ts, end=end_ts)
    day = rows["received_at"].dt.floor("D")
    keep = ~pd.DataFrame({"day": day, "id": rows["id"]}).duplicated()
    rows = rows[keep.to_numpy()].sort_values("received_at", kind="stable")
    return rows[list(DEAD_LETTER_COLUMNS)].reset_index(drop=True)
