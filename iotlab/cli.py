"""The ``iotlab`` command: ``demo``, ``simulate``, ``provision``, ``ingest``, ``detect``,
``report`` and ``serve``.

Every subcommand takes ``--store URL`` (default: ``$IOTLAB_STORE``, else the embedded
``./.iotlab/iotlab.db``) and says which store it used. Exit status: 0 when the work was
done; 2 for a mistake in what was asked (a one-line ``iotlab: error: ...`` on stderr,
no traceback); 1 when nothing useful could be done (every row rejected, no data in the
window). Nothing is overwritten without ``--force``. ``--help`` on each subcommand
explains its options.

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
from typing import Any, Literal

import pandas as pd

from iotlab._reasons import NAIVE_TIMESTAMP
from iotlab.errors import ConfigurationError, IotlabError, NotFoundError, ValidationError

__all__ = ["main"]


class NothingDone(IotlabError):
    """Nothing useful happened (every row rejected, no data to work on): exit status 1."""


DETECTORS = ("prophet", "zscore", "seasonal")
_OFFSET = re.compile(r"(?:Z|[+-]\d\d:?\d\d)$")


def _make_detector(name: str) -> Any:
    """A fresh detector by its command-line name."""
    if name == "prophet":
        from iotlab.detect import ProphetResidualDetector

        return ProphetResidualDetector()
    from iotlab.detect.baselines import RollingZScoreDetector, SeasonalNaiveDetector

    return RollingZScoreDetector() if name == "zscore" else SeasonalNaiveDetector()


def _connect(url: str | None, *, must_exist: bool = False) -> Any:
    """Open the store; with ``must_exist``, refuse an embedded file that is not there yet.

    Commands that only read (detect, report) would otherwise create an empty database
    where a mistyped URL points and report on nothing.
    """
    import iotlab
    from iotlab.store.url import parse_store_url, resolve_store_url

    parsed = parse_store_url(resolve_store_url(url))
    if must_exist and parsed.path is not None:  # a local file (see StoreURL.is_local_file)
        path = Path(parsed.path)
        if not path.exists():
            scheme = parsed.scheme
            raise NotFoundError(
                f"no iotlab database at {path.absolute()} (store {parsed}); ingest data first, "
                f"or check the URL: {scheme}:///relative/x.db is relative to the current "
                f"directory, {scheme}:////absolute/x.db (four slashes) is absolute"
            )
    return iotlab.connect(url)


def _where(lab: Any) -> str:
    """Where the store lives, as a user would look for it (an absolute path for a file)."""
    url = lab.store.url
    if url.path is not None:  # a local file (see StoreURL.is_local_file)
        return f"{url} ({Path(url.path).absolute()})"
    return str(url)


def _check_devices(lab: Any, devices: list[str] | None) -> None:
    """Refuse device ids that were never provisioned (a typo would otherwise find nothing)."""
    if devices is not None:
        from iotlab.analytics.overview import fleet_devices

        fleet_devices(lab.store, devices)


def _utc(text: str | None, field: str) -> pd.Timestamp | None:
    from iotlab._time import utc_timestamp_or_none

    return utc_timestamp_or_none(text, field=field)


def _window(
    lab: Any, start: str | None, end: str | None
) -> tuple[pd.Timestamp, pd.Timestamp, pd.Timestamp]:
    """``[start, end)``, each side defaulting to the data's own span (whole hours), and
    the time of the last reading or heartbeat.

    Raises :class:`NothingDone` if the store holds no readings or heartbeats, or none in
    the window asked for.
    """
    low, high = _asked_window(start, end)
    span = lab.data_span()
    if span is None:
        raise NothingDone(f"the store {_where(lab)} holds no readings or heartbeats")
    first, last = span
    low = first.floor("h") if low is None else low
    high = (last + pd.Timedelta("1ms")).ceil("h") if high is None else high
    if high <= low:
        raise ValidationError(f"must be after start ({high} <= {low})", field="end")
    if high <= first or low > last:
        raise NothingDone(
            f"no readings or heartbeats between {_day(low)} and {_day(high)}; "
            f"the data spans {_day(first)} to {_day(last)}"
        )
    return low, high, last


def _asked_window(
    start: str | None, end: str | None
) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
    """The window as given, checked before any store is opened."""
    low, high = _utc(start, "start"), _utc(end, "end")
    if low is not None and high is not None and high <= low:
        raise ValidationError(f"must be after start ({high} <= {low})", field="end")
    return low, high


def _day(ts: pd.Timestamp) -> str:
    return ts.strftime("%Y-%m-%d %H:%M UTC")


def _refuse_overwrite(path: Path, force: bool) -> None:
    if path.exists() and not force:
        raise ConfigurationError(
            f"{path} exists; pass --force to replace it, or --out to write elsewhere"
        )


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
            start=start,
            end=end,
            detector=_make_detector(args.detector),
            n_jobs=args.n_jobs,
            progress=progress,
        )
        steps.update()
        steps.set_postfix_str("reporting")
        report = lab.report("fleet_health", start=start, end=end)
        # Its own name: a re-run replaces the demo's report, never one made by `iotlab report`.
        path = report.to_html(Path(args.out) / "demo-fleet-health.html")
        steps.update()
        steps.close()
        print(f"store:       {_where(lab)}")
    print(f"devices:     {len(device_ids)} ({args.days} days at {args.freq}, seed {args.seed})")
    print(f"readings:    {readings.written} written, {len(readings.rejected)} rejected")
    print(f"heartbeats:  {heartbeats.written} written, {len(heartbeats.rejected)} rejected")
    print(f"anomalies:   {_severity_line(anomalies)}")
    print(f"report:      {path}")
    return 0


# -- simulate -----------------------------------------------------------------------------
def _publish_to_mqtt(simulation: Any, url: str, per: Literal["reading", "device"]) -> None:
    from iotlab.ingest.mqtt import publish_simulation

    readings, heartbeats = publish_simulation(simulation, url, per=per)
    shape = "a message per device, up to 1,000 each" if per == "device" else "a message each"
    print(f"published:   {readings} readings ({shape}), {heartbeats} heartbeats -> {url}")


def _simulate(args: argparse.Namespace) -> int:
    from iotlab.simulate import Fleet

    if args.per != "reading" and not args.mqtt:
        raise ValidationError(
            "only with --mqtt (it says how readings are published)", field="--per"
        )
    fleet = Fleet(n_devices=args.devices, seed=args.seed)
    start = args.start or pd.Timestamp.now("UTC").floor("D") - pd.Timedelta(days=args.days)
    sim = fleet.simulate(start=start, days=args.days, freq=args.freq)
    out = Path(args.out)
    outputs = [out, *(Path(p) for p in (args.metrics_out, args.labels_out) if p)]
    for path in outputs:
        _refuse_overwrite(path, args.force)
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
            print(f"provisioned: {len(lab.provision(fleet))} devices in {_where(lab)}")
    if args.mqtt:
        _publish_to_mqtt(sim, args.mqtt, args.per)
    return 0


# -- provision ----------------------------------------------------------------------------
def _provision(args: argparse.Namespace) -> int:
    from iotlab.simulate import Fleet

    fleet = Fleet(n_devices=args.devices, seed=args.seed)
    with _connect(args.store) as lab:
        before = set(lab.store.read_rows("devices", columns=["device_id"])["device_id"])
        ids = lab.provision(fleet)
        print(f"store:       {_where(lab)}")
    new = [d for d in ids if d not in before]
    print(
        f"provisioned: {len(new)} new devices, {len(ids) - len(new)} already there "
        f"(fleet of {args.devices}, seed {args.seed})"
    )
    return 0


# -- ingest -------------------------------------------------------------------------------
READING_COLUMNS = ("device_id", "sensor_id", "ts", "value")
HEARTBEAT_COLUMNS = ("device_id", "ts")


def read_csv_with_utc(path: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read a CSV (or .csv.gz) whose ``ts`` carries UTC offsets.

    Returns the rows with a parsed, tz-aware ``ts`` and the rows whose ``ts`` has no offset
    (naive timestamps are refused, never guessed) with a ``reason``
    (:data:`iotlab._reasons.NAIVE_TIMESTAMP`, the same words as every other ingest path).
    """
    if not path.is_file():
        raise NotFoundError(f"no such file: {path}")
    try:
        frame = pd.read_csv(path, dtype={"device_id": str, "sensor_id": str, "status": str})
    except pd.errors.EmptyDataError:
        raise ValidationError(f"{path} is empty: no header, no rows") from None
    except (pd.errors.ParserError, UnicodeDecodeError, EOFError, OSError) as exc:
        raise ValidationError(f"{path} is not a readable CSV file: {exc}") from None
    if frame.empty:
        raise ValidationError(f"{path} has a header but no rows")
    if "ts" not in frame.columns:
        raise ValidationError(f"missing column in {path.name}", field="ts")
    text = frame["ts"].astype(str).str.strip()
    naive = ~text.str.contains(_OFFSET)
    parsed = pd.to_datetime(text.where(~naive), format="ISO8601", utc=True, errors="coerce")
    bad = ~naive & parsed.isna()
    rejected = pd.concat(
        [
            frame[naive].assign(reason=NAIVE_TIMESTAMP),
            frame[bad].assign(reason="unparseable timestamp (ISO 8601 expected)"),
        ]
    ).sort_index()
    good = frame[~naive & ~bad].copy()
    good["ts"] = parsed[~naive & ~bad]
    return good, rejected


