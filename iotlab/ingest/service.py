"""The ingestion service: micro-batches from any source into the store, scored and announced.

For each batch (closed when ``batch_size`` rows have arrived or ``max_delay`` seconds
after its first row arrived; a closing batch takes along what is already waiting, up to
``batch_size``) the service thread:

1. validates readings and heartbeats (:mod:`iotlab.store.validate`); refused rows and
   malformed messages become dead letters with their reason and raw payload
   (:mod:`iotlab.ingest.deadletter`);
2. scores each reading against its sensor's cached forecast
   (:class:`~iotlab.ingest.scoring.ForecastCache`; never a refit per reading);
3. writes raw readings, heartbeats, dead letters and the flagged readings
   (``anomalies`` / ``anomalies_by_day``) together, in one wait for the store
   (:meth:`~iotlab.store.base.Store.write_tables`);
4. calls the alert handlers once per new anomaly episode (an ongoing episode raises one
   alert);
5. notifies subscribers (the readings are stored now);
6. refreshes the minute and hour roll-ups of the touched hours, for every batch since
   the last refresh, at most every ``rollup_every`` seconds: a refresh costs about the
   same for one batch as for ten, so under load it is shared, and roll-ups lag the raw
   readings by at most that long;
7. only then acknowledges the batches to their sources (MQTT: PUBACK; only now may the
   broker forget the messages, so a crash before this point means redelivery, never
   loss, and redelivered readings recompute their roll-ups).

Writes are upserts keyed on (device_id, sensor_id, ts), so a redelivered message is
stored once. Every ``connectivity_every`` seconds the service also turns heartbeat gaps
into DeviceWentOffline / DeviceCameOnline events (``Platform.update_connectivity``, judged
at the latest data time seen) and forwards them to subscribers.

Store outages: a write (or roll-up refresh) that fails because the store did not answer
(:class:`~iotlab.errors.StoreUnavailableError`) is retried, with exponential backoff and
jitter (``retry_initial`` doubling up to ``retry_max`` seconds), until it succeeds; the
batch is held, unacknowledged, meanwhile, and :attr:`IngestionService.accepting` is
cleared so that sources stop taking messages (the broker keeps them). The service
resumes by itself when the store is back. :attr:`IngestionService.status` says which
state it is in; state changes are logged. Any other error is fatal: the service thread
stops with it in :attr:`IngestionService.error` (``iotlab serve`` exits 1). With
``outage_limit`` an outage longer than that many seconds is fatal too.

Threads: ``submit*`` may be called from any thread; batches, alert handlers and
subscriber callbacks run on the service thread (see :mod:`iotlab.ingest.notify`);
roll-up refreshes and the acknowledgements after them on a roll-up thread.

Examples
--------
>>> import iotlab, queue
>>> from iotlab.simulate import Fleet
>>> lab = iotlab.connect("sqlite://")
>>> fleet = Fleet(2, seed=1)
>>> _ = lab.provision(fleet)
>>> sim = fleet.simulate("2026-01-05", days=0.25, freq="5min")
>>> seen = queue.Queue()
>>> with lab.ingestion_service(max_delay=0.05) as service:  # IngestionService(lab.store, ...)
...     cancel = service.subscribe(seen.put, kinds="readings")
...     service.submit(sim.readings)
>>> len(seen.get(timeout=5).data) == len(sim.readings)
True
>>> lab.close()
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Literal

import pandas as pd

from iotlab._compat import deprecated
from iotlab._time import TimeLike
from iotlab.errors import StoreUnavailableError, ValidationError
from iotlab.history.connectivity import update_connectivity
from iotlab.history.repository import DeviceRepository
from iotlab.ingest.batch import ParsedMessages, Part, PendingBatch
from iotlab.ingest.deadletter import dead_letter_rows
from iotlab.ingest.health import Abandoned, ServiceStats, ServiceStatus, StoreGuard
from iotlab.ingest.messages import MAX_PAYLOAD_BYTES
from iotlab.ingest.notify import NOTIFICATION_KINDS, Alert, Notification, Subscribers
from iotlab.ingest.scoring import ForecastCache
from iotlab.store.base import Store
from iotlab.store.rollups import RollupMemory, refresh_rollups

__all__ = ["IngestionService", "ServiceStats", "ServiceStatus"]

logger = logging.getLogger(__name__)

#: Seconds the service trusts its copy of the provisioned sensors and devices.
KNOWN_MAX_AGE = 30.0

_STOP = object()
_FLUSH = object()
_WAKE = object()  # a roll-up refresh ended: the service thread may start the next one


class IngestionService:
    """Consume readings, heartbeats and MQTT messages in micro-batches; see the module doc.

    Parameters
    ----------
    store
        An open :class:`iotlab.store.Store` to write to
        (:meth:`iotlab.Platform.ingestion_service` passes its own).
    repository
        The device repository that connectivity changes are saved to (default: one on
        ``store``).
    batch_size
        Close a batch once this many rows/messages have arrived.
    max_delay
        ... or this many seconds after its first row arrived.
    scoring
        The forecast cache to score against (default: a :class:`ForecastCache` with the
        Prophet detector, which scores as ``score_online`` does and names a rolling
        z-score fallback in the rows it scores); ``None`` disables scoring.
    alert_gap
        Flagged readings of one sensor closer than this belong to one episode: one alert.
    require_provisioned
        Refuse readings of unknown sensors and heartbeats of unknown devices.
    heartbeat_timeout
        Silence after which an active device is marked offline.
    connectivity_every
        Seconds between connectivity checks (``None``: never).
    rollup_every
        Most seconds between roll-up refreshes (``0``: after every batch).
    topic_root
        First level of MQTT topics.
    max_payload
        Largest MQTT payload parsed, in bytes; a larger one is a dead letter.
    max_future
        How far past the wall clock a reading or heartbeat may be dated (device clocks
        drift a little); later ones are dead letters. ``None``: no limit. The service's
        data clock (which connectivity is judged at) never runs ahead of the wall clock.
    retry_initial, retry_max
        First and longest wait (seconds) between retries while the store is unavailable.
    outage_limit
        Seconds an outage may last before the service gives up (``None``: never).
    shared_sensors
        Other workers may store readings of the same sensors at the same time (MQTT
        shared subscriptions): roll-ups are refreshed so that concurrent refreshes
        converge (``refresh_rollups(concurrent=True)``), at the cost of more reads; and
        an anomaly that starts an episode as far as this worker knows is alerted only if
        the store holds none of that sensor within ``alert_gap`` before it (another
        worker's): one read per device of a batch with such anomalies.
    """

    def __init__(
        self,
        store: Store,
        *,
        repository: DeviceRepository | None = None,
        batch_size: int = 5000,
        max_delay: float = 0.5,
        scoring: ForecastCache | None | Literal["default"] = "default",
        alert_gap: str | pd.Timedelta = "30min",
        require_provisioned: bool = True,
        heartbeat_timeout: str | pd.Timedelta = "10min",
        connectivity_every: float | None = 30.0,
        rollup_every: float = 1.0,
        topic_root: str = "iotlab",
        max_payload: int = MAX_PAYLOAD_BYTES,
        max_future: str | pd.Timedelta | None = "5min",
        retry_initial: float = 0.5,
        retry_max: float = 30.0,
        outage_limit: float | None = None,
        shared_sensors: bool = False,
    ) -> None:
        if batch_size < 1:
            raise ValidationError(f"must be >= 1, got {batch_size}", field="batch_size")
        if max_delay <= 0:
            raise ValidationError(f"must be > 0, got {max_delay}", field="max_delay")
        if rollup_every < 0:
            raise ValidationError(f"must be >= 0, got {rollup_every}", field="rollup_every")
        if max_payload < 1:
            raise ValidationError(f"must be >= 1, got {max_payload}", field="max_payload")
        self.max_payload = int(max_payload)
        self.max_future = None if max_future is None else pd.Timedelta(max_future)
        if not 0 < retry_initial <= retry_max:
            raise ValidationError(
                f"need 0 < retry_initial <= retry_max, got {retry_initial}, {retry_max}",
                field="retry_initial",
            )
        #: Set while the service takes input; cleared during a store outage, so that
        #: sources hold back (:class:`~iotlab.ingest.mqtt.MqttSource` leaves messages
        #: with the broker).
        self.stats = ServiceStats()
        self._guard = StoreGuard(
            self.stats, retry_initial=retry_initial, retry_max=retry_max, outage_limit=outage_limit
        )
        self.accepting = self._guard.accepting
        if not isinstance(store, Store) and hasattr(store, "repository"):
            deprecated(
                "IngestionService(platform) is deprecated, use platform.ingestion_service() "
                "or IngestionService(store, repository=...)"
            )
            store, repository = store.store, store.repository
        self.store = store
        self.repository = repository if repository is not None else DeviceRepository(store)
        self.batch_size = batch_size
        self.max_delay = max_delay
        if isinstance(scoring, str) and scoring != "default":
            raise ValidationError(
                f"must be a ForecastCache, None or 'default', got {scoring!r}", field="scoring"
            )
        self.scoring = ForecastCache(self.store) if isinstance(scoring, str) else scoring
        self.alert_gap = pd.Timedelta(alert_gap)
        self.require_provisioned = require_provisioned
        self.heartbeat_timeout = pd.Timedelta(heartbeat_timeout)
        self.connectivity_every = connectivity_every
        self.rollup_every = rollup_every
        self.shared_sensors = shared_sensors
        self.topic_root = topic_root
        self.subscribers = Subscribers()
        self._alert_handlers: list[Callable[[Alert], None]] = []
        self._last_flagged: dict[tuple[str, str], pd.Timestamp] = {}
        self._data_now: pd.Timestamp | None = None
        # Stored readings whose roll-ups are not refreshed yet, and their sources' acks.
        self._unrolled: list[pd.DataFrame] = []
        self._unacked: list[Callable[[], None]] = []
        self._last_rollup = time.monotonic()
        self._rollup_pool: ThreadPoolExecutor | None = None
        # The roll-ups this service stored last, so a refresh need not read them back.
        self._rollup_memory = RollupMemory()
        self._rollup_job: Future | None = None
        self._known_keys: dict[str, tuple[pd.DataFrame, float]] = {}
        self._sources: list[Any] = []  # those that report a backlog, see status
        self._inbox: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._flushed = threading.Condition()
        self._flush_count = 0
        self.error: BaseException | None = None

    # -- subscribers and alert handlers -------------------------------------------------------
    def subscribe(
        self,
        callback: Callable[[Notification], None] | str | None = None,
        legacy_sensor: str | None = None,
        /,
        *,
        devices: str | Sequence[str] | None = None,
        sensors: str | Sequence[str] | None = None,
        kinds: str | Sequence[str] = NOTIFICATION_KINDS,
        **legacy: Any,
    ) -> Callable[[], None]:
        """Call ``callback(Notification)`` on the service thread; return a canceller.

        ``devices``/``sensors`` (one id or several; ``None`` matches any) and ``kinds``
        (``readings``, ``alert`` and/or ``connectivity``) filter. To consume in another
        thread (a notebook), pass ``queue.Queue().put`` as the callback.
        """
        return self.subscribers.subscribe(
            callback, legacy_sensor, devices=devices, sensors=sensors, kinds=kinds, **legacy
        )

    def add_alert_handler(self, handler: Callable[[Alert], None]) -> Callable[[], None]:
        """Call ``handler(alert)`` once per new anomaly episode; return a remover."""
        self._alert_handlers.append(handler)
        return lambda: (
            self._alert_handlers.remove(handler) if handler in self._alert_handlers else None
        )

    def warm(self, at: TimeLike | None = None) -> int:
        """Fit the scorer's forecasts for data time ``at`` (default: now) before readings
        arrive, so the first batch does not wait for every sensor's fit; call it before
        :meth:`start`. Returns how many sensors got a forecast (0 without scoring)."""
        if self.scoring is None:
            return 0
        return self.scoring.warm(pd.Timestamp.now(tz="UTC") if at is None else at)

    # -- input (any thread) ----------------------------------------------------------------------
    def submit(
        self,
        readings: pd.DataFrame,
        *,
        source: str = "dataframe",
        ack: Callable[[], None] | None = None,
    ) -> None:
        """Queue a frame of readings; ``ack()`` is called once they are stored."""
        self._inbox.put(("frame", time.monotonic(), readings, source, False, ack))

    def submit_metrics(
        self,
        heartbeats: pd.DataFrame,
        *,
        source: str = "dataframe",
        ack: Callable[[], None] | None = None,
    ) -> None:
        """Queue a frame of heartbeats (``device_id, ts, cpu, memory, battery, signal``)."""
        self._inbox.put(("frame", time.monotonic(), heartbeats, source, True, ack))

    def submit_message(
        self, topic: str, payload: bytes, ack: Callable[[], None] | None = None
    ) -> None:
        """Queue one raw MQTT message; ``ack()`` is called once it is stored or dead-lettered."""
        self._inbox.put(("messages", time.monotonic(), [topic], [payload], ack))

    def submit_messages(
        self,
        topics: list[str],
        payloads: list[bytes],
        ack: Callable[[], None] | None = None,
    ) -> None:
        """Queue raw MQTT messages; ``ack()`` is called once all are stored or dead-lettered."""
        self._inbox.put(("messages", time.monotonic(), topics, payloads, ack))

    def submit_parsed(
        self, messages: ParsedMessages, ack: Callable[[], None] | None = None
    ) -> None:
        """Queue MQTT messages already parsed (by the MQTT receiver process); ``ack()`` is
        called once all are stored or dead-lettered. Their topic root must be the service's."""
        self._inbox.put(("parsed", time.monotonic(), messages, ack))

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> IngestionService:
        """Start the service thread; return ``self``."""
        if self._thread is not None:
            raise RuntimeError("the service is already running")
        self._rollup_pool = ThreadPoolExecutor(1, thread_name_prefix="iotlab-rollups")
        self._guard.started()
        self._thread = threading.Thread(target=self._run, name="iotlab-ingest", daemon=True)
        self._thread.start()
        return self

    def flush(self, timeout: float | None = 30.0) -> None:
        """Process everything queued so far, now; wait until it is stored."""
        with self._flushed:
            wanted = self._flush_count + 1
            self._inbox.put(_FLUSH)
            if not self._flushed.wait_for(
                lambda: self._flush_count >= wanted or not self.running, timeout
            ):
                raise TimeoutError(f"flush did not finish within {timeout} s")

    def stop(self, timeout: float | None = 60.0) -> None:
        """Process what is buffered, then stop the thread. Idempotent."""
        if self._thread is None:
            return
        self._guard.stopping.set()  # ends a wait for the store; what waited stays unacked
        self._inbox.put(_STOP)
        self._thread.join(timeout)
        self._thread = None
        if self._rollup_pool is not None:
            self._rollup_pool.shutdown(wait=True)
            self._rollup_pool = None
        if self.error is None:
            self._guard.set_state("stopped")

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def add_source(self, source: Any) -> None:
        """Let :attr:`status` report ``source``'s backlog: its ``consumer_lag`` (Kafka) or
        ``queue_depth`` (MQTT). Sources call this when they start."""
        if source not in self._sources:
            self._sources.append(source)

    @property
    def status(self) -> ServiceStatus:
        """The service's state and health now (see :class:`ServiceStatus`)."""
        status = self._guard.status()
        if not self._sources:
            return status
        links = [s.connected for s in self._sources if hasattr(s, "connected")]
        connected = all(links) if links else None
        return dataclasses.replace(
            status,
            healthy=status.healthy and connected is not False,
            consumer_lag=self._backlog("consumer_lag"),
            queue_depth=self._backlog("queue_depth"),
            broker_connected=connected,
        )

    def _backlog(self, name: str) -> int | None:
        """The sum of the sources' ``name`` (``None`` if none of them knows it)."""
        values = [getattr(s, name) for s in self._sources if hasattr(s, name)]
        known = [int(v) for v in values if v is not None]
        return sum(known) if known else None

    def __enter__(self) -> IngestionService:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the service thread ----------------------------------------------------------------------
    def _run(self) -> None:
        batch = PendingBatch(root=self.topic_root, max_payload=self.max_payload)
        last_check = time.monotonic()
        held = None  # a flush or stop met while taking what was waiting; handled next
        try:
            while True:
                if held is not None:
                    item, held = held, None
                else:
                    item = self._next_item(batch)
                if item is _STOP or item is _FLUSH:
                    self._process(batch)
                    self._refresh_rollups(wait=True)
                    batch = PendingBatch(root=self.topic_root, max_payload=self.max_payload)
                    self._check_connectivity()
                    with self._flushed:
                        self._flush_count += 1
                        self._flushed.notify_all()
                    if item is _STOP:
                        return
                    continue
                if item is not None:
                    self._add(batch, item)
                due = batch.size and time.monotonic() - batch.opened >= self.max_delay
                if batch.size >= self.batch_size or due:
                    held = self._take_waiting(batch)
                    self._process(batch)
                    batch = PendingBatch(root=self.topic_root, max_payload=self.max_payload)
                now = time.monotonic()
                if now - self._last_rollup >= self.rollup_every:
                    self._refresh_rollups()
                if self.connectivity_every is not None and now - last_check >= (
                    self.connectivity_every
                ):
                    last_check = now
                    self._check_connectivity()
        except Abandoned as exc:
            logger.warning(
                "stopped while the store was unavailable (%s): what was not stored is "
                "not acknowledged, and its source delivers it again",
                exc,
            )
            with self._flushed:
                self._flushed.notify_all()
        except BaseException as exc:  # the thread dies loudly; the owner sees .error
            logger.exception("ingestion service stopped by an error")
            self.error = exc
            self._guard.set_state("failed", f"{type(exc).__name__}: {exc}")
            with self._flushed:
                self._flushed.notify_all()

    def _next_item(self, batch: PendingBatch) -> Any:
        """The next inbox item, or ``None`` once the batch or a roll-up refresh is due."""
        timeout = None
        if batch.size:
            timeout = max(0.0, batch.opened + self.max_delay - time.monotonic())
        elif self.connectivity_every is not None:
            timeout = self.connectivity_every
        # While a refresh runs, its end wakes this thread (_WAKE): a due refresh must not
        # turn the wait into a spin that takes the CPU the refresh and the store need.
        running = self._rollup_job is not None and not self._rollup_job.done()
        if (self._unacked or self._unrolled) and not running:
            due = max(0.0, self._last_rollup + self.rollup_every - time.monotonic())
            timeout = due if timeout is None else min(timeout, due)
        try:
            item = self._inbox.get(timeout=timeout)
        except queue.Empty:
            return None
        return None if item is _WAKE else item

    def _take_waiting(self, batch: PendingBatch) -> Any:
        """Add what is already queued to a due batch, up to ``batch_size``; return a flush
        or stop met on the way (the caller handles it after this batch).

        Items wait in the inbox while the previous batch is processed; their batch is due
        ``max_delay`` after the first of them *arrived*, so under load a batch is what
        came in during the last one, taken at once, and a reading never waits for a
        processing time plus a full ``max_delay`` more.
        """
        while batch.size < self.batch_size:
            try:
                item = self._inbox.get_nowait()
            except queue.Empty:
                return None
            if item is _STOP or item is _FLUSH:
                return item
            if item is not _WAKE:
                self._add(batch, item)
        return None

    @staticmethod
    def _add(batch: PendingBatch, item: tuple) -> None:
        if item[0] == "parsed":
            _, arrived, messages, ack = item
            batch.add_parsed(messages, arrived=arrived)
        elif item[0] == "messages":
            _, arrived, topics, payloads, ack = item
            for topic, payload in zip(topics, payloads):
                batch.add_message(topic, payload, arrived=arrived)
        else:
            _, arrived, frame, source, metrics, ack = item
            batch.add_frame(frame, source, metrics=metrics, arrived=arrived)
        if ack is not None:
            batch.acks.append(ack)

    def _process(self, batch: PendingBatch) -> None:
        if batch.size == 0:
            return
        began = time.perf_counter()
        # Validation reads the provisioned keys; retried as a whole, it is not scored twice.
        readings, heartbeats, letters, scored, anomalies, dead = self._guard.call(
            lambda: self._prepare(batch), "validating a batch"
        )
        self._guard.call(
            lambda: self._store_batch(readings, heartbeats, letters, anomalies), "writing a batch"
        )
        alerts = self._alerts(anomalies)
        if len(readings):
            self._unrolled.append(readings[["device_id", "sensor_id", "ts", "value"]])
        self._unacked.extend(batch.acks)
        self._advance_clock(readings, heartbeats)
        self.stats.batches += 1
        self.stats.readings_written += len(readings)
        self.stats.heartbeats_written += len(heartbeats)
        self.stats.dead_letters += len(dead)
        self.stats.busy_seconds += time.perf_counter() - began
        for alert in alerts:
            for handler in list(self._alert_handlers):
                try:
                    handler(alert)
                except Exception:
                    logger.exception("alert handler %r failed", handler)
            self.subscribers.publish(
                Notification("alert", alert.device_id, alert.sensor_id, alert)
            )
        self.subscribers.publish_readings(scored)

    def _prepare(self, batch: PendingBatch) -> tuple:
        """Validate and score a batch: what :meth:`_store_batch` writes."""
        dead = list(batch.dead)
        readings = self._validated(batch.reading_parts(), "readings", dead)
        heartbeats = self._validated(batch.metric_parts(), "device_metrics", dead)
        if len(readings):
            readings = readings.sort_values(
                ["device_id", "sensor_id", "ts"], kind="stable", ignore_index=True
            )
        letters = pd.DataFrame()
        if dead:
            received = pd.Timestamp.now(tz="UTC").floor("ms")
            sources, topics, payloads, reasons = zip(*dead)
            letters = dead_letter_rows(sources, topics, payloads, reasons, received)
        # Scored before it is written, so that everything the batch stores goes out
        # together: one wait for the store, not one per table.
        scored = (
            self.scoring.score(readings)
            if self.scoring is not None and len(readings)
            else (readings)
        )
        anomalies = self._anomaly_rows(scored)
        return readings, heartbeats, letters, scored, anomalies, dead

    def _store_batch(
        self,
        readings: pd.DataFrame,
        heartbeats: pd.DataFrame,
        letters: pd.DataFrame,
        anomalies: pd.DataFrame,
    ) -> None:
        """Write a prepared batch (upserts: a retry after a partial write is harmless)."""
        from iotlab.store.heartbeat_rollups import refresh_heartbeat_rollups

        self.store.write_tables(
            {
                "readings": readings,
                "device_metrics": heartbeats,
                "dead_letters": letters,
                "anomalies": anomalies,
                "anomalies_by_day": anomalies,
            }
        )
        if len(heartbeats):
            refresh_heartbeat_rollups(self.store, heartbeats)

    def _refresh_rollups(self, *, wait: bool = False) -> None:
        """Hand the readings stored since the last refresh, and their acks, to the
        roll-up thread; with ``wait`` (flush, stop) finish everything here and now.

        One refresh runs at a time; while it runs, batches go on being stored and the
        next refresh takes all of them. Its waits on the store overlap the next batch.
        """
        if self._rollup_job is not None:
            if not (wait or self._rollup_job.done()):
                return
            self._rollup_job.result()  # its error, if any, stops the service here
            self._rollup_job = None
        unrolled, unacked = self._unrolled, self._unacked
        self._unrolled, self._unacked = [], []
        self._last_rollup = time.monotonic()
        if not (unrolled or unacked):
            return
        if wait or self._rollup_pool is None:
            self._rollup_and_ack(unrolled, unacked)
        else:
            self._rollup_job = self._rollup_pool.submit(self._rollup_and_ack, unrolled, unacked)
            self._rollup_job.add_done_callback(lambda _: self._inbox.put(_WAKE))

    def _rollup_and_ack(
        self, unrolled: list[pd.DataFrame], unacked: list[Callable[[], None]]
    ) -> None:
        began = time.perf_counter()
        if unrolled:
            written = pd.concat(unrolled, ignore_index=True)
            # A redelivered reading may sit in two batches: count it once, as stored.
            written = written.drop_duplicates(["device_id", "sensor_id", "ts"], keep="last")
            self._guard.call(
                lambda: refresh_rollups(
                    self.store,
                    written,
                    memory=self._rollup_memory,
                    concurrent=self.shared_sensors,
                ),
                "refreshing roll-ups",
            )
        for ack in unacked:  # everything is durable now, roll-ups included
            ack()
        self.stats.rollup_seconds += time.perf_counter() - began

    def _validated(self, parts: list[Part], table: str, dead: list) -> pd.DataFrame:
        from iotlab.store.validate import NOT_PROVISIONED, validate_metrics, validate_readings

        validate = validate_readings if table == "readings" else validate_metrics
        not_after = None
        if self.max_future is not None:
            not_after = pd.Timestamp.now(tz="UTC") + self.max_future
        clean_frames = []
        for part in parts:
            known = self._known(table) if self.require_provisioned else None
            clean, rejected = validate(
                part.frame,
                self.store,
                require_provisioned=self.require_provisioned,
                known=known,
                not_after=not_after,
            )
            if self.require_provisioned and (rejected["reason"] == NOT_PROVISIONED[table]).any():
                # Provisioned since the copy was taken? Look again before refusing.
                clean, rejected = validate(
                    part.frame,
                    self.store,
                    known=self._known(table, max_age=0.0),
                    not_after=not_after,
                )
            clean_frames.append(clean)
            for row, reason in zip(rejected["row"], rejected["reason"]):
                dead.append((*part.letter(int(row)), part.reason(int(row), str(reason))))
        if not clean_frames:
            return pd.DataFrame()
        return (
            pd.concat(clean_frames, ignore_index=True)
            if len(clean_frames) > 1
            else (clean_frames[0])
        )

    def _known(self, table: str, *, max_age: float = KNOWN_MAX_AGE) -> pd.DataFrame:
        """The service's copy of the provisioned keys for ``table``'s rows.

        Reading the projection for every batch would cost a table scan per batch; the
        copy is re-read when older than ``max_age`` seconds, and when a batch names a
        key it lacks (so a sensor provisioned a moment ago is never refused).
        """
        from iotlab.store.validate import provisioned_keys

        cached = self._known_keys.get(table)
        if cached is None or time.monotonic() - cached[1] > max_age:
            cached = (provisioned_keys(self.store, table), time.monotonic())
            self._known_keys[table] = cached
        return cached[0]

    def _anomaly_rows(self, scored: pd.DataFrame) -> pd.DataFrame:
        """The ``anomalies`` rows of a scored batch's flagged readings, oldest first."""
        if "is_anomaly" not in scored.columns or not scored["is_anomaly"].any():
            return pd.DataFrame()
        flagged = scored[scored["is_anomaly"].to_numpy()].sort_values("ts", kind="stable")
        rows = pd.DataFrame(
            {
                "device_id": flagged["device_id"].to_numpy(dtype=object),
                "ts": flagged["ts"].to_numpy(),
                "sensor_id": flagged["sensor_id"].to_numpy(dtype=object),
                **{
                    c: flagged[c].to_numpy(dtype=float)
                    for c in ("value", "expected", "lower", "upper", "score", "confidence")
                },
                "severity": flagged["severity"].astype(str).to_numpy(dtype=object),
                "status": "open",
                # The model that scored each row: a fallback is named as itself.
                "detector": (
                    flagged["detector"].to_numpy(dtype=object)
                    if "detector" in flagged.columns
                    else self.scoring.name
                    if self.scoring is not None
                    else ""
                ),
            }
        )
        rows["ts"] = flagged["ts"].to_numpy()
        rows["ts"] = rows["ts"].dt.tz_localize("UTC") if rows["ts"].dt.tz is None else rows["ts"]
        return rows

    def _alerts(self, rows: pd.DataFrame) -> list[Alert]:
        """One alert per new anomaly episode among stored anomaly ``rows`` (an ongoing
        episode, flagged again within ``alert_gap``, raises none)."""
        self.stats.anomalies += len(rows)
        starts = []
        record: Any  # a row of ``rows``: its fields are typed by the columns, not statically
        for record in rows.itertuples(index=False):
            key = (record.device_id, record.sensor_id)
            last = self._last_flagged.get(key)
            self._last_flagged[key] = record.ts
            if last is not None and record.ts - last <= self.alert_gap:
                continue  # the same ongoing episode: stored, not alerted again
            starts.append(record)
        if self.shared_sensors and starts:
            # The same episode, alerted by the worker that got its start.
            elsewhere = self._flagged_elsewhere(starts)
            starts = [r for r, seen in zip(starts, elsewhere) if not seen]
        alerts = [
            Alert(
                r.device_id,
                r.sensor_id,
                r.ts,
                r.value,
                r.expected,
                r.lower,
                r.upper,
                r.score,
                r.confidence,
                r.severity,
                r.detector,
            )
            for r in starts
        ]
        self.stats.alerts += len(alerts)
        return alerts

    def _flagged_elsewhere(self, records: list[Any]) -> list[bool]:
        """For each anomaly record: whether the store holds an anomaly of its sensor
        within ``alert_gap`` before it. With ``shared_sensors``, another worker may have
        stored the start of an episode this worker's memory never saw. One read per
        device. (Two workers flagging an episode's first readings within one batch's
        time of each other may both alert.)"""
        earlier: dict[str, pd.DataFrame] = {}
        for device_id in {r.device_id for r in records}:
            times = [r.ts for r in records if r.device_id == device_id]
            read = functools.partial(
                self.store.read_rows,
                "anomalies",
                {"device_id": device_id},
                start=min(times) - self.alert_gap,
                end=max(times),
            )
            earlier[device_id] = self._guard.call(read, "checking for ongoing anomaly episodes")
        seen = []
        for r in records:
            stored = earlier[r.device_id]
            before = (stored["ts"] < r.ts) & (stored["ts"] >= r.ts - self.alert_gap)
            seen.append(bool((before & (stored["sensor_id"] == r.sensor_id)).any()))
        return seen

    def _advance_clock(self, readings: pd.DataFrame, heartbeats: pd.DataFrame) -> None:
        latest = [f["ts"].max() for f in (readings, heartbeats) if len(f)]
        if latest:
            # Never ahead of the wall clock: a device dated in the future (within
            # max_future, or with no limit) must not move every other device's silence.
            newest = min(max(latest), pd.Timestamp.now(tz="UTC").floor("ms"))
            if self._data_now is None or newest > self._data_now:
                self._data_now = newest

    def _check_connectivity(self) -> None:
        if self.connectivity_every is None or self._data_now is None:
            return
        try:
            events = update_connectivity(
                self.repository, now=self._data_now, timeout=self.heartbeat_timeout
            )
        except StoreUnavailableError as exc:  # judged again at the next check
            logger.warning("connectivity check skipped: %s", exc)
            return
        for record in events.to_dict("records"):
            self.subscribers.publish(
                Notification("connectivity", record["device_id"], None, record)
            )

    def throughput(self) -> float:
        """Readings written per second of processing time so far (0 before any batch)."""
        busy = self.stats.busy_seconds
        return self.stats.readings_written / busy if busy else 0.0
