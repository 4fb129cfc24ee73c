"""Kafka in and out: the service's consumer source, a publisher, and a consumer group's lag.

The wire format is MQTT's (:mod:`iotlab.ingest.messages`) with the topic levels below the
root moved into the message key: a record keyed ``<device_id>/<sensor_id>`` carries one
reading, one keyed ``<device_id>/heartbeat`` one heartbeat, and its value is the same
JSON payload as on MQTT; a value may carry several as a JSON array, and a record keyed
``<device_id>`` a device's readings of several sensors. Keying by sensor (or device)
sends each sensor's readings to one partition, in order. A record without a key, or with
a malformed one, is a dead letter.

:class:`KafkaSource` consumes a topic as a member of a consumer group, so that several
``iotlab serve`` processes with the same group share its partitions (Kafka gives each
partition to one member and moves them when a member joins, leaves or dies). Offsets are
committed only once the service has stored the records before them, roll-ups included
(the same point at which MQTT messages are acknowledged): a worker killed with kill -9
leaves its uncommitted records to the member that gets its partitions next, which
stores them again; writes are upserts, so at-least-once delivery is exactly-once storage.

URLs are ``kafka://host:port[,host:port...]`` (port 9092 by default). Needs the ``kafka``
extra (``confluent-kafka``, librdkafka's Python binding, which ships as a wheel).

Examples
--------
>>> parse_kafka_url("kafka://127.0.0.1:19092,127.0.0.2")
'127.0.0.1:19092,127.0.0.2:9092'
>>> parse_kafka_url("mqtt://x")
Traceback (most recent call last):
...
iotlab.errors.InvalidURLError: Kafka URL must look like kafka://host:port[,host:port], got 'mqtt://x'
"""

from __future__ import annotations

import logging
import queue
import re
import threading
import time
from typing import Any, Literal
from urllib.parse import urlsplit

import pandas as pd

from iotlab.errors import InvalidURLError, MissingDependencyError, StoreConnectionError

__all__ = [
    "KafkaPublisher",
    "KafkaSource",
    "consumer_group_lag",
    "create_topic",
    "parse_kafka_url",
]

logger = logging.getLogger(__name__)

#: Records taken from the client at a time (one parsed chunk handed to the service).
CHUNK_RECORDS = 2000
#: Seconds a broker may hear nothing from a member before giving its partitions to the
#: others (the broker's smallest allowed value): how long a killed worker's partitions
#: wait.
SESSION_TIMEOUT_MS = 6000
#: Seconds between refreshes of the consumer lag.
LAG_EVERY = 1.0
#: Seconds between checks that the brokers are back, once all were unreachable.
BROKER_CHECK_EVERY = 1.0


def parse_kafka_url(url: str) -> str:
    """The ``bootstrap.servers`` list of a ``kafka://host:port[,host:port]`` URL."""
    parts = urlsplit(url)
    hosts = [h for h in parts.netloc.split(",") if h] if parts.scheme == "kafka" else []
    servers = []
    for host in hosts:
        name, _, port = host.rpartition(":") if ":" in host else (host, "", "9092")
        if not name or not port.isdigit():
            hosts = []
            break
        servers.append(f"{name}:{port}")
    if not hosts or parts.path not in ("", "/"):
        raise InvalidURLError(
            f"Kafka URL must look like kafka://host:port[,host:port], got {url!r}"
        )
    return ",".join(servers)


