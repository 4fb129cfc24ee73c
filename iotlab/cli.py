"""The ``iotlab`` command: ``demo``, ``simulate``, ``ingest``, ``detect``, ``report``.

Every subcommand takes ``--store URL`` (default: ``$IOTLAB_STORE``, else the embedded
``./.iotlab/iotlab.db``). Errors iotlab raises on purpose print as one line on stderr
and exit with status 2; ``--help`` on each subcommand explains its options.

Examples
--------
>>> main(["report", "weekly", "--store", "sqlite://"])  # the one-line error goes to stderr
2
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from iotlab.errors import ConfigurationError, IotlabError, NotFoundError, ValidationError

__all__ = ["main"]

DETECTORS = ("prophet", "zscore", "seasonal")
_OFFSET = re.compile(r"(?:Z|[+-]\d\d:?\d\d)$")


def _make_detector(name: str) -> Any:
    """A fresh detector by its command-line name."""
    if name == "prophet":
        from iotlab.detect import ProphetResidualDetector

        return ProphetResidualDetector()
    from iotlab.detect.baselines import RollingZScoreDetector, SeasonalNaiveDetector

    return RollingZScoreDetector() if name == "zscore" else SeasonalNaiveDetector()


def _connect(url: str | None) -> Any:
    import iotlab

    return iotlab.connect(url)


def _device_list(text: str | None) -> list[str] | None:
    return None if text is None else [d.strip() for d in text.split(",") if d.strip()]


def _severity_line(anomalies: pd.DataFrame) -> str:
    from iotlab.analytics import severity_counts

    counts = severity_counts(anomalies)
    return ", ".join(f"{s} {n}" for s, n in counts.items()) + f" (total {sum(counts.values())})"


# -- demo ---------------------------------------------------------------------------------
def _demo(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from iotlab.simulate import Fleet

    start = (
        pd.Timestamp(args.start, tz="UTC")
        if args.start
        else (pd.Timestamp.now("UTC").floor("D") - pd.Timedelta(days=args.days))
    )
    end = start + pd.Timedelta(days=args.days)
    progress = not args.no_progress
    steps = tqdm(total=5, desc="iotlab demo", unit="step", disable=not progress)
    with _connect(args.store) as lab:
        steps.set_postfix_str("simulating")
        fleet = Fleet(n_devices=args.devices, seed=args.seed)
        sim = fleet.simulate(start=start, days=args.days, freq=args.freq)
        steps.update()
        steps.set_postfix_str("provisioning")
        device_ids = lab.provision(fleet)
        steps.update()
        steps.set_postfix_str("ingesting")
        readings = lab.ingest(sim.readings, progress=progress)
        heartbeats = lab.ingest_metrics(sim.device_metrics, progress=progress)
        steps.update()
        steps.set_postfix_str(f"detecting ({args.detector})")
        anomalies = lab.detect_anomalies(
            start,
            end,
            detector=_make_detector(args.detector),
            n_jobs=args.n_jobs,
            progress=progress,
        )
        steps.update()
        steps.set_postfix_str("reporting")
        report = lab.report("fleet_health", start, end)
        path = report.to_html(Path(args.out) / "fleet-health.html")
        steps.update()
        steps.close()
        print(f"store:       {lab.store.url}")
    print(f"devices:     {len(device_ids)} ({args.days} days at {args.freq}, seed {args.seed})")
    print(f"readings:    {readings.written} written, {len(readings.rejected)} rejected")
    print(f"heartbeats:  {heartbeats.written} written, {len(heartbeats.rejected)} rejected")
    print(f"anomalies:   {_severity_line(anomalies)}")
    print(f"report:      {path}")
    return 0


# -- simulate -----------------------------------------------------------------------------
def _publish_to_mqtt(simulation: Any, url: str) -> None:
    """Hook for ``iotlab simulate --mqtt URL``: publishing belongs to ``iotlab.ingest``.

    It calls ``iotlab.ingest.mqtt.publish_simulation(simulation, url)`` once that exists.
    """
    try:
        from iotlab.ingest.mqtt import publish_simulation  # type: ignore[attr-defined]
    except ImportError as exc:
        raise ConfigurationError(
            "--mqtt: publishing to a broker is not available in this build "
            "(iotlab.ingest.mqtt.publish_simulation is missing)"
        ) from exc
    publish_simulation(simulation, url)


def _simulate(args: argparse.Namespace) -> int:
    from iotlab.simulate import Fleet

    fleet = Fleet(n_devices=args.devices, seed=args.seed)
    start = args.start or pd.Timestamp.now("UTC").floor("D") - pd.Timedelta(days=args.days)
    sim = fleet.simulate(start=start, days=args.days, freq=args.freq)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    sim.readings.to_csv(out, index=False)
    print(f"readings:    {len(sim.readings)} rows -> {out}")
    if args.metrics_out:
        sim.device_metrics.to_csv(args.metrics_out, index=False)
        print(f"heartbeats:  {len(sim.device_metrics)} rows -> {args.metrics_out}")
    if args.labels_out:
        sim.labels.to_csv(args.labels_out, index=False)
        print(f"labels:      {len(sim.labels)} rows -> {args.labels_out}")
    if args.provision:
        with _connect(args.store) as lab:
            print(f"provisioned: {len(lab.provision(fleet))} devices in {lab.store.url}")
    if args.mqtt:
        _publish_to_mqtt(sim, args.mqtt)
    return 0


# -- ingest -------------------------------------------------------------------------------
def read_csv_with_utc(path: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read a CSV (or .csv.gz) whose ``ts`` carries UTC offsets.

    Returns the rows with a parsed, tz-aware ``ts`` and the rows whose ``ts`` has no offset
    (naive timestamps are refused, never guessed) with a ``reason``.
    """
    if not path.is_file():
        raise NotFoundError(f"no such file: {path}")
    frame = pd.read_csv(path, dtype={"device_id": str, "sensor_id": str, "status": str})
    if "ts" not in frame.columns:
        raise ValidationError(f"missing column in {path.name}", field="ts")
    text = frame["ts"].astype(str).str.strip()
    naive = ~text.str.contains(_OFFSET)
    rejected = frame[naive].assign(reason="ts: naive timestamp (no UTC offset)")
    good = frame[~naive].copy()
    good["ts"] = pd.to_datetime(text[~naive], format="ISO8601", utc=True)
    return good, rejected


