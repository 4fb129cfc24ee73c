"""The live scorer's memory of recent readings, so refits need not re-read the store.

A refit needs each due sensor's last few hours of stored readings. Under load the live
service refits the whole fleet every ``refit_every`` of data time, and reading those
hours back from the store cost more than storing the readings in the first place (a 2-hour
window refitted every 30 minutes reads each reading four times). The service stored
those readings itself moments before, so :class:`RecentReadings` keeps them:

- every reading the scorer is given (stored by the service) is added;
- a sensor's history read from the store is added too, and from then on the memory is
  *complete* for that sensor from the start of that read: it holds every stored reading
  from there on, as far as this process knows;
- readings older than the time given to :meth:`RecentReadings.drop_before` are dropped
  (the scorer keeps what its next refits may need), and completeness moves up with them.

A refit whose window starts before a sensor's completeness (a new sensor, a restart, a
sensor that fell behind) reads the store, as before. Readings another process writes
into a window this memory already covers are not seen by later refits of that sensor
(the live service is meant to be the one writer of live readings); see
:meth:`RecentReadings.forget`.

Examples
--------
>>> import pandas as pd
>>> recent = RecentReadings()
>>> recent.add(pd.DataFrame({"device_id": "d1", "sensor_id": "t", "ts": [0, 60_000, 60_000],
...     "value": [1.0, 2.0, 2.5]}))
>>> recent.mark_complete([("d1", "t")], 0)
>>> recent.complete_from(("d1", "t")), recent.complete_from(("d1", "x"))
(0, None)
>>> ts, values = recent.window(("d1", "t"), 0, 120_000)
>>> values.tolist()  # the last copy of a reading wins, as in the store
[1.0, 2.5]
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from iotlab._keys import sensor_pairs

__all__ = ["RecentReadings"]

#: A sensor's added pieces are merged into one once there are this many (bounds memory).
MAX_PIECES = 64

_Piece = tuple[np.ndarray, np.ndarray]  # ts (epoch ms), value


class RecentReadings:
    """Readings per sensor since a moving data time, and from when each sensor's are complete."""

    def __init__(self) -> None:
        self._pieces: dict[tuple[str, str], list[_Piece]] = {}
        self._complete_from: dict[tuple[str, str], int] = {}
        self.kept_from = np.iinfo(np.int64).min  # epoch ms; nothing older is kept

    def drop_before(self, ms: int) -> None:
        """Keep no reading older than ``ms`` from now on (it never moves back)."""
        self.kept_from = max(self.kept_from, ms)

    def add(self, rows: pd.DataFrame) -> None:
        """Keep ``rows`` (``device_id, sensor_id, ts`` epoch ms, ``value``)."""
        if not len(rows):
            return
        pair, devices, sensors = sensor_pairs(rows["device_id"], rows["sensor_id"])
        self.add_coded(
            list(zip(devices.tolist(), sensors.tolist())),
            pair,
            rows["ts"].to_numpy(dtype=np.int64),
            rows["value"].to_numpy(dtype=float),
        )

    def add_coded(
        self, keys: list[tuple[str, str]], pair: np.ndarray, ts: np.ndarray, values: np.ndarray
    ) -> None:
        """Keep readings whose sensor is ``keys[pair[i]]`` (codes a caller already has,
        from :func:`~iotlab._keys.sensor_pairs`), at ``ts`` (epoch ms)."""
        order = np.argsort(pair, kind="stable")
        bounds = np.searchsorted(pair[order], np.arange(len(keys) + 1))
        ts, values = ts[order], values[order]
        for key, lo, hi in zip(keys, bounds[:-1], bounds[1:]):
            pieces = self._pieces.setdefault(key, [])
            pieces.append((ts[lo:hi], values[lo:hi]))
            if len(pieces) >= MAX_PIECES:
                self._merged(key)

    def mark_complete(self, keys: list[tuple[str, str]], from_ms: int) -> None:
        """Everything stored for ``keys`` from ``from_ms`` on has been added."""
        for key in keys:
            known = self._complete_from.get(key)
            self._complete_from[key] = from_ms if known is None else min(known, from_ms)

    def complete_from(self, key: tuple[str, str]) -> int | None:
        """Epoch ms from which every stored reading of ``key`` is here (``None``: unknown)."""
        known = self._complete_from.get(key)
        return None if known is None else max(known, self.kept_from)

    def window(self, key: tuple[str, str], lo: int, hi: int) -> _Piece:
        """``key``'s readings with ``lo <= ts < hi``, in time order, one per time."""
        ts, values = self._merged(key)
        a, b = np.searchsorted(ts, [lo, hi])
        return ts[a:b], values[a:b]

    def _merged(self, key: tuple[str, str]) -> _Piece:
        """Merge ``key``'s pieces into one: time order, last copy wins, old ones dropped."""
        pieces = self._pieces.get(key)
        if not pieces:
            return np.array([], dtype=np.int64), np.array([], dtype=float)
        ts = np.concatenate([p[0] for p in pieces])
        values = np.concatenate([p[1] for p in pieces])
        order = np.argsort(ts, kind="stable")  # stable: a later copy stays later
        ts, values = ts[order], values[order]
        last = np.ones(len(ts), dtype=bool)
        last[:-1] = ts[1:] != ts[:-1]
        ts, values = ts[last], values[last]
        start = np.searchsorted(ts, self.kept_from)
        self._pieces[key] = [(ts[start:], values[start:])]
        return self._pieces[key][0]

    def forget(self) -> None:
        """Drop everything: the next refit of every sensor reads the store again."""
        self._pieces.clear()
        self._complete_from.clear()