def _check_columns(frame: pd.DataFrame, path: Path, metrics: bool) -> None:
    """Refuse a file of the wrong kind before a single row is written.

    A readings file given as heartbeats would otherwise overwrite real heartbeats at the
    same times with empty (NaN) metrics.
    """
    from iotlab.store.validate import METRIC_COLUMNS

    have = ", ".join(map(str, frame.columns))
    if metrics:
        missing = [c for c in HEARTBEAT_COLUMNS if c not in frame.columns]
        if missing or not any(c in frame.columns for c in METRIC_COLUMNS):
            missing += [c for c in METRIC_COLUMNS if c not in frame.columns]
            raise ValidationError(
                f"{path} is not a heartbeat file: missing column(s) {', '.join(missing)} "
                f"(have {have}); for readings, leave out --metrics"
            )
        return
    missing = [c for c in READING_COLUMNS if c not in frame.columns]
    if missing:
        hint = "; for heartbeats, add --metrics" if "cpu" in frame.columns else ""
        raise ValidationError(
            f"{path} is not a readings file: missing column(s) {', '.join(missing)} "
            f"(have {have}){hint}"
        )


def _rejects_path(args: argparse.Namespace, path: Path) -> Path:
    """Where rejected rows go: ``--rejects``, else ``<name>.rejected.csv`` here.

    The current directory, not the input's: the input may sit in a read-only or shared
    place (the repository's sample data, a mounted drive).
    """
    if args.rejects:
        return Path(args.rejects)
    return Path(f"{path.name.removesuffix('.gz').removesuffix('.csv')}.rejected.csv")