def _ingest(args: argparse.Namespace) -> int:
    path = Path(args.file)
    rows, refused = read_csv_with_utc(path)
    with _connect(args.store) as lab:
        if args.metrics:
            result = lab.ingest_metrics(rows, progress=not args.no_progress)
        else:
            result = lab.ingest(
                rows,
                require_provisioned=not args.allow_unprovisioned,
                progress=not args.no_progress,
            )
    rejected = (
        pd.concat([refused, result.rejected], ignore_index=True)
        if len(refused)
        else (result.rejected)
    )
    print(f"written:     {result.written}")
    print(f"rejected:    {len(rejected)}")
    if len(rejected):
        name = path.name.removesuffix(".gz").removesuffix(".csv")
        target = path.with_name(f"{name}.rejected.csv")
        rejected.to_csv(target, index=False)
        reasons = rejected["reason"].astype(str).str.split(":").str[0].value_counts()
        print("reasons:     " + ", ".join(f"{r} {n}" for r, n in reasons.items()))
        print(f"rejected rows with reasons -> {target}")
    return 0


# -- detect and report --------------------------------------------------------------------
def _detect(args: argparse.Namespace) -> int:
    with _connect(args.store) as lab:
        anomalies = lab.detect_anomalies(
            args.start,
            args.end,
            devices=_device_list(args.devices),
            detector=_make_detector(args.detector),
            n_jobs=args.n_jobs,
            progress=not args.no_progress,
        )
    print(f"anomalies:   {_severity_line(anomalies)}")
    return 0


def _report(args: argparse.Namespace) -> int:
    from iotlab.reports import build_report

    with _connect(args.store) as lab:
        report = build_report(lab, args.kind, args.start, args.end, _device_list(args.devices))
        out = Path(args.out or Path("reports") / f"{report.kind.replace('_', '-')}.html")
        path = report.to_html(out)
    print(f"report:      {path}")
    return 0


