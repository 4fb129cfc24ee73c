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

from iotlab._compat import deprecated, legacy_call_forms
from iotlab._time import TimeLike
from iotlab.errors import InvalidURLError
from iotlab.store import Store, open_store
from iotlab.store.url import parse_store_url, resolve_store_url

if TYPE_CHECKING:
    import xarray as xr
    from distributed import Client

    from iotlab.analytics import DeviceMetrics, FleetOverview
    from iotlab.detect.base import Detector
    from iotlab.history import DeviceRepository
    from iotlab.ingest.service import IngestionService
    from iotlab.reports import Report
    from iotlab.simulate import Fleet, Simulation
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
    if parsed.path is not None:  # a local file (see StoreURL.is_local_file)
        _file_directory(parsed.scheme, parsed.path)
    return Platform(open_store(parsed))


def _file_directory(scheme: str, path: str) -> None:
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
        f"{scheme} store {str(Path(path).absolute())!r}: directory {str(parent)!r} does not "
        f"exist. {scheme}:///relative/x.db is relative to the current directory, "
        f"{scheme}:////absolute/x.db (four slashes) is absolute; create the directory first "
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
        self._repository: DeviceRepository | None = None

    @property
    def repository(self) -> DeviceRepository:
        """The device repository: ``save``, ``load``, ``history`` of lifecycle events."""
        if self._repository is None:  # built on first use: history imports are not free
            from iotlab.history import DeviceRepository

            self._repository = DeviceRepository(self.store, snapshot_every=self.snapshot_every)
        return self._repository

    @property
    def devices(self) -> DeviceRepository:
        """Deprecated name of :attr:`repository` (``fleet.devices`` is a table; this is not)."""
        deprecated("Platform.devices is deprecated, use Platform.repository", stacklevel=3)
        return self.repository

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

    def __repr__(self) -> str:  # no query: a repr must not block on a slow or dead server
        return f"<iotlab.Platform {self.store.url}>"

    # -- provisioning (iotlab.history) ------------------------------------------------------
    def provision(self, fleet_or_simulation: Fleet | Simulation) -> list[str]:
        """Provision the devices of a simulator ``Fleet`` or ``Simulation``; return their ids."""
        from iotlab.history.provisioning import provision

        return provision(self.repository, fleet_or_simulation)

    @legacy_call_forms(positional=("location", "sensors"))
    def provision_device(
        self,
        device_type: str,
        *,
        location: dict[str, object] | str,
        sensors: Sequence[str | dict[str, object]],
        **attributes: object,
    ) -> str:
        """Provision one device; ``sensors`` as ids (``"temp_01"``) or full specs."""
        from iotlab.history.provisioning import provision_device

        return provision_device(self.repository, device_type, location, sensors, **attributes)

    def rebuild_projections(self) -> None:
        """Rebuild the devices and sensors tables from the event log."""
        self.repository.rebuild_projections()

    @legacy_call_forms(positional=("now",))
    def update_connectivity(
        self, *, now: TimeLike | None = None, timeout: str | pd.Timedelta = "10min"
    ) -> pd.DataFrame:
        """Turn heartbeat gaps longer than ``timeout`` into offline/online events."""
        from iotlab.history.connectivity import update_connectivity

        return update_connectivity(self.repository, now=now, timeout=timeout)

    def subscribe(
        self,
        callback: Callable[[Any], None] | str,
        legacy_callback: Callable[[Any], None] | None = None,
        /,
        *,
        event_types: str | Sequence[str] = "*",
    ) -> Callable[[], None]:
        """Call ``callback(event)`` after lifecycle events of ``event_types`` are saved.

        ``event_types`` is ``"*"`` (every event), one event type name or several. Returns
        a function that cancels the subscription. (0.1's ``subscribe(event_type,
        callback)`` still works, with a ``DeprecationWarning``.)

        Examples
        --------
        >>> import iotlab
        >>> with iotlab.connect("sqlite://") as lab:
        ...     seen = []
        ...     cancel = lab.subscribe(seen.append, event_types="DeviceProvisioned")
        ...     device = lab.provision_device(
        ...         "environmental", location="hq/1/lab", sensors=["temp_01"]
        ...     )
        ...     [event.event_type for event in seen]
        ['DeviceProvisioned']
        """
        return self.repository.subscribe(callback, legacy_callback, event_types=event_types)

    def ingestion_service(self, **options: Any) -> IngestionService:
        """A live :class:`~iotlab.ingest.IngestionService` writing to this platform's store
        and saving connectivity changes to its repository; ``options`` go to it."""
        from iotlab.ingest.service import IngestionService

        return IngestionService(self.store, repository=self.repository, **options)

    # -- time series (iotlab.store) ---------------------------------------------------------
    def ingest(
        self, readings: pd.DataFrame, *, require_provisioned: bool = True, progress: bool = True
    ) -> IngestResult:
        """Validate and write sensor readings; update roll-ups. Bad rows come back rejected."""
        from iotlab.store.ingest import ingest_readings

        return ingest_readings(
            self.store, readings, require_provisioned=require_provisioned, progress=progress
        )

    def ingest_metrics(
        self, metrics: pd.DataFrame, *, require_provisioned: bool = True, progress: bool = True
    ) -> IngestResult:
        """Validate and write device heartbeats (cpu, memory, battery, signal). Bad rows,
        and rows of devices never provisioned (unless ``require_provisioned=False``), come
        back rejected."""
        from iotlab.store.ingest import ingest_metrics

        return ingest_metrics(
            self.store, metrics, require_provisioned=require_provisioned, progress=progress
        )

    @legacy_call_forms(positional=("sensor_id", "start", "end"), renamed={"sensor_id": "sensors"})
    def readings(
        self,
        device_id: str,
        *,
        sensors: str | Sequence[str] | None = None,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
    ) -> pd.DataFrame:
        """Raw readings of a device in ``[start, end)``, sorted by time, with tz-aware UTC
        ``ts``; ``sensors`` (one id or several) narrows them."""
        from iotlab.store.queries import read_readings

        return read_readings(self.store, device_id, sensors=sensors, start=start, end=end)

    @legacy_call_forms(positional=("sensor_id", "start", "end"), renamed={"sensor_id": "sensors"})
    def iter_readings(
        self,
        device_id: str,
        *,
        sensors: str | Sequence[str] | None = None,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
        chunk: str = "1D",
    ) -> Iterator[pd.DataFrame]:
        """:meth:`readings` as an iterator of frames, one per ``chunk`` of time (a pandas
        offset alias), oldest first: scan months without holding them in memory."""
        from iotlab.store.queries import iter_readings

        return iter_readings(
            self.store, device_id, sensors=sensors, start=start, end=end, chunk=chunk
        )

    @legacy_call_forms(positional=("start", "end"))
    def heartbeats(
        self, device_id: str, *, start: TimeLike | None = None, end: TimeLike | None = None
    ) -> pd.DataFrame:
        """A device's heartbeats (cpu, memory, battery, signal) in ``[start, end)``."""
        from iotlab.store.queries import read_heartbeats

        return read_heartbeats(self.store, device_id, start=start, end=end)

    @legacy_call_forms(
        positional=("sensor_id", "start", "end", "interval"), renamed={"sensor_id": "sensors"}
    )
    def rollups(
        self,
        device_id: str,
        *,
        sensors: str | Sequence[str] | None = None,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
        interval: str = "1h",
    ) -> pd.DataFrame:
        """Count, sum, min, max and avg of a device's readings per ``"1min"`` or ``"1h"``
        (the stored roll-ups); ``start``/``end`` bound ``bucket_start``."""
        from iotlab.store.queries import read_rollups

        return read_rollups(
            self.store, device_id, sensors=sensors, start=start, end=end, interval=interval
        )

    @legacy_call_forms(
        positional=("device_ids", "sensor_ids", "start", "end", "interval"),
        renamed={"device_ids": "devices", "sensor_ids": "sensors"},
    )
    def dataset(
        self,
        *,
        devices: str | Sequence[str] | None = None,
        sensors: str | Sequence[str] | None = None,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
        interval: str | None = None,
    ) -> xr.Dataset:
        """Readings as an ``xarray.Dataset`` with dimensions (device, time), one variable per
        sensor; ``interval`` (a pandas offset alias) averages them per interval."""
        from iotlab.store.queries import read_dataset

        return read_dataset(
            self.store, devices=devices, sensors=sensors, start=start, end=end, interval=interval
        )

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
    @legacy_call_forms(positional=("start", "end", "devices", "detector", "n_jobs", "client"))
    def detect_anomalies(
        self,
        *,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
        devices: str | Sequence[str] | None = None,
        detector: Detector | None = None,
        n_jobs: int = 1,
        client: Client | None = None,
        progress: bool = True,
    ) -> pd.DataFrame:
        """Fit one detector per (device, sensor), in parallel; store and return anomalies.

        ``client`` is a ``dask.distributed.Client`` to fit on a cluster instead of
        ``n_jobs`` local processes. Episodes of this detector that ended within the window
        are then resolved (``resolved_by="auto"``, with ``cleared_at``).
        """
        from iotlab.detect.fleet import detect_anomalies
        from iotlab.store.lifecycle import resolve_ended

        found = detect_anomalies(
            self.store,
            start=start,
            end=end,
            devices=devices,
            detector=detector,
            n_jobs=n_jobs,
            client=client,
            progress=progress,
        )
        if len(found):
            # The detector has looked at [start, end): episodes that ended in it are over.
            name = str(found["detector"].iloc[0])
            resolve_ended(self.store, start=start, end=end, detector=name)
        return found

    @legacy_call_forms(positional=("start", "end", "device_id"), renamed={"device_id": "devices"})
    def anomalies(
        self,
        *,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
        devices: str | Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """Stored anomalies in ``[start, end)`` with their lifecycle, fleet-wide or for
        ``devices`` (one id or several).

        One row per anomaly and detector, with ``anomaly_id``, ``status`` (open,
        acknowledged, resolved), who/when/note and ``created_at``/``cleared_at``; see
        :mod:`iotlab.store.lifecycle`.
        """
        from iotlab.store.lifecycle import read_anomalies

        return read_anomalies(self.store, start=start, end=end, devices=devices)

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

    @legacy_call_forms(positional=("start", "end"))
    def resolve_ended_anomalies(
        self,
        *,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
        detector: str | None = None,
        quiet: str = "1h",
    ) -> pd.DataFrame:
        """Auto-resolve the anomaly episodes that ended in ``[start, end)`` (the sensor
        reported normally for ``quiet`` after them); returns the rows changed."""
        from iotlab.store.lifecycle import resolve_ended

        return resolve_ended(self.store, start=start, end=end, detector=detector, quiet=quiet)

    # -- analytics and reports (iotlab.analytics, iotlab.reports) ---------------------------
    @legacy_call_forms(positional=("start", "end"))
    def device_metrics(
        self, device_id: str, *, start: TimeLike | None = None, end: TimeLike | None = None
    ) -> DeviceMetrics:
        """Reading statistics per sensor, anomalies by severity, uptime, last seen, status."""
        from iotlab.analytics import device_metrics

        return device_metrics(self.store, device_id, start=start, end=end)

    @legacy_call_forms(positional=("now",))
    def fleet_overview(
        self,
        *,
        now: TimeLike | None = None,
        window: str | pd.Timedelta = "24h",
        devices: str | Sequence[str] | None = None,
    ) -> FleetOverview:
        """Devices by status and type, readings and anomalies in the ``window`` before
        ``now`` (default: the last 24 hours)."""
        from iotlab.analytics import fleet_overview

        return fleet_overview(self.store, now=now, window=window, devices=devices)

    @legacy_call_forms(positional=("start", "end", "devices"))
    def report(
        self,
        kind: str,
        *,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
        devices: str | Sequence[str] | None = None,
        **options: Any,
    ) -> Report:
        """Build ``fleet_health``, ``device_performance`` or ``anomaly_summary`` over a window."""
        from iotlab.reports import build_report

        return build_report(self.store, kind, start=start, end=end, devices=devices, **options)
