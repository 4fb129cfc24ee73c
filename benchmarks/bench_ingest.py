"""MQTT -> store ingestion: sustained throughput and publish-to-stored latency.

The simulator streams a fleet (default 200 devices, 4 sensors each: 800 readings per
minute of data). A publisher in its own process, as devices would be, sends every
reading to the broker (QoS 1, one JSON message per reading; ``--per device``: one per
device and minute, its sensors' readings together, as a device that reads them at once
sends them) and notes when; an
``IngestionService`` in this process, fed by an ``MqttSource`` (whose MQTT client runs in
a child process of its own), stores and scores them; a subscriber notes when each
reading was stored (wall clock, comparable across the two
processes). The baseline, in the same run, is ``ingest_readings`` of the same rows
straight into the store (no broker, no scoring).

The stream is cut into three consecutive stretches of ``--minutes`` each: the first is
stored directly (the baseline; also the history the scorer fits on), then two phases
follow, each on the next stretch, so each has the stored readings of the hour before it
and its readings are scored from the first one on. As ``iotlab serve`` does, the service
fits its forecasts before the first reading arrives (``IngestionService.warm``).

- **flood**: the publisher sends as fast as it can; the rate at which readings are
  stored is the sustained throughput. If the publisher outruns the service, messages
  queue in the broker and latency grows with the queue, so latency is measured in:
- **paced**: the publisher sends at ``--rate`` readings/s (default 10,000), evenly; the
  publish-to-stored latency p50/p99 is what a reading waits at that load.

    IOTLAB_TEST_MQTT=127.0.0.1:11884 .venv/bin/python benchmarks/bench_ingest.py \\
        --store "cassandra://127.0.0.1:9042/bench_ingest?replication_factor=1"
    ... --store sqlite:////tmp/bench.db

Targets: >= 10,000 readings/s sustained, p99 publish-to-stored latency < 1 s at
10,000 readings/s, on a 2-core machine that also runs the broker, the Cassandra node and
the publisher. Each message costs paho-mqtt (pure Python) ~100 us of CPU to send and as
much to receive, so one message per reading cannot reach that here; ``--per device``
(4 readings per message) can.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import time
import uuid

import numpy as np
import pandas as pd
from _fleets import four_sensor_types, load_average, machine_busy_seconds, process_cpu_seconds

import iotlab
from iotlab.ingest.mqtt import MqttSource
from iotlab.ingest.runtime import settle_heap
from iotlab.simulate import Fleet
from iotlab.store.ingest import ingest_readings


def four_sensor_fleet(n: int, seed: int) -> Fleet:
    fleet = Fleet(n, seed=seed, device_types=four_sensor_types())
    counts = fleet.sensors.groupby("device_id").size()
    print(
        f"fleet: {n} devices, {len(fleet.sensors)} sensors "
        f"({counts.min()}-{counts.max()} per device)"
    )
    return fleet


def publish(url: str, frames: list[pd.DataFrame], rate: float, per: str, go, results) -> None:
    """Publisher process: wait for ``go``, publish every frame, return the send times."""
    from iotlab.ingest.publisher import Publisher

    sent = []
    with Publisher(url) as publisher:
        go.wait()
        began = time.time()
        done = 0
        for frame in frames:
            if rate:  # paced: hold each frame until its turn
                delay = began + done / rate - time.time()
                if delay > 0:
                    time.sleep(delay)
            sent.append(time.time())
            publisher.publish_readings(frame, per=per)
            done += len(frame)
        publisher.wait(120)
        acked = time.time()
    results.put((began, np.asarray(sent), acked, time.process_time()))


def run_phase(lab, args, frames: list[pd.DataFrame], rate: float, label: str) -> dict:
    total = sum(len(f) for f in frames)
    context = multiprocessing.get_context("spawn")  # this process has driver threads
    go, results = context.Event(), context.Queue()
    publisher = context.Process(
        target=publish, args=(args.mqtt, frames, rate, args.per, go, results)
    )
    publisher.start()

    stored_at: list[tuple[np.ndarray, float]] = []

    def on_readings(note) -> None:
        ts = note.data["ts"].to_numpy("datetime64[ms]").astype(np.int64)
        stored_at.append((ts, time.time()))

    service = lab.ingestion_service(
        batch_size=args.batch_size,
        max_delay=args.max_delay,
        scoring=None if args.no_scoring else "default",
        connectivity_every=None,
        max_future=None,  # the stream is dated in the future, in partitions of its own
    )
    service.subscribe(on_readings, kinds=("readings",))
    # As `iotlab serve` does: forecasts are fitted before the first reading arrives, and
    # what lives on is then left out of full garbage collections.
    warm_began = time.perf_counter()
    warmed = service.warm(frames[0]["ts"].iloc[0])
    warm_seconds = time.perf_counter() - warm_began
    settle_heap()
    service.start()
    source = MqttSource(service, args.mqtt, client_id=f"bench-{uuid.uuid4().hex[:6]}").start()
    cpu0 = time.process_time()
    receiver0 = process_cpu_seconds(source._process.pid)
    busy0 = machine_busy_seconds()
    go.set()
    began, sent, acked, publisher_cpu = results.get(timeout=600)
    publisher.join()
    deadline = time.time() + 120
    while sum(len(ts) for ts, _ in stored_at) < total and time.time() < deadline:
        time.sleep(0.02)
    receiver_cpu = process_cpu_seconds(source._process.pid) - receiver0
    busy = machine_busy_seconds() - busy0
    source.pause()
    service.stop()
    source.stop(end_session=True)
    cpu = time.process_time() - cpu0
    if service.error is not None:
        raise service.error

    # Each frame is one minute of data: a reading's send time is its frame's.
    frame_ts = np.array([f["ts"].iloc[0].value // 1_000_000 for f in frames])
    stored_ts = np.concatenate([ts for ts, _ in stored_at]) if stored_at else np.array([])
    stored_time = np.concatenate([np.full(len(ts), t) for ts, t in stored_at]) if stored_at else []
    frame_of = np.searchsorted(frame_ts, stored_ts, side="right") - 1
    latency = np.asarray(stored_time) - sent[frame_of]
    stored = len(stored_ts)
    elapsed = (max(stored_time) if stored else time.time()) - began
    rate_stored = stored / elapsed
    stats = service.stats
    print(
        f"{label}: published {total} in {sent[-1] - began:.1f} s "
        f"({total / max(acked - began, 1e-9):,.0f} readings/s acknowledged by the broker); "
        f"stored {stored} in {elapsed:.1f} s = {rate_stored:,.0f} readings/s; "
        f"batches {stats.batches}, anomalies {stats.anomalies}, alerts {stats.alerts}; "
        f"service busy {stats.busy_seconds:.1f} s (after fitting {warmed} sensors' "
        f"forecasts in {warm_seconds:.1f} s); {load_average()}"
    )
    print(
        f"{label}: CPU seconds: service {cpu:.1f}, MQTT receiver {receiver_cpu:.1f}, "
        f"publisher {publisher_cpu:.1f}, the whole machine {busy:.1f} "
        f"({busy / total * 1e6:.0f} us per reading)"
    )
    p50, p99 = np.percentile(latency, [50, 99]) if stored else (np.nan, np.nan)
    print(f"{label}: publish-to-stored latency p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms")
    return {"rate": rate_stored, "p50": p50, "p99": p99, "stored": stored, "total": total}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--store", required=True)
    parser.add_argument(
        "--mqtt", default="mqtt://" + os.environ.get("IOTLAB_TEST_MQTT", "127.0.0.1:1883")
    )
    parser.add_argument("--devices", type=int, default=200, help="200 x 4 sensors = 800 series")
    parser.add_argument("--minutes", type=int, default=60, help="minutes of data per phase")
    parser.add_argument("--rate", type=float, default=10000, help="paced phase, readings/s")
    parser.add_argument("--batch-size", type=int, default=5000)
    parser.add_argument("--max-delay", type=float, default=0.2)
    parser.add_argument("--no-scoring", action="store_true")
    parser.add_argument(
        "--per",
        choices=("reading", "device"),
        default="reading",
        help="a message per reading (default), or per device and minute",
    )
    args = parser.parse_args()
    fleet = four_sensor_fleet(args.devices, seed=11)
    start = pd.Timestamp.now(tz="UTC").ceil("D") + pd.Timedelta(f"{uuid.uuid4().int % 300}D")
    stream = list(fleet.stream(start, freq="1min", days=3 * args.minutes / 1440, speed=None))
    frames, flood_frames, paced_frames = (
        stream[i * args.minutes : (i + 1) * args.minutes] for i in range(3)
    )
    total = sum(len(f) for f in frames)
    print(f"stream: 3 x {len(frames)} one-minute frames, 3 x {total} readings; {load_average()}")

    with iotlab.connect(args.store) as lab:
        lab.provision(fleet)
        began, cpu0 = time.perf_counter(), time.process_time()
        for frame in frames:  # also the history the live scorer fits on
            ingest_readings(lab.store, frame, progress=False)
        base = total / (time.perf_counter() - began)
        print(
            f"baseline ingest_readings per one-minute frame (no broker, no scoring): "
            f"{base:,.0f} readings/s, CPU {time.process_time() - cpu0:.1f} s; {load_average()}"
        )
        flood = run_phase(lab, args, flood_frames, 0, "flood")
        paced = run_phase(lab, args, paced_frames, args.rate, f"paced at {args.rate:,.0f}/s")
    lost = flood["total"] - flood["stored"] + paced["total"] - paced["stored"]
    print(
        f"sustained (flood) {flood['rate']:,.0f} readings/s = {flood['rate'] / base:.2f}x "
        f"baseline; target >= 10,000: {'met' if flood['rate'] >= 10000 else 'NOT met'}"
    )
    print(
        f"p99 latency at {args.rate:,.0f}/s: {paced['p99'] * 1000:.0f} ms; target < 1 s: "
        f"{'met' if paced['p99'] < 1 else 'NOT met'}; readings not stored: {lost}"
    )


if __name__ == "__main__":
    main()