class _ClientLog:
    """Where librdkafka's own log lines go: logger ``iotlab.kafka.client``, its warnings
    as INFO. It warns of what it retries by itself (a broker restarting, a group
    coordinator loading, a commit overtaken by a rebalance); what iotlab cannot ride out
    reaches the source as an error, which says so.

    A line like one logged in the last ``quiet`` seconds (the same but for its numbers)
    is counted, not logged: while a broker is down, librdkafka retries its connection
    many times a second, and each attempt would have been a line of the service's log.
    The next such line logged says how many were left out.
    """

    def __init__(self, quiet: float = 30.0) -> None:
        self.logger = logging.getLogger("iotlab.kafka.client")
        self.quiet = quiet
        self._seen: dict[str, tuple[float, int]] = {}  # shape -> (logged at, left out since)
        self._lock = threading.Lock()

    def log(self, level: int, message: str, *args: Any) -> None:
        try:
            text = message % args if args else message
        except (TypeError, ValueError):  # not a format string after all: keep every part
            text = " ".join(map(str, (message, *args)))
        shape = re.sub(r"\d+", "#", text)
        now = time.monotonic()
        with self._lock:
            logged_at, left_out = self._seen.get(shape, (-self.quiet, 0))
            if now - logged_at < self.quiet:
                self._seen[shape] = (logged_at, left_out + 1)
                return
            if len(self._seen) > 1000:  # shapes of lines long past
                self._seen.clear()
            self._seen[shape] = (now, 0)
        if left_out:
            text += f" ({left_out} more like it in the last {now - logged_at:.0f} s)"
        self.logger.log(logging.INFO if level == logging.WARNING else level, "%s", text)


def _confluent() -> Any:
    try:
        import confluent_kafka
    except ImportError as exc:
        raise MissingDependencyError("confluent-kafka", "kafka") from exc
    return confluent_kafka


