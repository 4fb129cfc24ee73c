"""``iotlab serve``: run the ingestion service on an MQTT broker and/or a Kafka topic until
SIGINT/SIGTERM.

Workers scale out: several ``iotlab serve`` processes with the same ``--group`` share the
stream (Kafka: a consumer group sharing the topic's partitions; MQTT: the shared
subscription ``$share/<group>/<root>/#``, each worker with its own ``--client-id``). Each
logs its consumer lag (Kafka) or queue depth (MQTT): one that keeps growing asks for
another worker.

Also runnable as ``python -m iotlab.ingest serve ...``. On SIGINT or SIGTERM it stops
taking messages, stores and acknowledges what it holds, and exits 0. Throughput and the
service's state are logged every ``--log-every`` seconds.

It survives what it can: a bad message is a dead letter; a store outage pauses input
(the broker keeps the messages) and the service resumes by itself; a receiver process
that dies is restarted. It exits 1 when it cannot go on: a fatal store error, a
receiver that keeps dying, or an outage longer than ``--outage-limit``.

Examples
--------
>>> import argparse
>>> parser = argparse.ArgumentParser(prog="iotlab")
>>> add_serve_parser(parser.add_subparsers())
>>> parser.parse_args(["serve", "--mqtt", "mqtt://127.0.0.1:1883"]).batch_size
5000
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

__all__ = ["add_serve_parser", "main", "run_serve"]

logger = logging.getLogger("iotlab.serve")


#: ``iotlab.ingest.scoring.DETECTORS``, spelled out so that ``--help`` needs no pandas.
SERVE_DETECTORS = ("prophet", "zscore")


def _without_driver_tracebacks(record: logging.LogRecord) -> bool:
    """Keep the driver's own log lines but not the tracebacks it logs for a failed
    request: during an outage the service says what failed, where and what it does next
    (``store unavailable ... retrying``), and a raw traceback beside it reads as a crash."""
    if record.exc_info and record.exc_info[0] is not None:
        record.msg = f"{record.getMessage()} {record.exc_info[0].__name__}: {record.exc_info[1]}"
        record.args = None
        record.exc_info = None
        record.exc_text = None
    return True


def add_serve_parser(subparsers: Any, parents: Sequence[argparse.ArgumentParser] = ()) -> None:
    """Add the ``serve`` subcommand to an ``argparse`` subparsers object."""
    serve = subparsers.add_parser(
        "serve",
        parents=list(parents),
        help="ingest readings and heartbeats from MQTT and/or Kafka until interrupted",
        description="Subscribe to <root>/# (MQTT: QoS 1, persistent session) and/or consume "
        "a Kafka topic, store readings and heartbeats, score them, record anomalies and "
        "dead letters. Workers with the same --group share the stream. SIGINT/SIGTERM "
        "flush and exit 0.",
    )
    if not any(a.dest == "store" for p in parents for a in p._actions):
        serve.add_argument("--store", metavar="URL", help="store URL (default: $IOTLAB_STORE)")
    serve.add_argument("--mqtt", metavar="URL", help="mqtt://host:port")
    serve.add_argument("--kafka", metavar="URL", help="kafka://host:port[,host:port]")
    serve.add_argument("--topic", default="iotlab", help="Kafka topic to consume (iotlab)")
    serve.add_argument(
        "--group",
        metavar="NAME",
        help="workers with the same group share the stream: the Kafka consumer group "
        "(default iotlab-ingest); on MQTT the shared subscription $share/NAME/<root>/# "
        "(default: none)",
    )
    serve.add_argument(
        "--client-id",
        default="iotlab-ingest",
        help="stable MQTT client id: the broker keeps its session (iotlab-ingest)",
    )
    serve.add_argument("--topic-root", default="iotlab", help="first topic level (iotlab)")
    serve.add_argument("--batch-size", type=int, default=5000, help="rows per batch (5000)")
    serve.add_argument(
        "--max-delay",
        type=float,
        default=0.5,
        help="seconds before a partial batch is written (0.5)",
    )
    serve.add_argument("--no-scoring", action="store_true", help="do not score readings")
    serve.add_argument(
        "--detector",
        choices=SERVE_DETECTORS,
        default="prophet",
        help="model that scores readings: 'prophet' (Prophet forecast residuals, as "
        "score_online; the rolling z-score for sensors with under 2 days of history, "
        "named in their anomaly rows) or 'zscore' (a 2 h rolling robust z-score) (prophet)",
    )
    serve.add_argument(
        "--refit-every",
        default=None,
        help="data time between refits of a sensor's model (prophet: 1D, zscore: 30min)",
    )
    serve.add_argument(
        "--heartbeat-timeout",
        default="10min",
        help="silence before a device is marked offline (10min)",
    )
    serve.add_argument(
        "--allow-unprovisioned",
        action="store_true",
        help="accept readings of sensors that were never provisioned",
    )
    serve.add_argument(
        "--log-every", type=float, default=10.0, help="seconds between throughput log lines (10)"
    )
    serve.add_argument(
        "--max-payload",
        type=int,
        default=1 << 20,
        help="largest message parsed, in bytes; larger ones are dead letters (1048576)",
    )
    serve.add_argument(
        "--max-future",
        default="5min",
        help="how far past the wall clock a reading may be dated, or 'none' (5min)",
    )
    serve.add_argument(
        "--retry-max",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="longest wait between retries while the store is unavailable (30)",
    )
    serve.add_argument(
        "--outage-limit",
        type=float,
        default=None,
        metavar="SECONDS",
        help="give up (exit 1) after a store outage this long (default: wait for ever)",
    )
    serve.add_argument(
        "--webhook",
        action="append",
        default=[],
        metavar="URL",
        help="POST each alert as JSON to URL, with retries (repeatable)",
    )
    serve.add_argument(
        "--alert-log", action="store_true", help="log each alert (logger iotlab.alerts)"
    )
    serve.set_defaults(run=run_serve)


def run_serve(args: argparse.Namespace) -> int:
    """Run the service until SIGINT/SIGTERM; return the exit status."""
    import iotlab
    from iotlab.errors import ConfigurationError
    from iotlab.ingest.kafka import KafkaSource, parse_kafka_url
    from iotlab.ingest.mqtt import MqttSource, parse_mqtt_url
    from iotlab.ingest.runtime import settle_heap
    from iotlab.ingest.scoring import ForecastCache

    if not (args.mqtt or args.kafka):
        raise ConfigurationError("iotlab serve needs a source: --mqtt URL and/or --kafka URL")
    # A bad URL fails now, not after minutes of fitting forecasts.
    if args.mqtt:
        parse_mqtt_url(args.mqtt)
    if args.kafka:
        parse_kafka_url(args.kafka)
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=logging.INFO,
            stream=sys.stderr,
            format="%(asctime)s %(name)s %(levelname)s %(message)s",
        )
    logging.getLogger("cassandra.cluster").addFilter(_without_driver_tracebacks)
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        logger.info("received %s: flushing and stopping", signal.Signals(signum).name)
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        with iotlab.connect(args.store) as lab:
            scoring = (
                None
                if args.no_scoring
                else ForecastCache(lab.store, detector=args.detector, refit_every=args.refit_every)
            )
            service = lab.ingestion_service(
                batch_size=args.batch_size,
                max_delay=args.max_delay,
                scoring=scoring,
                require_provisioned=not args.allow_unprovisioned,
                heartbeat_timeout=args.heartbeat_timeout,
                topic_root=args.topic_root,
                max_payload=args.max_payload,
                max_future=None if args.max_future.lower() == "none" else args.max_future,
                outage_limit=args.outage_limit,
                retry_max=args.retry_max,
                # A shared subscription spreads each sensor over the workers.
                shared_sensors=bool(args.mqtt and args.group),
            )
            channels = _alert_channels(service, args)
            if scoring is not None and args.mqtt and args.group:
                logger.warning(
                    "scoring on the MQTT shared subscription %r: each worker sees only its "
                    "share of a sensor's readings, so a stuck sensor is found later; for "
                    "live detection across workers, use Kafka (a sensor's records stay "
                    "with one worker)",
                    args.group,
                )
            if scoring is not None:
                logger.info("fitting %s forecasts", scoring.name)
                logger.info("fitted %d sensors' forecasts", service.warm())
            settle_heap()
            service.start()
            sources: list[MqttSource | KafkaSource] = []
            if args.mqtt:
                mqtt = MqttSource(
                    service,
                    args.mqtt,
                    client_id=args.client_id,
                    topic_root=args.topic_root,
                    share_group=args.group,
                )
                sources.append(mqtt.start())
            if args.kafka:
                group = args.group or "iotlab-ingest"
                kafka = KafkaSource(service, args.kafka, topic=args.topic, group_id=group)
                sources.append(kafka.start())
            urls = " + ".join(u for u in (args.mqtt, args.kafka) if u)
            logger.info("serving %s -> %s", urls, lab.store.url)
            _log_until(stop, service, sources, args.log_every)
            for source in sources:
                source.pause()
            service.stop()
            for source in sources:
                source.stop()
            failed = [s.error for s in sources if s.error is not None]
            for channel in channels:
                channel.close()  # send the alerts still queued
            stats = service.stats
            logger.info(
                "stopped: %d readings, %d heartbeats, %d dead letters, %d anomalies, %d alerts",
                stats.readings_written,
                stats.heartbeats_written,
                stats.dead_letters,
                stats.anomalies,
                stats.alerts,
            )
            if service.error is not None or failed:
                logger.error("exiting 1: %s", service.error or failed[0])
                return 1
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def _alert_channels(service: Any, args: argparse.Namespace) -> list[Any]:
    """Attach ``--webhook`` and ``--alert-log`` channels; return the webhooks to close."""
    from iotlab.ingest.channels import LogChannel, WebhookChannel

    webhooks = [WebhookChannel(url) for url in getattr(args, "webhook", [])]
    for channel in webhooks:
        service.add_alert_handler(channel)
    if getattr(args, "alert_log", False):
        service.add_alert_handler(LogChannel())
    return webhooks


def _log_until(stop: threading.Event, service: Any, sources: list[Any], every: float) -> None:
    last_time, last_count = time.monotonic(), 0
    while not stop.wait(min(every, 1.0)):
        if service.error is not None or any(s.error is not None for s in sources):
            return
        now = time.monotonic()
        if now - last_time >= every:
            count = service.stats.readings_written
            status = service.status
            backlog = "".join(  # how far behind: the sign to add a worker
                f", {name.replace('_', ' ')} {value}"
                for name in ("consumer_lag", "queue_depth")
                if (value := getattr(status, name)) is not None
            )
            if status.broker_connected is False:
                backlog += ", BROKER UNREACHABLE (nothing is received)"
            logger.info(
                "%s: %.0f readings/s (%d stored, %d dead letters, %d alerts, "
                "%d store outages, %d receiver restarts%s)",
                status.state,
                (count - last_count) / (now - last_time),
                count,
                service.stats.dead_letters,
                service.stats.alerts,
                status.outages,
                sum(getattr(s, "restarts", 0) for s in sources),
                backlog,
            )
            last_time, last_count = now, count


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m iotlab.ingest serve ...``."""
    parser = argparse.ArgumentParser(prog="python -m iotlab.ingest")
    add_serve_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.run(args))
