"""Two writers storing readings of the same sensor-hour at once (workers on an MQTT shared
subscription): the roll-ups must end equal to the stored rows, whatever the interleaving."""

from __future__ import annotations

import pandas as pd
import pytest

import iotlab
from iotlab.store.queries import read_rollups
from iotlab.store.rollups import compute_rollups, refresh_rollups
from iotlab.testing import T0


class _Interleaved:
    """A store whose first roll-up write first lets ``meanwhile()`` run: the other writer
    stores and refreshes between this writer's reads and its (now stale) write."""

    def __init__(self, store, meanwhile) -> None:
        self._store, self._meanwhile = store, meanwhile

    def __getattr__(self, name):
        return getattr(self._store, name)

    def write_tables(self, tables):
        if "rollups_hour" in tables and self._meanwhile is not None:
            meanwhile, self._meanwhile = self._meanwhile, None
            meanwhile()
        return self._store.write_tables(tables)


def _rows(sensor_minutes: range, value: float) -> pd.DataFrame:
    ts = [T0 + pd.Timedelta(minutes=m, seconds=s) for m in sensor_minutes for s in (0, 30)]
    return pd.DataFrame(
        {"device_id": "d", "sensor_id": "s", "ts": ts, "value": value, "quality": 100}
    ).assign(status="ok")


def _race(store, concurrent: bool) -> None:
    """Writer a stores minutes 0-2 and 3 (half), writer b the other half of minute 3 and
    minutes 4-5; b's whole store-and-refresh runs between a's reads and a's write."""
    mine = pd.concat([_rows(range(3), 1.0), _rows(range(3, 4), 2.0).iloc[:1]])
    theirs = pd.concat([_rows(range(3, 4), 2.0).iloc[1:], _rows(range(4, 6), 3.0)])

    def other_writer() -> None:
        store.write_rows("readings", theirs)
        refresh_rollups(store, theirs, native=False, concurrent=concurrent)

    store.write_rows("readings", mine)
    refresh_rollups(_Interleaved(store, other_writer), mine, native=False, concurrent=concurrent)


@pytest.mark.parametrize("concurrent", [True, False])
def test_concurrent_refreshes_converge_on_the_stored_rows(store_url, concurrent) -> None:
    with iotlab.connect(store_url) as lab:
        _race(lab.store, concurrent)
        raw = lab.store.read_rows(
            "readings",
            {"device_id": ["d"], "sensor_id": ["s"]},
            start=T0,
            end=T0 + pd.Timedelta("1h"),
        )
        got = {
            interval: read_rollups(lab.store, "d", sensors="s", interval=alias)
            for interval, alias in (("minute", "1min"), ("hour", "1h"))
        }
    assert len(raw) == 12
    for interval, rollups in got.items():
        want = compute_rollups(raw[["device_id", "sensor_id", "ts", "value"]], interval)
        same = (
            rollups["count"].tolist() == want["count"].tolist()
            and ((rollups["sum"].to_numpy() - want["sum"].to_numpy()) == 0).all()
        )
        # Without concurrent=True the stale write wins: the race is real, and caught.
        assert same == concurrent, (interval, rollups, want)