class KafkaSource:
    """Feed an :class:`~iotlab.ingest.IngestionService` from a Kafka topic, as a member of
    a consumer group; see the module doc.

    A thread of this process runs the consumer: it takes records in chunks of up to
    :data:`CHUNK_RECORDS`, parses them (:class:`~iotlab.ingest.batch.ParsedMessages`,
    source ``"kafka"``) and hands each chunk to ``service.submit_parsed`` with an ack that
    marks its offsets stored; the thread commits the marked offsets. It holds back (pauses
    its partitions, staying in the group) while the service is not accepting (a store
    outage) or while ``max_in_flight`` records are handed over and not yet stored.

    Before it gives partitions up in a rebalance it lets the service store what it holds
    and commits that, so the next owner starts where this one stopped.

    Parameters
    ----------
    service
        The service whose ``submit_parsed`` receives the records.
    url
        ``kafka://host:port[,host:port]``.
    topic
        The topic to consume.
    group_id
        The consumer group: workers with the same group share the topic's partitions.
    topic_root
        The root put before each key to make an MQTT-style topic (default the service's).
    max_in_flight
        Most records handed to the service and not yet stored (default four batches).
    config
        Extra librdkafka settings for the consumer (e.g. security options).
    """

    def __init__(
        self,
        service: Any,
        url: str,
        *,
        topic: str = "iotlab",
        group_id: str = "iotlab-ingest",
        topic_root: str | None = None,
        max_in_flight: int | None = None,
        config: dict[str, Any] | None = None,
    ) -> None:
        self.servers = parse_kafka_url(url)
        self.service = service
        self.url = url
        self.topic = topic
        self.group_id = group_id
        self.root: str = topic_root or str(getattr(service, "topic_root", "iotlab"))
        self.max_payload = getattr(service, "max_payload", None)
        batch = int(getattr(service, "batch_size", 5000))
        self.max_in_flight = max_in_flight or max(4 * batch, 4 * CHUNK_RECORDS)
        self.config = dict(config or {})
        self.received = 0  # records taken from the broker
        self.stored = 0  # ... of which the service has stored (committed or to be)
        self.rebalances = 0  # partition assignments received
        self.error: str | None = None  # why the consumer stopped, if it did
        self.connected = False  # to the brokers: False while none answers
        self.reconnects = 0  # times the brokers came back after all were unreachable
        self._checked_at = 0.0  # last check that the brokers are back
        self._consumer: Any = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        # ({partition: next offset}, records) per stored chunk
        self._acked: queue.SimpleQueue[tuple[dict[int, int], int]] = queue.SimpleQueue()
        self._to_commit: dict[int, int] = {}
        self._assigned: set[int] = set()
        self._next_stored: dict[int, int] = {}  # partition -> first offset not yet stored
        self._high: dict[int, int] = {}  # partition -> high watermark, last seen
        self._lag: int | None = None
        self._lag_at = 0.0
        self._paused = False

    # -- public -----------------------------------------------------------------------------------
    @property
    def assignment(self) -> list[int]:
        """The partitions this worker holds now."""
        return sorted(self._assigned)

    @property
    def alive(self) -> bool:
        """Whether records can flow: started, not failed, not stopped."""
        return self._thread is not None and self._thread.is_alive() and self.error is None

    @property
    def in_flight(self) -> int:
        """Records handed to the service and not yet stored."""
        return self.received - self.stored

    @property
    def consumer_lag(self) -> int | None:
        """Records in this worker's partitions not yet stored (the broker's high watermark
        minus the next offset to store, summed), refreshed every :data:`LAG_EVERY`
        seconds; ``None`` before the first refresh. When it grows, add a worker."""
        return self._lag

    def start(self, timeout: float = 30.0) -> KafkaSource:
        """Connect, join the group, subscribe and start consuming; return ``self``.

        Raises :class:`~iotlab.errors.StoreConnectionError` if no broker answers within
        ``timeout`` seconds.
        """
        kafka = _confluent()
        settings = {
            "bootstrap.servers": self.servers,
            "group.id": self.group_id,
            "enable.auto.commit": False,  # committed once stored, by this class
            "auto.offset.reset": "earliest",  # a new group reads the topic from its start
            "session.timeout.ms": SESSION_TIMEOUT_MS,
            "heartbeat.interval.ms": SESSION_TIMEOUT_MS // 3,
            "partition.assignment.strategy": "range",
            "fetch.wait.max.ms": 50,
            "client.id": f"iotlab-serve-{self.group_id}",
            "error_cb": self._on_client_error,
            **self.config,
        }
        self._consumer = kafka.Consumer(settings, logger=_ClientLog())
        try:
            self._consumer.list_topics(timeout=timeout)
        except kafka.KafkaException as exc:
            self._consumer.close()
            self._consumer = None
            raise StoreConnectionError(f"no Kafka broker answered at {self.url}: {exc}") from exc
        self.connected = True
        self._consumer.subscribe(
            [self.topic], on_assign=self._on_assign, on_revoke=self._on_revoke
        )
        if hasattr(self.service, "add_source"):
            self.service.add_source(self)
        self._thread = threading.Thread(target=self._run, name="iotlab-kafka-source", daemon=True)
        self._thread.start()
        logger.info("consuming %s on %s in group %s", self.topic, self.url, self.group_id)
        return self

    def pause(self) -> None:
        """Take no new records (they stay in the topic, uncommitted)."""
        self._stopping.set()

    def stop(self) -> None:
        """Stop consuming, commit what was stored and leave the group.

        Call ``service.stop()`` (or ``flush()``) between :meth:`pause` and this, so that
        what was already taken is stored first and its offsets are committed here.
        """
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(30)
            self._thread = None
        if self._consumer is not None:
            self._commit(wait=True)
            self._consumer.close()  # leaves the group: the others get the partitions now
            self._consumer = None

    # -- the consumer thread ------------------------------------------------------------------
    def _run(self) -> None:
        try:
            self._consume()
        except Exception as exc:  # never a silent stall: iotlab serve exits 1 on it
            self.error = f"Kafka source failed: {type(exc).__name__}: {exc}"
            logger.exception("Kafka source failed")

    def _consume(self) -> None:
        from iotlab.ingest.batch import ParsedMessages
        from iotlab.ingest.messages import MAX_PAYLOAD_BYTES

        kafka = _confluent()
        max_payload = self.max_payload or MAX_PAYLOAD_BYTES
        accepting = getattr(self.service, "accepting", None)
        while not self._stopping.is_set():
            self._check_brokers()
            self._commit()
            self._refresh_lag()
            hold = self.in_flight >= self.max_in_flight or (
                accepting is not None and not accepting.is_set()
            )
            self._hold(hold)
            records = self._consumer.consume(CHUNK_RECORDS, timeout=0.05 if not hold else 0.2)
            if not records:
                continue
            parsed = ParsedMessages(self.root, max_payload, "kafka")
            ends: dict[int, int] = {}
            for record in records:
                problem = record.error()
                if problem is not None:
                    if problem.code() == kafka.KafkaError._PARTITION_EOF:
                        continue
                    if problem.fatal():
                        raise kafka.KafkaException(problem)
                    logger.warning("Kafka consumer: %s", problem)
                    continue
                key = record.key()
                name = key.decode("utf-8", "surrogateescape") if key is not None else ""
                parsed.add(f"{self.root}/{name}", record.value() or b"")
                partition, offset = record.partition(), record.offset()
                ends[partition] = max(ends.get(partition, -1), offset + 1)
                high = self._high.get(partition, -1)
                if offset + 1 > high:
                    self._high[partition] = offset + 1
            if not ends:
                continue
            count = len(parsed)
            self.received += count
            self.service.submit_parsed(
                parsed, ack=lambda ends=ends, n=count: self._acked.put((ends, n))
            )

    def _on_client_error(self, error: Any) -> None:
        """librdkafka's errors (it retries them itself); all brokers down is the one a
        user must hear of: logged once, and :attr:`connected` is False until they answer."""
        kafka = _confluent()
        if error.code() == kafka.KafkaError._ALL_BROKERS_DOWN and self.connected:
            self.connected = False
            self._checked_at = time.monotonic()
            logger.error(
                "no Kafka broker at %s answers (%s): retrying; nothing is received "
                "meanwhile, and the records wait in the topic",
                self.url,
                error.str(),
            )

    def _check_brokers(self) -> None:
        """Once all brokers were down, ask every :data:`BROKER_CHECK_EVERY` seconds for the
        topic's metadata: the first answer means they are back."""
        if self.connected or time.monotonic() - self._checked_at < BROKER_CHECK_EVERY:
            return
        self._checked_at = time.monotonic()
        try:
            self._consumer.list_topics(self.topic, timeout=BROKER_CHECK_EVERY / 2)
        except _confluent().KafkaException:
            return
        self.connected = True
        self.reconnects += 1
        logger.warning("Kafka broker at %s answers again: consuming %s", self.url, self.topic)

    def _hold(self, hold: bool) -> None:
        """Pause the assigned partitions while the service cannot take more (the consumer
        stays in the group: paused, it still answers the broker); resume after."""
        if hold == self._paused:
            return
        partitions = self._consumer.assignment()
        if hold:
            self._consumer.pause(partitions)
        else:
            self._consumer.resume(partitions)
        self._paused = hold

    def _commit(self, *, wait: bool = False) -> None:
        """Commit the offsets the service has acknowledged as stored."""
        kafka = _confluent()
        while True:
            try:
                ends, n = self._acked.get_nowait()
            except queue.Empty:
                break
            self.stored += n
            for partition, offset in ends.items():
                if offset > self._to_commit.get(partition, -1):
                    self._to_commit[partition] = offset
                if offset > self._next_stored.get(partition, -1):
                    self._next_stored[partition] = offset
        # Only partitions held now: a revoked one's new owner commits its own progress.
        offsets = [
            kafka.TopicPartition(self.topic, p, o)
            for p, o in self._to_commit.items()
            if p in self._assigned
        ]
        self._to_commit.clear()
        if not offsets:
            return
        try:
            self._consumer.commit(offsets=offsets, asynchronous=not wait)
        except kafka.KafkaException as exc:  # e.g. mid-rebalance: redelivered, not lost
            logger.warning("offset commit failed (the records may be stored again): %s", exc)

    def _refresh_lag(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._lag_at < LAG_EVERY:
            return
        self._lag_at = now
        kafka = _confluent()
        lag = 0
        for partition in list(self._assigned):
            tp = kafka.TopicPartition(self.topic, partition)
            try:
                _, high = self._consumer.get_watermark_offsets(tp, cached=True)
                if high is None or high < 0:
                    _, high = self._consumer.get_watermark_offsets(tp, timeout=1.0)
            except kafka.KafkaException:
                high = self._high.get(partition, 0)
            high = max(high, self._high.get(partition, 0))
            lag += max(0, high - self._next_stored.get(partition, high))
        self._lag = lag

    def _on_assign(self, consumer: Any, partitions: list[Any]) -> None:
        """Runs inside ``consume``: note the new partitions and where each starts."""
        self.rebalances += 1
        self._assigned = {tp.partition for tp in partitions}
        self._paused = False  # a new assignment starts unpaused
        try:
            committed = consumer.committed(partitions, timeout=10)
        except Exception:  # the lag is unknown until records arrive; no harm done
            committed = []
        for tp in committed:
            if tp.offset >= 0:
                self._next_stored[tp.partition] = tp.offset
            else:  # nothing committed: the group reads from the start
                low, _ = consumer.get_watermark_offsets(tp, timeout=5)
                self._next_stored[tp.partition] = low
        logger.info(
            "assigned partitions %s of %s (group %s)",
            self.assignment,
            self.topic,
            self.group_id,
        )
        self._refresh_lag(force=True)

    def _on_revoke(self, consumer: Any, partitions: list[Any]) -> None:
        """Runs inside ``consume``: store what was taken from these partitions and commit
        it, so that their next owner starts where this worker stopped."""
        if self.in_flight and getattr(self.service, "running", False):
            try:
                self.service.flush(timeout=20)
            except TimeoutError:  # e.g. a store outage: the next owner stores them again
                logger.warning("partitions revoked before their records were stored")
        self._commit(wait=True)
        logger.info(
            "revoked partitions %s of %s", sorted(tp.partition for tp in partitions), self.topic
        )
        self._assigned -= {tp.partition for tp in partitions}
        for tp in partitions:
            self._next_stored.pop(tp.partition, None)


def consumer_group_lag(
    url: str, *, topic: str, group_id: str, timeout: float = 10.0
) -> pd.DataFrame:
    """A consumer group's lag on a topic, per partition, as the broker sees it.

    Columns ``partition, committed, end, lag`` (``committed`` is -1 where the group has
    committed nothing; its lag is then the partition's whole retained length). What a
    notebook watches to see whether the workers keep up with the producers, whichever
    worker holds which partition.
    """
    kafka = _confluent()
    consumer = kafka.Consumer(
        {
            "bootstrap.servers": parse_kafka_url(url),
            "group.id": group_id,
            "enable.auto.commit": False,
            "logger": _ClientLog(),
        }
    )
    try:
        metadata = consumer.list_topics(topic, timeout=timeout)
        partitions = sorted(metadata.topics[topic].partitions) if topic in metadata.topics else []
        tps = [kafka.TopicPartition(topic, p) for p in partitions]
        committed = consumer.committed(tps, timeout=timeout) if tps else []
        rows = []
        for tp in committed:
            low, high = consumer.get_watermark_offsets(tp, timeout=timeout)
            start = tp.offset if tp.offset >= 0 else low
            rows.append((tp.partition, tp.offset if tp.offset >= 0 else -1, high, high - start))
    finally:
        consumer.close()
    return pd.DataFrame(rows, columns=["partition", "committed", "end", "lag"])


class KafkaPublisher:
    """Send readings and heartbeats to a Kafka topic (keyed records, acks from all in-sync
    replicas, idempotent); use as a context manager (waits for every delivery on exit).

    Parameters
    ----------
    url
        ``kafka://host:port[,host:port]``.
    topic
        The topic.
    config
        Extra librdkafka settings for the producer.
    """

    def __init__(
        self, url: str, *, topic: str = "iotlab", config: dict[str, Any] | None = None
    ) -> None:
        self.servers = parse_kafka_url(url)
        self.url = url
        self.topic = topic
        self.config = dict(config or {})
        self.sent = 0
        self.failed: list[str] = []  # delivery errors
        self._producer: Any = None

    def __repr__(self) -> str:
        return f"<KafkaPublisher {self.url} topic {self.topic}>"

    def __enter__(self) -> KafkaPublisher:
        kafka = _confluent()
        self._producer = kafka.Producer(
            {
                "logger": _ClientLog(),
                "bootstrap.servers": self.servers,
                "enable.idempotence": True,  # a retried send is not written twice
                "linger.ms": 5,
                "compression.type": "lz4",
                **self.config,
            }
        )
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self, timeout: float = 60.0) -> None:
        """Wait until the broker has every record; raise if some could not be delivered."""
        if self._producer is None:
            return
        left = self._producer.flush(timeout)
        self._producer = None
        if left:
            raise StoreConnectionError(
                f"{left} records not delivered to {self.url} in {timeout} s"
            )
        if self.failed:
            raise StoreConnectionError(
                f"{len(self.failed)} records not delivered to {self.url}: {self.failed[0]}"
            )

    def _delivered(self, error: Any, record: Any) -> None:
        if error is not None:
            self.failed.append(str(error))

    def send(self, key: str | None, payload: bytes | str) -> None:
        """Send one record (``key`` ``<device_id>/<sensor_id>`` or ``<device_id>/heartbeat``;
        a record with another key, or none, becomes a dead letter)."""
        while True:
            try:
                self._producer.produce(self.topic, payload, key, on_delivery=self._delivered)
                break
            except BufferError:  # the client's queue is full: let it drain
                self._producer.poll(0.05)
        self.sent += 1
        if self.sent % 1000 == 0:
            self._producer.poll(0)  # delivery reports

    def publish_readings(
        self, readings: pd.DataFrame, *, per: Literal["reading", "device"] = "reading"
    ) -> int:
        """Send readings; return how many. ``per="reading"`` (default): each keyed
        ``<device_id>/<sensor_id>``; ``per="device"``: each device's readings as one JSON
        array keyed ``<device_id>`` (see :func:`~iotlab.ingest.publisher.device_messages`).

        Keep to one of the two for a sensor: the key picks the partition, and a worker
        owns the sensors of its partitions (their roll-ups are refreshed by it alone).
        """
        from iotlab.ingest.publisher import keyed_messages

        for key, body in keyed_messages(readings, per):
            self.send(key, body)
        return len(readings)

    def publish_heartbeats(self, heartbeats: pd.DataFrame) -> int:
        """Send each heartbeat, keyed ``<device_id>/heartbeat``; return how many."""
        from iotlab.ingest.messages import HEARTBEAT
        from iotlab.ingest.publisher import heartbeat_messages

        for device, body in heartbeat_messages(heartbeats):
            self.send(f"{device}/{HEARTBEAT}", body)
        return len(heartbeats)


def create_topic(url: str, topic: str, *, partitions: int = 4, timeout: float = 30.0) -> bool:
    """Create ``topic`` with ``partitions`` partitions (one replica); ``False`` if it
    existed already. Workers share a topic's partitions: a topic with fewer partitions than
    workers leaves some workers idle."""
    kafka = _confluent()
    from confluent_kafka.admin import AdminClient, NewTopic

    # Typed as dict[str, Any]: the stubs allow only scalar settings, librdkafka's Python
    # binding also takes a logger object.
    settings: dict[str, Any] = {"bootstrap.servers": parse_kafka_url(url), "logger": _ClientLog()}
    admin = AdminClient(settings)
    future = admin.create_topics([NewTopic(topic, partitions, 1)], operation_timeout=timeout)[
        topic
    ]
    try:
        future.result(timeout)
    except kafka.KafkaException as exc:
        if exc.args[0].code() == kafka.KafkaError.TOPIC_ALREADY_EXISTS:
            return False
        raise StoreConnectionError(f"cannot create topic {topic} on {url}: {exc}") from exc
    return True