def _file_rows(refused: pd.DataFrame, rejected: pd.DataFrame, kept: pd.Index) -> pd.DataFrame:
    """All rejected rows, each with ``row``: its 0-based data row in the file.

    The store numbers the rows of the frame it was given (the file's rows less those
    refused here); ``kept`` maps those numbers back to the file's.
    """
    if len(rejected):
        rejected = rejected.assign(row=kept.to_numpy()[rejected["row"].to_numpy(dtype=int)])
    if len(refused):
        rejected = pd.concat([refused.assign(row=refused.index), rejected], ignore_index=True)
    return rejected.sort_values("row", kind="stable", ignore_index=True)


def _ingest(args: argparse.Namespace) -> int:
    path = Path(args.file)
    rows, refused = read_csv_with_utc(path)
    _check_columns(rows if len(rows) else refused.drop(columns="reason"), path, args.metrics)
    with _connect(args.store) as lab:
        if args.metrics:
            result = lab.ingest_metrics(
                rows,
                require_provisioned=not args.allow_unprovisioned,
                progress=not args.no_progress,
            )
        else:
            result = lab.ingest(
                rows,
                require_provisioned=not args.allow_unprovisioned,
                progress=not args.no_progress,
            )
        print(f"store:       {_where(lab)}")
    rejected = _file_rows(refused, result.rejected, rows.index)
    print(f"written:     {result.written}")
    print(f"rejected:    {len(rejected)}")
    target = _rejects_path(args, path)
    if len(rejected):
        target.parent.mkdir(parents=True, exist_ok=True)
        rejected.to_csv(target, index=False)
        print("reasons:")
        for reason, n in rejected["reason"].astype(str).value_counts().items():
            print(f"  {n:>10}  {reason}")
        print(f"rejected rows with reasons -> {target}")
    elif target.is_file():
        # A rejects file from an earlier run would say rows are missing that are not.
        target.unlink()
        print(f"removed {target}: it listed rows rejected by an earlier run")
    if len(rejected) and result.written == 0:
        raise NothingDone(
            f"all {len(rejected)} rows of {path} were rejected, nothing was written; "
            f"the reasons are in {target}"
        )
    return 0