# -- parser -------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``iotlab`` command."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--store",
        metavar="URL",
        help="sqlite:///path.db, sqlite:// or cassandra://host:9042/keyspace "
        "(default: $IOTLAB_STORE, else sqlite:///./.iotlab/iotlab.db)",
    )
    common.add_argument("--no-progress", action="store_true", help="hide progress bars")
    parser = argparse.ArgumentParser(
        prog="iotlab", description="IoT fleet analytics: simulate, ingest, detect, report."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser(
        "demo",
        parents=[common],
        help="simulate a fleet, ingest it, detect anomalies, write the fleet health report",
        description="Run the whole platform once on a simulated fleet and write "
        "OUT/fleet-health.html.",
    )
    demo.add_argument("--devices", type=int, default=10, help="devices to simulate (10)")
    demo.add_argument(
        "--days",
        type=int,
        default=28,
        help="days of data (28: the detector learns each weekday from two or more weeks)",
    )
    demo.add_argument("--freq", default="5min", help="reading interval (5min)")
    demo.add_argument("--seed", type=int, default=7, help="simulator seed (7)")
    demo.add_argument("--start", help="first day (default: DAYS days before today, UTC)")
    demo.add_argument("--out", default="reports", help="directory for the report (reports/)")
    demo.add_argument("--detector", choices=DETECTORS, default="prophet", help="(prophet)")
    demo.add_argument("--n-jobs", type=int, default=2, help="detection processes (2)")
    demo.set_defaults(run=_demo)

    simulate = sub.add_parser(
        "simulate",
        parents=[common],
        help="simulate a fleet's readings into a CSV file",
        description="Simulate readings (and optionally heartbeats and fault labels) to CSV.",
    )
    simulate.add_argument("--devices", type=int, default=10, help="devices (10)")
    simulate.add_argument("--days", type=int, default=1, help="days of data (1)")
    simulate.add_argument("--freq", default="1min", help="reading interval (1min)")
    simulate.add_argument("--seed", type=int, default=7, help="simulator seed (7)")
    simulate.add_argument("--start", help="first day (default: DAYS days before today, UTC)")
    simulate.add_argument("--out", required=True, help="readings CSV (.csv or .csv.gz)")
    simulate.add_argument("--metrics-out", metavar="FILE", help="also write heartbeats here")
    simulate.add_argument("--labels-out", metavar="FILE", help="also write fault labels here")
    simulate.add_argument(
        "--provision", action="store_true", help="also provision the fleet into --store"
    )
    simulate.add_argument("--mqtt", metavar="URL", help="also publish readings to a broker")
    simulate.set_defaults(run=_simulate)

    ingest = sub.add_parser(
        "ingest",
        parents=[common],
        help="ingest readings from a CSV file",
        description="Validate and write readings (device_id, sensor_id, ts with UTC offset, "
        "value, quality, status) from CSV/CSV.gz; rejected rows go to FILE.rejected.csv.",
    )
    ingest.add_argument("file", metavar="FILE", help="CSV or CSV.gz of readings")
    ingest.add_argument("--metrics", action="store_true", help="FILE holds heartbeats")
    ingest.add_argument(
        "--allow-unprovisioned",
        action="store_true",
        help="accept readings of sensors that were never provisioned",
    )
    ingest.set_defaults(run=_ingest)

    detect = sub.add_parser(
        "detect",
        parents=[common],
        help="detect anomalies over a time window and store them",
        description="Fit one detector per (device, sensor) and store the anomalies found.",
    )
    detect.add_argument("--start", required=True, help="window start (UTC), e.g. 2026-01-01")
    detect.add_argument("--end", required=True, help="window end (UTC, exclusive)")
    detect.add_argument("--devices", help="comma-separated device ids (default: all)")
    detect.add_argument("--detector", choices=DETECTORS, default="prophet", help="(prophet)")
    detect.add_argument("--n-jobs", type=int, default=1, help="parallel processes (1)")
    detect.set_defaults(run=_detect)

    report = sub.add_parser(
        "report",
        parents=[common],
        help="build a report as one self-contained HTML file",
        description="KIND is fleet_health, device_performance or anomaly_summary.",
    )
    report.add_argument(
        "kind", metavar="KIND", help="fleet_health | device_performance | anomaly_summary"
    )
    report.add_argument("--start", help="window start (UTC; default: 7 days before --end)")
    report.add_argument("--end", help="window end (UTC, exclusive; default: now)")
    report.add_argument("--devices", help="comma-separated device ids (default: all)")
    report.add_argument("--out", help="HTML file (default: reports/KIND.html)")
    report.set_defaults(run=_report)

    from iotlab.ingest.cli import add_serve_parser  # serve: MQTT -> store, until SIGINT/SIGTERM

    add_serve_parser(sub, [common])
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``iotlab`` command; return its exit status (2 for an iotlab error)."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except IotlabError as exc:
        print(f"iotlab: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("iotlab: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
