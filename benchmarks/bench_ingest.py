"""MQTT -> store ingestion: sustained throughput and publish-to-stored latency.

The simulator streams a fleet (default 200 devices, 4 sensors each: 800 readings per
minute of data) as fast as it can; a publisher thread sends every reading to the broker
(QoS 1) and notes when; an in-process ``IngestionService`` with an ``MqttSource`` stores
and scores them; a subscriber notes when each reading was stored. The baseline, in the
same run, is ``ingest_readings`` of the same rows directly (no broker, no scoring).

    IOTLAB_TEST_MQTT=127.0.0.1:11884 .venv/bin/python benchmarks/bench_ingest.py \
        --store sqlite:///tmp/bench.db
    ... --store "cassandra://127.0.0.1:9042/bench_ingest?replication_factor=1"

Targets: >= 5,000 readings/s sustained, p99 publish-to-stored latency < 1 s.
"""

from __future__ import annotations

import argparse
import os
import time
import uuid

import numpy as np
import pandas as pd
from _fleets import four_sensor_types, load_average

import iotlab
from iotlab.ingest import IngestionService
from iotlab.ingest.mqtt import MqttSource
from iotlab.ingest.publisher import Publisher
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--store", required=True)
    parser.add_argument(
        "--mqtt", default="mqtt://" + os.environ.get("IOTLAB_TEST_MQTT", "127.0.0.1:1883")
    )
    parser.add_argument("--devices", type=int, default=200, help="200 x 4 sensors = 800 series")
    parser.add_argument("--minutes", type=int, default=60, help="minutes of data to stream")
    parser.add_argument("--batch-size", type=int, default=5000)
    parser.add_argument("--no-scoring", action="store_true")
    args = parser.parse_args()
    fleet = four_sensor_fleet(args.devices, seed=11)
    start = pd.Timestamp.now(tz="UTC").ceil("D")
    frames = list(fleet.stream(start, freq="1min", days=args.minutes / 1440, speed=None))
    total = sum(len(f) for f in frames)
    print(f"stream: {len(frames)} batches, {total} readings; {load_average()}")

    with iotlab.connect(args.store) as lab:
        lab.provision(fleet)
        # -- baseline: the same rows, straight into the store --------------------------------
        began, cpu0 = time.perf_counter(), time.process_time()
        for frame in frames:
            ingest_readings(lab.store, frame, progress=False)
        base = total / (time.perf_counter() - began)
        print(
            f"baseline ingest_readings (no broker, no scoring): {base:,.0f} readings/s, "
            f"CPU {time.process_time() - cpu0:.1f} s; {load_average()}"
        )

        # -- MQTT -> service -> store, shifted a day so nothing is already stored ------------
        shift = pd.Timedelta("1D")
        sent_at: dict[tuple[str, str, int], float] = {}
        latencies: list[np.ndarray] = []
        stored_count = [0]

        def on_readings(note) -> None:
            now = time.perf_counter()
            data = note.data
            ms = data["ts"].to_numpy("datetime64[ms]").astype(np.int64)
            lat = [
                now - sent_at.pop((d, s, t), now)
                for d, s, t in zip(data["device_id"], data["sensor_id"], ms)
            ]
            latencies.append(np.asarray(lat))
            stored_count[0] += len(data)

        service = IngestionService(
            lab,
            batch_size=args.batch_size,
            max_delay=0.2,
            scoring=None if args.no_scoring else "default",
            connectivity_every=None,
        )
        service.subscribe(callback=on_readings, kinds=("readings",))
        service.start()
        source = MqttSource(service, args.mqtt, client_id=f"bench-{uuid.uuid4().hex[:6]}")
        source.start()
        began, cpu0 = time.perf_counter(), time.process_time()
        with Publisher(args.mqtt) as publisher:
            for frame in frames:
                frame = frame.assign(ts=frame["ts"] + shift)
                now = time.perf_counter()
                ms = frame["ts"].to_numpy("datetime64[ms]").astype(np.int64)
                for key in zip(frame["device_id"], frame["sensor_id"], ms):
                    sent_at[key] = now
                publisher.publish_readings(frame)
        published = time.perf_counter() - began
        deadline = time.monotonic() + 120
        while stored_count[0] < total and time.monotonic() < deadline:
            time.sleep(0.05)
        elapsed = time.perf_counter() - began
        cpu = time.process_time() - cpu0
        source.pause()
        service.stop()
        source.stop()
        lat = np.concatenate(latencies) if latencies else np.array([np.nan])
        rate = stored_count[0] / elapsed
        print(f"published {total} in {published:.1f} s ({total / published:,.0f} msg/s)")
        print(
            f"MQTT -> {lab.store.scheme}: {stored_count[0]} stored in {elapsed:.1f} s = "
            f"{rate:,.0f} readings/s sustained ({rate / base:.2f}x baseline); "
            f"batches {service.stats.batches}, anomalies {service.stats.anomalies}, "
            f"alerts {service.stats.alerts}; process CPU {cpu:.1f} s (publisher, broker "
            f"client and service), service busy {service.stats.busy_seconds:.1f} s; "
            f"{load_average()}"
        )
        print(
            f"publish-to-stored latency: p50 {np.percentile(lat, 50) * 1000:.0f} ms, "
            f"p99 {np.percentile(lat, 99) * 1000:.0f} ms"
        )
        print(
            f"targets: >= 5,000 readings/s: {'met' if rate >= 5000 else 'NOT met'}; "
            f"p99 < 1 s: {'met' if np.percentile(lat, 99) < 1 else 'NOT met'}"
        )


if __name__ == "__main__":
    main()
