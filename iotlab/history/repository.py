"""``DeviceRepository``: device event streams on a ``Store``, with snapshots and projections.

Saving appends a device's pending events with the version it was loaded at as the
expected version, so a concurrent writer makes the store raise ``ConcurrencyError``
(reload and retry); then it writes a snapshot every ``snapshot_every`` events, updates
the devices/sensors projections and the fleet-wide feed, and notifies subscribers.

A snapshot's ``taken_at`` is the ``occurred_at`` of the last event folded into it (the
moment its state describes, not the wall-clock time it was written), so
``load(as_of=...)`` picks a snapshot without decoding it, and rebuilding snapshots
gives the same rows.

Examples
--------
>>> import iotlab
>>> from iotlab.history.aggregate import Device
>>> lab = iotlab.connect("sqlite://")
>>> repo = DeviceRepository(lab.store, snapshot_every=2)
>>> d = Device.provision("d1", "environmental", "HQ/1/101", at="2026-01-01")
>>> _ = d.activate(at="2026-01-02"); _ = d.update_firmware("2.0", at="2026-01-03")
>>> [e.version for e in repo.save(d)]
[1, 2, 3]
>>> repo.load("d1").firmware_version, repo.load("d1", version=1).status
('2.0', 'inactive')
>>> repo.load("d1", as_of="2026-01-02T12:00Z").status
'active'
>>> repo.history("d1")[["version", "event_type", "status"]]
   version       event_type    status
0        1  DeviceProvisioned  inactive
1        2    DeviceActivated    active
2        3  FirmwareUpdated    active
>>> lab.close()
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import pandas as pd

from iotlab._time import TimeLike, utc_timestamp, utc_timestamp_or_none
from iotlab.errors import NotFoundError, ValidationError
from iotlab.history.aggregate import Device
from iotlab.history.appends import append_all, default_workers, failure
from iotlab.history.bus import EventBus
from iotlab.history.events import (
    EVENT_TYPES,
    Event,
    SensorRemoved,
    events_from_frame,
)
from iotlab.history.projections import devices_frame, events_by_day_frame, sensors_frame
from iotlab.history.state import DeviceState, apply, replay, state_from_json, state_to_json
from iotlab.store.base import Store

__all__ = ["DeviceRepository"]

_MS_UTC = "datetime64[ms, UTC]"


class DeviceRepository:
    """Load and save ``Device`` aggregates on ``store``.

    Parameters
    ----------
    store
        Any :class:`iotlab.store.Store`; only its public methods are used.
    snapshot_every
        Write a snapshot when a save crosses a multiple of this many events;
        ``None`` disables snapshots.
    append_workers
        How many devices ``save_all`` appends at once (on Cassandra each append is a
        Paxos round trip); 1 appends one after another. Default: 16, or 1 on SQLite,
        which serialises appends anyway.
    """

    def __init__(
        self,
        store: Store,
        snapshot_every: int | None = 50,
        *,
        append_workers: int | None = None,
    ) -> None:
        if snapshot_every is not None and (
            not isinstance(snapshot_every, int) or snapshot_every < 1
        ):
            raise ValidationError(
                f"must be a positive integer or None, got {snapshot_every!r}",
                field="snapshot_every",
            )
        if append_workers is None:
            append_workers = default_workers(store)
        if (
            isinstance(append_workers, bool)
            or not isinstance(append_workers, int)
            or (append_workers < 1)
        ):
            raise ValidationError(
                f"must be a positive integer or None, got {append_workers!r}",
                field="append_workers",
            )
        self.store = store
        self.snapshot_every = snapshot_every
        self.append_workers = append_workers
        self._bus = EventBus(EVENT_TYPES)

    def __repr__(self) -> str:
        return f"<DeviceRepository on {self.store!r}, snapshot every {self.snapshot_every}>"

    # -- writing ----------------------------------------------------------------------------
    def save(self, device: Device) -> list[Event]:
        """Append ``device``'s pending events; return them (empty if there were none).

        Raises ``ConcurrencyError`` (and saves nothing) if another writer appended to
        this device since it was loaded: reload it and repeat the command.
        """
        return self.save_all([device])

    def save_all(self, devices: Iterable[Device]) -> list[Event]:
        """Save several devices: appends in flight together, one write per projection table.

        A ``ConcurrencyError`` on one device does not stop the others: every device that
        could be appended is saved, with its projections, and then the error of the first
        device (in input order) that failed is raised, its notes naming the other failures.
        """
        todo = [device for device in devices if device.pending_events]
        outcomes: dict[int, Exception | None] = {}
        try:
            append_all(self.store, todo, outcomes, workers=self.append_workers)
        finally:
            # Also on interrupt: the projections follow exactly the streams appended.
            saved = [
                (d, d.saved_version, d._mark_saved())
                for i, d in enumerate(todo)
                if i in outcomes and outcomes[i] is None
            ]
            if saved:
                self._after_append(saved)
        events = [e for _, _, batch in saved for e in batch]
        self._bus.publish(events)
        error = failure(todo, outcomes)
        if error is not None:
            raise error
        return events

    def _after_append(self, saved: Sequence[tuple[Device, int, list[Event]]]) -> None:
        n = self.snapshot_every
        snapshots = [
            d.state for d, before, _ in saved if n is not None and d.version // n > before // n
        ]
        if snapshots:
            self.store.write_rows("snapshots", _snapshot_frame(snapshots))
        removed = [
            d.device_id
            for d, _, batch in saved
            if any(isinstance(e, SensorRemoved) for e in batch)
        ]
        self._write_projections([d.state for d, _, _ in saved], removed)
        self.store.write_rows(
            "events_by_day", events_by_day_frame([e for _, _, b in saved for e in b])
        )

    def _write_projections(
        self, states: Sequence[DeviceState], reset_sensors: Sequence[str]
    ) -> None:
        devices = devices_frame(states)
        if len(devices):
            # Heartbeats move last_seen forward between lifecycle events (see
            # iotlab.store.heartbeat_rollups.advance_last_seen): never move it back.
            stored = self.store.read_rows(
                "devices",
                {"device_id": devices["device_id"].tolist()},
                columns=["device_id", "last_seen"],
            ).set_index("device_id")["last_seen"]
            stored_before = stored.reindex(devices["device_id"]).to_numpy()
            before = pd.to_datetime(pd.Series(stored_before, index=devices.index), utc=True)
            newer = before.notna() & (
                devices["last_seen"].isna() | (before > devices["last_seen"])
            )
            devices.loc[newer, "last_seen"] = before[newer]
        self.store.write_rows("devices", devices)
        if reset_sensors:
            self.store.delete_rows("sensors", {"device_id": list(reset_sensors)})
        sensors = sensors_frame(states)
        if not sensors.empty:
            self.store.write_rows("sensors", sensors)

    # -- reading ----------------------------------------------------------------------------
    def events(self, device_id: str, *, after: int = 0) -> list[Event]:
        """The device's saved events with version > ``after``, in order."""
        return events_from_frame(self._event_rows(device_id, after))

    def _event_rows(self, device_id: str, after: int) -> pd.DataFrame:
        # Only the tail after a snapshot is read: that is what makes snapshots pay off.
        return self.store.read_rows("events", {"device_id": device_id}, start=after + 1)

    def load(
        self, device_id: str, version: int | None = None, as_of: TimeLike | None = None
    ) -> Device:
        """The device as saved now, after event ``version``, or as it was at time ``as_of``.

        Raises ``NotFoundError`` if the device has no events (or none by ``as_of``), and
        ``ValidationError`` for a ``version`` outside 1..current.
        """
        if version is not None and as_of is not None:
            raise ValidationError("give version or as_of, not both", field="as_of")
        if version is not None and (
            isinstance(version, bool) or not isinstance(version, int) or version < 1
        ):
            raise ValidationError(f"must be an integer >= 1, got {version!r}", field="version")
        when = utc_timestamp_or_none(as_of, field="as_of")
        state = self._snapshot(device_id, version, when) or DeviceState.initial(device_id)
        events = self.events(device_id, after=state.version)
        for event in events:
            if (version is not None and event.version > version) or (
                when is not None and event.occurred_at > when
            ):
                break
            state = apply(state, event)
        if state.version == 0:
            if when is not None and events:
                raise NotFoundError(
                    f"device {device_id} did not exist at {when} (provisioned "
                    f"at {events[0].occurred_at})"
                )
            raise NotFoundError(f"device {device_id} not found (no events)")
        if version is not None and state.version != version:
            raise ValidationError(
                f"device {device_id} has {state.version} events, no version {version}",
                field="version",
            )
        return Device(state)

    def _snapshot(
        self, device_id: str, version: int | None, when: pd.Timestamp | None
    ) -> DeviceState | None:
        if self.snapshot_every is None:
            return None
        # Snapshots at or before ``version`` only (an integer bound on the clustering key).
        end = None if version is None else version + 1
        rows = self.store.read_rows("snapshots", {"device_id": device_id}, end=end)
        if when is not None:
            rows = rows[rows["taken_at"] <= when]
        for text in rows.sort_values("version", ascending=False)["state"]:
            state = state_from_json(text)
            if state is not None:  # None: written by another snapshot schema
                return state
        return None

    def history(self, device_id: str) -> pd.DataFrame:
        """Who changed what, when: one row per event with the status after it.

        Columns ``version, occurred_at, event_type, status, change, event_id``.
        """
        events = self.events(device_id)
        if not events:
            raise NotFoundError(f"device {device_id} not found (no events)")
        statuses, state = [], DeviceState.initial(device_id)
        for event in events:
            state = apply(state, event)
            statuses.append(state.status)
        return pd.DataFrame(
            {
                "version": pd.Series([e.version for e in events], dtype="int64"),
                "occurred_at": pd.Series([e.occurred_at for e in events], dtype=_MS_UTC),
                "event_type": [e.event_type for e in events],
                "status": statuses,
                "change": [e.describe() for e in events],
                "event_id": [e.event_id for e in events],
            }
        )

    def versions(self, device_ids: Sequence[str] | None = None) -> dict[str, int]:
        """Device id -> stream version, from the devices projection."""
        key = None if device_ids is None else {"device_id": list(device_ids)}
        rows = self.store.read_rows("devices", key, columns=["device_id", "version"])
        return dict(zip(rows["device_id"].tolist(), rows["version"].tolist()))

    def events_by_day(self, day: TimeLike) -> pd.DataFrame:
        """The fleet-wide feed of one UTC day: ``occurred_at, device_id, version, event_type``.

        Catch-up readers walk days forward and load the listed events by device/version.
        """
        start = utc_timestamp(day, field="day").floor("D")
        return self.store.read_rows(
            "events_by_day", {}, start=start, end=start + pd.Timedelta(days=1)
        )

    # -- projections ------------------------------------------------------------------------
    def rebuild_projections(self, device_ids: Sequence[str] | None = None) -> int:
        """Recompute devices, sensors and the day feed from the event log; return devices.

        ``device_ids=None`` rebuilds every device listed in the devices table. Snapshots
        are not used: the result is a full replay of each stream.
        """
        ids = list(self.versions() if device_ids is None else device_ids)
        states, events = [], []
        for device_id in ids:
            stream = self.events(device_id)
            if not stream:
                raise NotFoundError(f"device {device_id} not found (no events)")
            states.append(replay(device_id, stream))
            events.extend(stream)
        if states:
            self._write_projections(states, ids)
            self.store.write_rows("events_by_day", events_by_day_frame(events))
        return len(states)

    # -- notifications ----------------------------------------------------------------------
    def subscribe(
        self,
        callback: Callable[[Any], None] | str,
        legacy_callback: Callable[[Any], None] | None = None,
        /,
        *,
        event_types: str | Sequence[str] = "*",
    ) -> Callable[[], None]:
        """Call ``callback(event)`` after events of ``event_types`` (``"*"``: all; one name
        or several) are saved. Returns a function that cancels the subscription.

        A failing callback is logged and does not affect the save or other subscribers.
        """
        return self._bus.subscribe(callback, legacy_callback, event_types=event_types)


def _snapshot_frame(states: Sequence[DeviceState]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "device_id": pd.Series([s.device_id for s in states], dtype=object),
            "version": pd.Series([s.version for s in states], dtype="int64"),
            "state": pd.Series([state_to_json(s) for s in states], dtype=object),
            "taken_at": pd.Series([s.updated_at for s in states], dtype=_MS_UTC),
        }
    )
