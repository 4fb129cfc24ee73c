"""Kafka -> store with one ``iotlab serve`` worker, then two in one consumer group.

A fleet (default 200 devices, 4 sensors each) is simulated; each phase gets a fresh
4-partition topic and the next stretch of its stream (new data, so every phase does the
same work). After a warm-up phase that is not counted, phases of one and of two workers
alternate (``--rounds`` pairs), and the medians are compared: the machine's load drifts,
and the first minutes of a node's work (JIT, new tables) would otherwise fall on one
side. The workers are real ``iotlab serve --kafka`` processes, started and given
their partitions before the producer begins. The producer is a process of its own (as
devices, or a gateway, would be) that sends every reading as fast as it can, one keyed
record per reading (``--per device``: one record per device and minute, its sensors'
readings together). A phase ends when the group's committed offsets cover every record
(offsets are committed only once the readings, and their roll-ups, are stored); its
rate is readings / (last commit - first send): end-to-end, producer included. The
stored readings are then counted from the store: nothing may be missing. Each phase
also prints how busy the whole machine was and the CPU per reading of the workers, the
producer and the rest (broker, Cassandra node): two workers can only beat one by what
the machine had left while one ran.

    IOTLAB_TEST_KAFKA=127.0.0.1:19092 IOTLAB_TEST_CASSANDRA=127.0.0.1:19042 \\
        .venv/bin/python benchmarks/bench_kafka_workers.py [--detector zscore|prophet]

Readings are not scored by default (``--no-scoring``): this measures storage, the part that
scales with workers; ``--detector`` scores them as ``iotlab serve --detector`` does.

Targets: two workers >= 1.6x one worker, and >= 10,000 readings/s, on a 2-core machine
that also runs the broker, the Cassandra node and the producer.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
from _fleets import four_sensor_types, load_average, machine_busy_seconds, process_cpu_seconds

import iotlab
from iotlab.ingest.kafka import KafkaPublisher, create_topic
from iotlab.ingest.publisher import DEVICE_MESSAGE_READINGS
from iotlab.simulate import Fleet


def produce(url: str, topic: str, frames: list[pd.DataFrame], per: str, go, results) -> None:
    """Producer process: wait for ``go``, send every reading, report when it began/ended."""
    with KafkaPublisher(url, topic=topic) as publisher:
        go.wait()
        began = time.time()
        for frame in frames:
            publisher.publish_readings(frame, per=per)
        publisher.close()
        results.put((began, time.time(), time.process_time()))


class CommittedOffsets:
    """A consumer group's committed offsets on a topic, summed over its partitions, read
    with one client for the whole phase (a client per look costs the broker and this
    script a connection and a coordinator lookup every 0.1 s)."""

    def __init__(self, url: str, topic: str, group: str) -> None:
        import confluent_kafka

        from iotlab.ingest.kafka import parse_kafka_url

        self._consumer = confluent_kafka.Consumer(
            {"bootstrap.servers": parse_kafka_url(url), "group.id": group}
        )
        self._partitions = [confluent_kafka.TopicPartition(topic, p) for p in range(4)]

    def total(self) -> int:
        return sum(max(tp.offset, 0) for tp in self._consumer.committed(self._partitions, 10))

    def close(self) -> None:
        self._consumer.close()


def start_worker(args, topic: str, group: str, log: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "iotlab.ingest", "serve", "--kafka", args.kafka]
    command += ["--topic", topic, "--group", group, "--store", args.store]
    command += ["--batch-size", str(args.batch_size), "--max-delay", str(args.max_delay)]
    command += ["--max-future", "none", "--log-every", "5"]  # the stream is dated ahead
    if args.detector == "none":
        command.append("--no-scoring")
    else:
        command += ["--detector", args.detector]
    with log.open("w") as stderr:
        return subprocess.Popen(command, stderr=stderr, stdout=subprocess.DEVNULL)


def held(log: Path) -> list[int]:
    """The partitions a worker holds, from its last assignment line."""
    found = re.findall(r"assigned partitions \[([\d, ]*)\]", log.read_text())
    return [int(p) for p in found[-1].split(",") if p.strip()] if found else []


def run_phase(args, fleet: Fleet, frames: list[pd.DataFrame], n_workers: int, tmp: Path) -> dict:
    total = sum(len(f) for f in frames)
    records = total
    if args.per == "device":  # one record per device and frame (a minute of 4 sensors)
        records = sum(
            int((-(-f.groupby("device_id").size() // DEVICE_MESSAGE_READINGS)).sum())
            for f in frames
        )
    topic = f"bench-{uuid.uuid4().hex[:8]}"
    group = f"g-{topic}"
    create_topic(args.kafka, topic, partitions=4)
    logs = [tmp / f"{topic}-{i}.log" for i in range(n_workers)]
    workers = [start_worker(args, topic, group, log) for log in logs]
    label = f"{n_workers} worker{'s' * (n_workers > 1)}"
    try:
        deadline = time.time() + 300
        while not (all(held(log) for log in logs) and sum(len(held(log)) for log in logs) == 4):
            if time.time() > deadline or any(w.poll() is not None for w in workers):
                raise RuntimeError(f"{label} did not start: {logs[0].read_text()[-2000:]}")
            time.sleep(0.2)
        context = multiprocessing.get_context("spawn")
        go, results = context.Event(), context.Queue()
        producer = context.Process(
            target=produce, args=(args.kafka, topic, frames, args.per, go, results)
        )
        producer.start()
        time.sleep(2)  # the producer's imports and connection, before the clock starts
        busy0, workers0 = machine_busy_seconds(), [process_cpu_seconds(w.pid) for w in workers]
        go.set()
        committed = 0
        poller = CommittedOffsets(args.kafka, topic, group)  # one client, not one per look
        try:
            while committed < records:
                time.sleep(0.1)
                committed = poller.total()
                if time.time() > deadline + 600:
                    raise RuntimeError(f"{label}: only {committed} of {records} committed")
        finally:
            poller.close()
        done = time.time()
        busy = machine_busy_seconds() - busy0
        worker_cpu = sum(process_cpu_seconds(w.pid) for w in workers) - sum(workers0)
        began, sent, producer_cpu = results.get(timeout=60)
        producer.join()
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        for worker in workers:
            worker.wait(60)
    rate = total / (done - began)
    cores = os.cpu_count() or 1
    rest = busy - worker_cpu - producer_cpu
    print(
        f"{label}: the machine was {busy / (cores * (done - began)):.0%} busy; CPU per reading: "
        f"workers {worker_cpu / total * 1e6:.0f} us, producer {producer_cpu / total * 1e6:.0f} "
        f"us, the rest (broker, Cassandra node, this script) {rest / total * 1e6:.0f} us"
    )
    print(
        f"{label}: {total:,} readings in {records:,} records sent in {sent - began:.1f} s "
        f"({total / (sent - began):,.0f}/s, producer CPU {producer_cpu:.1f} s); all stored "
        f"and committed after {done - began:.1f} s = {rate:,.0f} readings/s; {load_average()}"
    )
    with iotlab.connect(args.store) as lab:
        stored = sum(
            len(
                lab.readings(
                    d,
                    start=frames[0]["ts"].min(),
                    end=frames[-1]["ts"].max() + pd.Timedelta("1min"),
                )
            )
            for d in fleet.devices["device_id"]
        )
    if stored != total:
        raise AssertionError(f"{label}: {stored} readings stored of {total} sent")
    return {"rate": rate, "total": total}


def drop_keyspace(contact: str, keyspace: str) -> None:
    from cassandra.cluster import Cluster

    host, _, port = contact.rpartition(":")
    cluster = Cluster([host], port=int(port))
    try:
        cluster.connect().execute(f"DROP KEYSPACE IF EXISTS {keyspace}", timeout=120)
    finally:
        cluster.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser()
    cassandra = os.environ.get("IOTLAB_TEST_CASSANDRA", "127.0.0.1:9042")
    own_keyspace = f"bench_kafka_{os.getpid()}"  # dropped at the end
    parser.add_argument(
        "--store", default=f"cassandra://{cassandra}/{own_keyspace}?replication_factor=1"
    )
    parser.add_argument(
        "--kafka", default="kafka://" + os.environ.get("IOTLAB_TEST_KAFKA", "127.0.0.1:9092")
    )
    parser.add_argument("--devices", type=int, default=200, help="200 x 4 sensors = 800 series")
    parser.add_argument("--minutes", type=int, default=120, help="minutes of data per phase")
    # A batch's roll-up refresh reads and writes one row per sensor-hour it touches, however
    # many readings it holds: batches of 20,000 (25 minutes of 800 sensors) pay it for
    # 4x the readings that 5,000 do (profiled: with 5,000 the workers waited on those reads).
    parser.add_argument("--batch-size", type=int, default=20000)
    parser.add_argument("--max-delay", type=float, default=0.5)
    parser.add_argument(
        "--detector",
        choices=("none", "zscore", "prophet"),
        default="none",
        help="how the workers score readings (default none: storage alone)",
    )
    parser.add_argument(
        "--per",
        choices=("reading", "device"),
        default="reading",
        help="a record per reading (default), or per device and minute",
    )
    parser.add_argument("--rounds", type=int, default=2, help="1-worker/2-worker pairs")
    args = parser.parse_args()
    fleet = Fleet(args.devices, seed=11, device_types=four_sensor_types())
    start = pd.Timestamp.now(tz="UTC").ceil("D") + pd.Timedelta(f"{uuid.uuid4().int % 300}D")
    warm = max(args.minutes // 4, 1)
    phases = [1, 2] * args.rounds
    days = (warm + len(phases) * args.minutes) / 1440
    stream = list(fleet.stream(start, freq="1min", days=days, speed=None))
    print(
        f"fleet: {args.devices} devices, {len(fleet.sensors)} sensors; {args.minutes} "
        f"one-minute frames per phase; store {args.store.split('?')[0]}; detector "
        f"{args.detector}; a record per {args.per}; {load_average()}"
    )
    with iotlab.connect(args.store) as lab:
        lab.provision(fleet)
    rates: dict[int, list[float]] = {1: [], 2: []}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            # Not counted: the node's and the broker's first minutes of work (JIT, new
            # tables) would otherwise all fall on the first phase.
            print("warm-up (not counted):")
            run_phase(args, fleet, stream[:warm], 1, Path(tmp))
            at = warm
            for n_workers in phases:  # interleaved, so that drift in the machine's load
                frames = stream[at : at + args.minutes]  # falls on both
                at += args.minutes
                rates[n_workers].append(
                    run_phase(args, fleet, frames, n_workers, Path(tmp))["rate"]
                )
    finally:
        if own_keyspace in args.store:
            drop_keyspace(cassandra, own_keyspace)
    one, two = (float(np.median(rates[n])) for n in (1, 2))
    print(
        f"one worker {' / '.join(f'{r:,.0f}' for r in rates[1])} readings/s, two workers "
        f"{' / '.join(f'{r:,.0f}' for r in rates[2])} (medians {one:,.0f} and {two:,.0f})"
    )
    print(
        f"two workers / one worker: {two / one:.2f}x (target >= 1.6x); two workers "
        f"{two:,.0f} readings/s (target >= 10,000)"
    )


if __name__ == "__main__":
    main()