# -- detect and report --------------------------------------------------------------------
def _detect(args: argparse.Namespace) -> int:
    devices = _device_list(args.devices)
    _asked_window(args.start, args.end)
    with _connect(args.store, must_exist=True) as lab:
        _check_devices(lab, devices)
        start, end, _ = _window(lab, args.start, args.end)
        print(f"store:       {_where(lab)}")
        print(f"window:      {_day(start)} to {_day(end)}")
        anomalies = lab.detect_anomalies(
            start=start,
            end=end,
            devices=devices,
            detector=_make_detector(args.detector),
            n_jobs=args.n_jobs,
            progress=not args.no_progress,
        )
    print(f"anomalies:   {_severity_line(anomalies)}")
    return 0


def _report(args: argparse.Namespace) -> int:
    from iotlab.reports import REPORT_KINDS, build_report

    kind = args.kind.replace("-", "_")
    if kind not in REPORT_KINDS:  # before any I/O: a typo must not open (or create) a store
        known = ", ".join(sorted(REPORT_KINDS))
        raise NotFoundError(f"unknown report kind {args.kind!r}; known kinds: {known}")
    out = Path(args.out or Path("reports") / f"{kind.replace('_', '-')}.html")
    _refuse_overwrite(out, args.force)
    _asked_window(args.start, args.end)
    devices = _device_list(args.devices)
    with _connect(args.store, must_exist=True) as lab:
        _check_devices(lab, devices)
        start, end, last = _window(lab, args.start, args.end)
        report = build_report(lab.store, kind, start=start, end=end, devices=devices)
        print(f"store:       {_where(lab)}")
    defaulted = "" if args.start and args.end else " (the data's own span)"
    print(f"window:      {_day(start)} to {_day(end)}{defaulted}")
    # Data that stops before now (simulated, or a device gone quiet) is said so, in the
    # report too: a reader must not take the empty end of the window for an outage.
    if last < pd.Timestamp.now("UTC") - pd.Timedelta("1h"):
        report.notes.append(f"Data until {_day(last)}.")
        print(f"note:        data until {_day(last)}")
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
    import iotlab

    parser = argparse.ArgumentParser(
        prog="iotlab",
        description="IoT fleet analytics: simulate, provision, ingest, detect, report. "
        "Exit status: 0 done, 1 nothing useful could be done, 2 a mistake in what was asked.",
    )
    parser.add_argument("--version", action="version", version=f"iotlab {iotlab.__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser(
        "demo",
        parents=[common],
        help="simulate a fleet, ingest it, detect anomalies, write the fleet health report",
        description="Run the whole platform once on a simulated fleet and write "
        "OUT/demo-fleet-health.html (replacing the previous demo's report).",
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
    demo.add_argument(
        "--out", default="reports", help="directory for demo-fleet-health.html (reports/)"
    )
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
    simulate.add_argument(
        "--per",
        choices=("reading", "device"),
        default="reading",
        help="with --mqtt: a message per reading (default), or per device (its readings "
        "together, up to 1,000 per message)",
    )
    simulate.add_argument("--force", action="store_true", help="replace existing files")
    simulate.set_defaults(run=_simulate)

    provision = sub.add_parser(
        "provision",
        parents=[common],
        help="provision a simulated fleet's devices and sensors into the store",
        description="Register the devices and sensors of Fleet(DEVICES, seed=SEED), the fleet "
        "`iotlab simulate` with the same --devices and --seed simulates, so that its "
        "readings are accepted. The defaults (10 devices, seed 7) are also the fleet of the "
        "sample data in data/. Devices already provisioned are left as they are.",
    )
    provision.add_argument("--devices", type=int, default=10, help="devices (10)")
    provision.add_argument("--seed", type=int, default=7, help="simulator seed (7)")
    provision.set_defaults(run=_provision)

    ingest = sub.add_parser(
        "ingest",
        parents=[common],
        help="ingest readings from a CSV file",
        description="Validate and write readings (device_id, sensor_id, ts with UTC offset, "
        "value, quality, status) or, with --metrics, heartbeats (device_id, ts, cpu, memory, "
        "battery, signal) from CSV/CSV.gz. Rejected rows go, with their reasons, to "
        "NAME.rejected.csv in the current directory (or --rejects). Exits 1 if every row "
        "was rejected.",
    )
    ingest.add_argument("file", metavar="FILE", help="CSV or CSV.gz of readings")
    ingest.add_argument("--metrics", action="store_true", help="FILE holds heartbeats")
    ingest.add_argument(
        "--rejects", metavar="PATH", help="rejected rows here (default: ./NAME.rejected.csv)"
    )
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
    detect.add_argument(
        "--start", help="window start (UTC), e.g. 2026-01-01 (default: the data's first hour)"
    )
    detect.add_argument(
        "--end", help="window end (UTC, exclusive; default: the hour after the last data)"
    )
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
    report.add_argument("--start", help="window start (UTC; default: the data's first hour)")
    report.add_argument(
        "--end", help="window end (UTC, exclusive; default: the hour after the last data)"
    )
    report.add_argument("--devices", help="comma-separated device ids (default: all)")
    report.add_argument("--out", help="HTML file (default: reports/KIND.html)")
    report.add_argument("--force", action="store_true", help="replace an existing --out file")
    report.set_defaults(run=_report)

    from iotlab._cli_serve import add_serve_parser  # serve: MQTT -> store, until SIGINT/SIGTERM

    add_serve_parser(sub, [common])
    from iotlab._cli_anomalies import add_anomaly_parsers  # anomalies list|ack|resolve, migrate

    add_anomaly_parsers(sub, [common])
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``iotlab`` command; return its exit status (2 for an iotlab error)."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except NothingDone as exc:
        print(f"iotlab: error: {exc}", file=sys.stderr)
        return 1
    except IotlabError as exc:
        print(f"iotlab: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a file that cannot be written or read: the user's to fix
        print(f"iotlab: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("iotlab: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
