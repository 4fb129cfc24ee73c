"""Device clocks running ahead: future readings are refused, the service's data clock stays
at or behind the wall clock, and connectivity recovers from a future-dated mistake."""

from __future__ import annotations

import pandas as pd
import pytest

from iotlab.history.provisioning import provision
from iotlab.ingest import read_dead_letters
from iotlab.store.validate import FUTURE_REASON


def _wall() -> pd.Timestamp:
    return pd.Timestamp.now(tz="UTC")


def _beats(device_ids, times) -> pd.DataFrame:
    rows = [(d, t) for d in device_ids for t in times]
    return pd.DataFrame(
        {
            "device_id": [d for d, _ in rows],
            "ts": pd.DatetimeIndex([t for _, t in rows]).as_unit("ms"),
            "cpu": 10.0,
        }
    )


def test_a_reading_a_year_ahead_is_refused_and_the_fleet_stays_online(
    platform, clean_fleet
) -> None:
    start = _wall().floor("min") - pd.Timedelta("2h")
    ids = provision(platform.repository, clean_fleet, at=start - pd.Timedelta("1h"))
    sensor = clean_fleet.sensors.iloc[0]
    sim = clean_fleet.simulate(start, days=2 / 24, freq="5min")
    ahead = sim.readings.head(1).copy()
    ahead["ts"] = _wall() + pd.Timedelta("365D")
    ahead["device_id"], ahead["sensor_id"] = sensor["device_id"], sensor["sensor_id"]
    beat_ahead = sim.device_metrics.head(1).copy()
    beat_ahead["ts"] = _wall() + pd.Timedelta("365D")
    with platform.ingestion_service(
        scoring=None, heartbeat_timeout="20min", connectivity_every=3600
    ) as service:
        service.submit(pd.concat([sim.readings, ahead], ignore_index=True))
        service.submit_metrics(pd.concat([sim.device_metrics, beat_ahead], ignore_index=True))
        service.flush()
        assert service._data_now <= _wall()
    assert service.error is None
    assert service.stats.readings_written == len(sim.readings)
    assert service.stats.heartbeats_written == len(sim.device_metrics)
    letters = read_dead_letters(platform.store, start, _wall() + pd.Timedelta("1min"))
    assert letters["reason"].tolist() == [FUTURE_REASON, FUTURE_REASON]
    # No device went offline: the last heartbeats are minutes old, not a year.
    devices = platform.store.read_rows("devices")
    assert set(devices.loc[devices["device_id"].isin(ids), "status"]) == {"active"}
    assert (devices["updated_at"] <= _wall()).all()


def test_max_future_is_configurable(platform, clean_fleet) -> None:
    platform.provision(clean_fleet)
    sensor = clean_fleet.sensors.iloc[0]
    frame = pd.DataFrame(
        {
            "device_id": [sensor["device_id"]] * 2,
            "sensor_id": [sensor["sensor_id"]] * 2,
            "ts": [_wall() + pd.Timedelta("2min"), _wall() + pd.Timedelta("2h")],
            "value": [1.0, 2.0],
        }
    )
    with platform.ingestion_service(scoring=None, connectivity_every=None) as strict:
        strict.submit(frame)
        strict.flush()
    assert strict.stats.readings_written == 1  # 2 minutes ahead: drift, within 5min
    with platform.ingestion_service(
        scoring=None, connectivity_every=None, max_future=None
    ) as lenient:
        lenient.submit(frame)
        lenient.flush()
        assert lenient._data_now <= _wall()  # stored, yet the clock stays at the wall's
    assert lenient.stats.readings_written == 2


def test_devices_wrongly_marked_offline_in_the_future_come_back_online(platform) -> None:
    """The state main left behind: DeviceWentOffline dated a year ahead, for every device."""
    t0 = _wall().floor("min") - pd.Timedelta("3h")
    device_id = platform.provision_device("environmental", location="lab", sensors=["temp_01"])
    mistaken = platform.repository.load(device_id)
    mistaken.mark_offline(t0, at=_wall() + pd.Timedelta("365D"))
    platform.repository.save(mistaken)
    assert platform.repository.load(device_id).status == "offline"
    platform.ingest_metrics(_beats([device_id], [_wall() - pd.Timedelta("1min")]), progress=False)
    events = platform.update_connectivity()
    mine = events[events["device_id"] == device_id]
    assert mine["event_type"].tolist() == ["DeviceCameOnline"]
    assert (mine["occurred_at"] <= _wall()).all()
    assert platform.repository.load(device_id).status == "active"
    # A later pass sees a normal, online device: nothing more to say.
    later = platform.update_connectivity()
    assert later[later["device_id"] == device_id].empty


def test_update_connectivity_never_dates_events_in_the_future(platform) -> None:
    device_id = platform.provision_device("environmental", location="lab", sensors=["temp_01"])
    t0 = _wall() - pd.Timedelta("2h")
    platform.ingest_metrics(_beats([device_id], [t0]), progress=False)
    events = platform.update_connectivity(now=_wall() + pd.Timedelta("365D"))
    for occurred in events["occurred_at"]:
        assert occurred <= _wall()


@pytest.mark.parametrize("ago", ["0s", "1min"])
def test_update_connectivity_right_after_a_status_change_does_not_fail(platform, ago) -> None:
    """A device provisioned within the timeout has no silence to look back over: this was
    ``ValidationError: end ... is before start`` while readings arrived."""
    device_id = platform.provision_device("environmental", location="lab", sensors=["temp_01"])
    events = platform.update_connectivity(now=_wall() - pd.Timedelta(ago), timeout="10min")
    assert events[events["device_id"] == device_id].empty  # judged later, or not yet silent
