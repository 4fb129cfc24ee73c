"""``Platform``: the one object a notebook holds.

It owns a store and passes it explicitly to the functions that do the work
(``iotlab.store.ingest``, ``iotlab.history``, ``iotlab.detect``, ...). Each
method here validates nothing itself and stays one call deep, so the real logic
can be read, tested and reused without a Platform.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from iotlab._time import TimeLike
from iotlab.errors import InvalidURLError
from iotlab.store import Store, open_store
from iotlab.store.url import parse_store_url, resolve_store_url

if TYPE_CHECKING:
    import xarray as xr

    from iotlab.analytics import DeviceMetrics, FleetOverview
    from iotlab.history import DeviceRepository
    from iotlab.reports import Report
    from iotlab.store.ingest import IngestResult

__all__ = ["Platform", "connect"]


def connect(url: str | None = None) -> Platform:
    """Open a platform on the store at ``url``.

    Parameters
    ----------
    url
        ``sqlite:///path.db`` (embedded, no server), ``sqlite://`` (in memory) or
        ``cassandra://host1,host2:9042/keyspace?replication_factor=1``. ``None`` means
        ``$IOTLAB_STORE`` if set, else the embedded default ``sqlite:///./.iotlab/iotlab.db``.

    Returns
    -------
    Platform
        Use it as a context manager, or call ``close()``.

    Examples
    --------
    >>> import iotlab
    >>> with iotlab.connect("sqlite://") as lab:
    ...     lab.describe()["backend"]
    'sqlite'
    """
    parsed = parse_store_url(resolve_store_url(url))
    if parsed.scheme == "sqlite" and parsed.path:
        _sqlite_directory(parsed.path)
    return Platform(open_store(parsed))


def _sqlite_directory(path: str) -> None:
    """Make sure an embedded store's directory exists, or refuse a surprising location.

    iotlab creates its own ``.iotlab/`` directory (where the default store lives) inside an
    existing directory. Any other missing directory is refused: it is most often a URL
    with one slash too few (``sqlite:///srv/x.db`` is ``./srv/x.db``), and creating it
    would hide the data in a new, empty database.
    """
    from pathlib import Path

    parent = Path(path).parent
    if parent.is_dir():
        return
    if parent.name == ".iotlab" and parent.parent.is_dir():
        parent.mkdir(exist_ok=True)
        return
    raise InvalidURLError(
        f"sqlite store {str(Path(path).absolute())!r}: directory {str(parent)!r} does not "
        "exist. sqlite:///relative/x.db is relative to the current directory, "
        "sqlite:////absolute/x.db (four slashes) is absolute; create the directory first "
        "if the path is right"
    )


class Platform:
    """An IoT fleet on one store: provision, ingest, query, detect, report.

    Parameters
    ----------
    store
        An open :class:`iotlab.store.Store`; see :func:`connect` to open one from a URL.
    snapshot_every
        Take a snapshot of a device's state every this many events.
    """

    def __init__(self, store: Store, *, snapshot_every: int = 50) -> None:
        self.store = store
        self.snapshot_every = snapshot_every
        self._devices: DeviceRepository | None = None

    @property
    def devices(self) -> DeviceRepository:
        """The device repository: ``save``, ``load``, ``history`` of lifecycle events."""
        if self._devices is None:  # built on first use: history imports are not free
            from iotlab.history import DeviceRepository

            self._devices = DeviceRepository(self.store, snapshot_every=self.snapshot_every)
        return self._devices

    # -- lifecycle ------------------------------------------------------------------------
    def close(self) -> None:
        """Close the store's connections. Idempotent."""
        self.store.close()

    def __enter__(self) -> Platform:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def describe(self) -> dict[str, object]:
        """Facts about the backend: name, server version, where the data lives."""
        return self.store.describe()

    def __repr__(self) -> str:
        facts = self.store.describe()
        version = facts.get("server_version")
        return f"<iotlab.Platform {facts['backend']} {self.store.url}" + (
            f" (server {version})>" if version else ">"
        )

    # -- provisioning (iotlab.history) ------------------------------------------------------
    def provision(self, fleet_or_simulation: Any) -> list[str]:
        """Provision the devices of a simulator ``Fleet`` or ``Simulation``; return their ids."""
        from iotlab.history.provisioning import provision

        return provision(self.devices, fleet_or_simulation)

    def provision_device(
        self,
        device_type: str,
        location: dict[str, object] | str,
        sensors: Sequence[str | dict[str, object]],
        **attributes: object,
    ) -> str:
        """Provision one device; ``sensors`` as ids (``"temp_01"``) or full specs."""
        from iotlab.history.provisioning import provision_device

        return provision_device(self.devices, device_type, location, sensors, **attributes)

    def rebuild_projections(self) -> None:
        """Rebuild the devices and sensors tables from the event log."""
        self.devices.rebuild_projections()

    def update_connectivity(
        self, now: TimeLike | None = None, *, timeout: str | pd.Timedelta = "10min"
    ) -> pd.DataFrame:
        """Turn heartbeat gaps longer than ``timeout`` into offline/online events."""
        from iotlab.history.connectivity import update_connectivity

        return update_connectivity(self, now=now, timeout=timeout)

    def subscribe(self, event_type: str, callback: Callable[[Any], None]) -> Callable[[], None]:
        """Call ``callback(event)`` after events of ``event_type`` (or ``"*"``) are saved.

        Returns a function that cancels the subscription.
        """
        return self.devices.subscribe(event_type, callback)

    # -- time series (iotlab.store) ---------------------------------------------------------
    def ingest(
        self, readings: pd.DataFrame, *, require_provisioned: bool = True, progress: bool = True
    ) -> IngestResult:
        """Validate and write sensor readings; update roll-ups. Bad rows come back rejected."""
        from iotlab.store.ingest import ingest_readings

        return ingest_readings(
            self.store, readings, require_provisioned=require_provisioned, progress=progress
        )

    def ingest_metrics(self, metrics: pd.DataFrame, *, progress: bool = True) -> IngestResult:
        """Validate and write device heartbeats (cpu, memory, battery, signal)."""
        from iotlab.store.ingest import ingest_metrics

        return ingest_metrics(self.store, metrics, progress=progress)

    def readings(
        self,
        device_id: str,
        sensor_id: str | Sequence[str] | None = None,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
    ) -> pd.DataFrame:
        """Raw readings of a device, sorted by time, with tz-aware UTC ``ts``."""
        from iotlab.store.queries import read_readings

        return read_readings(self.store, device_id, sensor_id, start, end)

    def iter_readings(
        self,
        device_id: str,
        sensor_id: str | Sequence[str] | None = None,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
        *,
        chunk: str = "1D",
    ) -> Iterator[pd.DataFrame]:
        """:meth:`readings` as an iterator of frames, one per ``chunk`` of time (a pandas
        offset alias), oldest first: scan months without holding them in memory."""
        from iotlab.store.queries import iter_readings

        return iter_readings(self.store, device_id, sensor_id, start, end, chunk=chunk)

    def heartbeats(
        self, device_id: str, start: TimeLike | None = None, end: TimeLike | None = None
    ) -> pd.DataFrame:
        """A device's heartbeats (cpu, memory, battery, signal), sorted by time."""
        from iotlab.store.queries import read_heartbeats

        return read_heartbeats(self.store, device_id, start, end)

    def rollups(
        self,
        device_id: str,
        sensor_id: str | Sequence[str] | None = None,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
        interval: str = "hour",
    ) -> pd.DataFrame:
        """Per-minute or per-hour count, sum, min, max and avg of a device's readings."""
        from iotlab.store.queries import read_rollups

        return read_rollups(self.store, device_id, sensor_id, start, end, interval)

    def dataset(
        self,
        device_ids: Sequence[str] | None = None,
        sensor_ids: Sequence[str] | None = None,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
        interval: str | None = None,
    ) -> xr.Dataset:
        """Readings as an ``xarray.Dataset`` with dimensions (device, time), one variable per
        sensor."""
        from iotlab.store.queries import read_dataset

        return read_dataset(self.store, device_ids, sensor_ids, start, end, interval)

    def stats(self) -> pd.DataFrame:
        """Rows, partitions and time span of every table."""
        return self.store.stats()

    def data_span(self) -> tuple[pd.Timestamp, pd.Timestamp] | None:
        """First and last time of any reading or heartbeat in the store, ``None`` if empty.

        The window reports and detection default to on the command line: the data's own
        span, rather than a week before now that simulated or old data may not reach.

        Examples
        --------
        >>> import iotlab
        >>> with iotlab.connect("sqlite://") as lab:
        ...     lab.data_span() is None
        True
        """
        stats = self.store.stats().set_index("table")
        held = stats.loc[["readings", "device_metrics"]]
        held = held[held["rows"] > 0]
        if held.empty:
            return None
        return held["first"].min(), held["last"].max()

    def purge_expired(self) -> int:
        """Delete rows past their TTL (embedded backend; Cassandra expires rows itself)."""
        return self.store.purge_expired()

    # -- anomalies (iotlab.detect) ----------------------------------------------------------
    def detect_anomalies(
        self,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
        devices: Sequence[str] | None = None,
        detector: Any = None,
        n_jobs: int = 1,
        client: Any = None,
        progress: bool = True,
    ) -> pd.DataFrame:
        """Fit one detector per (device, sensor), in parallel; store and return anomalies.

        Episodes of this detector that ended within the window are then resolved
        (``resolved_by="auto"``, with ``cleared_at``).
        """
        from iotlab.detect.fleet import detect_anomalies
        from iotlab.store.lifecycle import resolve_ended

        found = detect_anomalies(
            self.store,
            start,
            end,
            devices=devices,
            detector=detector,
            n_jobs=n_jobs,
            client=client,
            progress=progress,
        )
        if len(found):
            # The detector has looked at [start, end): episodes that ended in it are over.
            name = str(found["detector"].iloc[0])
            resolve_ended(self.store, start, end, detector=name)
        return found

    def anomalies(
        self,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
        device_id: str | None = None,
        *,
        devices: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """Stored anomalies in ``[start, end)`` with their lifecycle, fleet-wide or for
        some devices (``devices=``; ``device_id`` names one).

        One row per anomaly and detector, with ``anomaly_id``, ``status`` (open,
        acknowledged, resolved), who/when/note and ``created_at``/``cleared_at``; see
        :mod:`iotlab.store.lifecycle`.
        """
        from iotlab.store.lifecycle import read_anomalies

        if device_id is not None:
            devices = [device_id, *(devices or [])]
        return read_anomalies(self.store, start, end, devices=devices)

    def acknowledge_anomaly(
        self,
        anomalies: str | Sequence[str] | pd.DataFrame,
        *,
        by: str,
        note: str | None = None,
        at: TimeLike | None = None,
    ) -> pd.DataFrame:
        """Acknowledge anomalies (an ``anomaly_id``, several, or rows of :meth:`anomalies`):
        someone (``by``) is on it. Returns those anomalies as they are now."""
        from iotlab.store.lifecycle import acknowledge

        return acknowledge(self.store, anomalies, by=by, note=note, at=at)

    def resolve_anomaly(
        self,
        anomalies: str | Sequence[str] | pd.DataFrame,
        *,
        by: str,
        note: str | None = None,
        at: TimeLike | None = None,
    ) -> pd.DataFrame:
        """Resolve anomalies (an ``anomaly_id``, several, or rows of :meth:`anomalies`).
        Returns those anomalies as they are now."""
        from iotlab.store.lifecycle import resolve

        return resolve(self.store, anomalies, by=by, note=note, at=at)

    def resolve_ended_anomalies(
        self,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
        *,
        detector: str | None = None,
        quiet: str = "1h",
    ) -> pd.DataFrame:
        """Auto-resolve the anomaly episodes that ended in ``[start, end)`` (the sensor
        reported normally for ``quiet`` after them); returns the rows changed."""
        from iotlab.store.lifecycle import resolve_ended

        return resolve_ended(self.store, start, end, detector=detector, quiet=quiet)

    # -- analytics and reports (iotlab.analytics, iotlab.reports) ---------------------------
    def device_metrics(
        self, device_id: str, start: TimeLike | None = None, end: TimeLike | None = None
    ) -> DeviceMetrics:
        """Reading statistics per sensor, anomalies by severity, uptime, last seen, status."""
        from iotlab.analytics import device_metrics

        return device_metrics(self, device_id, start, end)

    def fleet_overview(self, now: TimeLike | None = None) -> FleetOverview:
        """Devices by status and type, readings and anomalies of the last 24 h before ``now``."""
        from iotlab.analytics import fleet_overview

        return fleet_overview(self, now)

    def report(
        self,
        kind: str,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
        devices: Sequence[str] | None = None,
        **options: Any,
    ) -> Report:
        """Build ``fleet_health``, ``device_performance`` or ``anomaly_summary`` over a window."""
        from iotlab.reports import build_report

        return build_report(self, kind, start, end, devices, **options)
