"""Live scoring with Prophet against the rolling z-score: readings/s end-to-end, one run.

A 4-sensor fleet (default 25 devices: 100 series at one reading a minute) gets
``--history-days`` of readings stored directly. Then the next ``--minutes`` of data go
through the whole live path twice, once per detector, each time with a fresh
``ForecastCache`` and ``IngestionService``: a publisher process sends every reading to
the MQTT broker as fast as it can (QoS 1, one JSON message each), the service receives,
validates, scores, stores and acknowledges them. The rate at which readings are stored
is the sustained throughput; the ratio Prophet / z-score is what the Prophet detector
costs on the live path.

As ``iotlab serve`` does, each service fits its models before the first reading arrives
(``IngestionService.warm``): for Prophet one fit per sensor (two while it has no
out-of-sample errors yet), timed separately, since it happens once per ``refit_every``
(one day) per sensor, not per reading. The streamed stretch starts at a refit point
(midnight UTC) and stays within the day, so the phases measure steady-state scoring.

The scoring alone (``ForecastCache.score`` on the same stretch in ``--batch-size``
batches, no broker and no store writes) is timed too, for both detectors.

    IOTLAB_TEST_MQTT=127.0.0.1:1883 .venv/bin/python benchmarks/bench_live_detect.py \\
        --store "cassandra://127.0.0.1:9042/bench_live?replication_factor=1"
    ... --store sqlite:////tmp/bench-live.db

Target: >= 5,000 readings/s end-to-end with Prophet.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import os
import time
import uuid

import numpy as np
import pandas as pd
from _fleets import four_sensor_types, load_average
from bench_ingest import _cpu_seconds, publish

import iotlab
from iotlab.ingest.mqtt import MqttSource
from iotlab.ingest.runtime import settle_heap
from iotlab.ingest.scoring import ForecastCache
from iotlab.simulate import Fleet
from iotlab.store.ingest import ingest_readings


def flood(lab, args, frames: list[pd.DataFrame], detector: str) -> dict:
    """Publish ``frames`` as fast as possible; return the stored rate and details."""
    total = sum(len(f) for f in frames)
    context = multiprocessing.get_context("spawn")  # this process has driver threads
    go, results = context.Event(), context.Queue()
    publisher = context.Process(target=publish, args=(args.mqtt, frames, 0, go, results))
    publisher.start()
    cache = ForecastCache(lab.store, detector=detector)
    service = lab.ingestion_service(
        batch_size=args.batch_size,
        max_delay=args.max_delay,
        scoring=cache,
        connectivity_every=None,
        max_future=None,
    )
    warm_began = time.perf_counter()
    warmed = service.warm(frames[0]["ts"].iloc[0])
    warm_seconds = time.perf_counter() - warm_began
    settle_heap()
    service.start()
    source = MqttSource(service, args.mqtt, client_id=f"bench-{uuid.uuid4().hex[:6]}").start()
    cpu0, receiver0 = time.process_time(), _cpu_seconds(source._process.pid)
    go.set()
    began, _, _, publisher_cpu = results.get(timeout=900)
    publisher.join()
    deadline = time.time() + 300
    while service.stats.readings_written < total and time.time() < deadline:
        time.sleep(0.02)
    stored_at = time.time()
    cpu = time.process_time() - cpu0
    receiver_cpu = _cpu_seconds(source._process.pid) - receiver0
    source.pause()
    service.stop()
    source.stop(end_session=True)
    if service.error is not None:
        raise service.error
    stored = service.stats.readings_written
    rate = stored / (stored_at - began)
    print(
        f"{detector}: stored {stored} of {total} in {stored_at - began:.1f} s = {rate:,.0f} "
        f"readings/s; batches {service.stats.batches}, anomalies {service.stats.anomalies}; "
        f"warm: {warmed} sensors' forecasts in {warm_seconds:.1f} s "
        f"({cache.refits} fits); {load_average()}"
    )
    print(
        f"{detector}: CPU seconds while streaming: service process {cpu:.1f} "
        f"({1000 * cpu / max(stored, 1):.3f} per 1,000 readings; busy in batches "
        f"{service.stats.busy_seconds:.1f} s), MQTT receiver {receiver_cpu:.1f}, "
        f"publisher {publisher_cpu:.1f}"
    )
    return {"rate": rate, "stored": stored, "total": total, "cpu": cpu, "receiver": receiver_cpu}


def scoring_only(lab, frames: list[pd.DataFrame], detector: str, batch_size: int) -> float:
    """Readings/s of ``ForecastCache.score`` alone (after warming), in ``batch_size`` rows."""
    rows = pd.concat(frames, ignore_index=True)
    cache = ForecastCache(lab.store, detector=detector)
    cache.warm(rows["ts"].iloc[0])
    began = time.perf_counter()
    names = []
    for lo in range(0, len(rows), batch_size):
        names.append(cache.score(rows.iloc[lo : lo + batch_size])["detector"])
    seconds = time.perf_counter() - began
    counts = pd.concat(names).value_counts().to_dict()
    print(f"{detector}: scoring alone {len(rows) / seconds:,.0f} readings/s; rows by {counts}")
    return len(rows) / seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--store", required=True)
    parser.add_argument(
        "--mqtt", default="mqtt://" + os.environ.get("IOTLAB_TEST_MQTT", "127.0.0.1:1883")
    )
    parser.add_argument("--devices", type=int, default=25, help="25 x 4 sensors = 100 series")
    parser.add_argument("--history-days", type=float, default=3.0)
    parser.add_argument("--minutes", type=int, default=240, help="minutes of data streamed")
    parser.add_argument("--batch-size", type=int, default=5000)
    parser.add_argument("--max-delay", type=float, default=0.2)
    args = parser.parse_args()
    logging.getLogger("cmdstanpy").setLevel(logging.WARNING)
    fleet = Fleet(args.devices, seed=17, device_types=four_sensor_types())
    # A start a whole number of days ahead: the streamed stretch begins at midnight UTC.
    live_start = pd.Timestamp.now(tz="UTC").ceil("D") + pd.Timedelta(
        f"{uuid.uuid4().int % 300 + int(np.ceil(args.history_days))}D"
    )
    start = live_start - pd.Timedelta(f"{args.history_days}D")
    history = fleet.simulate(start, days=args.history_days, freq="1min").readings
    frames = list(fleet.stream(live_start, freq="1min", days=args.minutes / 1440, speed=None))
    total = sum(len(f) for f in frames)
    print(
        f"fleet: {args.devices} devices, {len(fleet.sensors)} series; history "
        f"{len(history)} readings ({args.history_days} days); streamed {total} readings "
        f"({args.minutes} min from {live_start}); {load_average()}"
    )
    with iotlab.connect(args.store) as lab:
        lab.provision(fleet)
        began = time.perf_counter()
        ingest_readings(lab.store, history, progress=False)
        print(f"history stored in {time.perf_counter() - began:.1f} s")
        alone = {d: scoring_only(lab, frames, d, args.batch_size) for d in ("zscore", "prophet")}
        rates = {d: flood(lab, args, frames, d)["rate"] for d in ("zscore", "prophet")}
    print(
        f"scoring alone: prophet {alone['prophet']:,.0f} readings/s, zscore "
        f"{alone['zscore']:,.0f} readings/s, ratio {alone['prophet'] / alone['zscore']:.2f}"
    )
    print(
        f"end-to-end (MQTT -> stored): prophet {rates['prophet']:,.0f} readings/s, zscore "
        f"{rates['zscore']:,.0f} readings/s, ratio {rates['prophet'] / rates['zscore']:.2f}; "
        f"target >= 5,000 with prophet: {'met' if rates['prophet'] >= 5000 else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
