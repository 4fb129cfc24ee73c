"""Turn heartbeat gaps into ``DeviceWentOffline`` / ``DeviceCameOnline`` events.

Heartbeats stay time series (``device_metrics``); only the *changes* of connectivity
enter a device's history. An active device with no heartbeat in ``(now - timeout, now]``
goes offline (with the time of its last heartbeat as ``last_seen``); an offline device
with a heartbeat in that window comes online at the time of the first one.

Nothing is judged, or dated, later than the wall clock: ``now`` in the future is taken as
the current time. A device whose last lifecycle event is dated in the future (a clock
error, e.g. one reading from a device whose clock ran a year ahead) is judged again like
any other, and its next event is dated now (see :meth:`Device.mark_online`), so a fleet
wrongly marked offline comes back online with its next heartbeats.
"""

from __future__ import annotations

import pandas as pd

from iotlab._compat import deprecated, legacy_call_forms
from iotlab._time import TimeLike, utc_timestamp
from iotlab.errors import ValidationError
from iotlab.history.aggregate import CLOCK_TOLERANCE, Device
from iotlab.history.repository import DeviceRepository
from iotlab.store.queries import read_heartbeats

__all__ = ["update_connectivity"]

#: How far back to look for a silent device's last heartbeat (the metrics TTL).
LAST_SEEN_LOOKBACK = pd.Timedelta(days=30)
_MS = pd.Timedelta(milliseconds=1)


def _times(heartbeats: pd.DataFrame) -> pd.DatetimeIndex:
    # read_heartbeats gives a ``ts`` column; accept a DatetimeIndex too.
    values = heartbeats["ts"] if "ts" in heartbeats.columns else heartbeats.index
    return pd.DatetimeIndex(values).sort_values()


@legacy_call_forms(positional=("now", "timeout"))
def update_connectivity(
    repository: DeviceRepository,
    *,
    now: TimeLike | None = None,
    timeout: str | pd.Timedelta = "10min",
) -> pd.DataFrame:
    """Record connectivity changes of every active or offline device as of ``now``.

    Parameters
    ----------
    repository
        The device repository to judge and save to; heartbeats come from its store.
    now
        The time to judge at (default, and at the latest: the current time). Devices
        whose last lifecycle event is later than ``now`` (but not in the future) are
        skipped, since history cannot be rewritten.
    timeout
        Longest silence still counted as online.

    Returns
    -------
    pandas.DataFrame
        The events emitted: ``device_id, version, occurred_at, event_type, last_seen``.
    """
    wall = pd.Timestamp.now(tz="UTC").floor("ms")
    now = wall if now is None else min(utc_timestamp(now, field="now").floor("ms"), wall)
    try:
        timeout = pd.Timedelta(timeout)
    except ValueError as exc:
        raise ValidationError(f"cannot read {timeout!r} as a duration", field="timeout") from exc
    if timeout <= pd.Timedelta(0):
        raise ValidationError(f"must be positive, got {timeout}", field="timeout")
    if not isinstance(repository, DeviceRepository) and hasattr(repository, "repository"):
        deprecated(
            "update_connectivity(platform) is deprecated, use update_connectivity(repository)"
        )
        repository = repository.repository
    repo, store = repository, repository.store
    rows = store.read_rows("devices")
    clock_error = rows["updated_at"] > wall + CLOCK_TOLERANCE
    judged = (rows["updated_at"] <= now) | clock_error
    rows = rows[rows["status"].isin(["active", "offline"]) & judged]
    changed: list[Device] = []
    for device_id, status, updated_at, last_seen in zip(
        rows["device_id"], rows["status"], rows["updated_at"], rows["last_seen"]
    ):
        recent = _times(
            read_heartbeats(store, device_id, start=now - timeout + _MS, end=now + _MS)
        )
        if status == "active" and recent.empty:
            start, end = max(now - LAST_SEEN_LOOKBACK, updated_at), now - timeout + _MS
            if start >= end and updated_at <= wall + CLOCK_TOLERANCE:
                continue  # active for less than ``timeout``: not silent for that long yet
            before = (
                _times(read_heartbeats(store, device_id, start=start, end=end))
                if start < end
                else pd.DatetimeIndex([], tz="UTC")
            )
            seen = before[-1] if len(before) else (None if pd.isna(last_seen) else last_seen)
            device = repo.load(device_id)
            if device.updated_at > now and not device.updated_at > wall + CLOCK_TOLERANCE:
                continue  # an event was saved since the devices table was read: next time
            if device.mark_offline(seen, at=now) is not None:
                changed.append(device)
        elif status == "offline" and not recent.empty:
            device = repo.load(device_id)
            at = recent[0].floor("ms")
            if device.updated_at <= wall + CLOCK_TOLERANCE:  # else it is a clock error
                at = max(at, device.updated_at)
            if device.mark_online(at=at) is not None:
                changed.append(device)
    saved = repo.save_all(changed)
    return pd.DataFrame(
        {
            "device_id": pd.Series([e.device_id for e in saved], dtype=object),
            "version": pd.Series([e.version for e in saved], dtype="int64"),
            "occurred_at": pd.Series([e.occurred_at for e in saved], dtype="datetime64[ms, UTC]"),
            "event_type": pd.Series([e.event_type for e in saved], dtype=object),
            "last_seen": pd.Series(
                [getattr(e, "last_seen", None) or pd.NaT for e in saved],
                dtype="datetime64[ms, UTC]",
            ),
        }
    )
