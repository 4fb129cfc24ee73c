"""``iotlab anomalies list|ack|resolve`` and ``iotlab migrate``.

Examples
--------
>>> import argparse
>>> parser = argparse.ArgumentParser(prog="iotlab")
>>> add_anomaly_parsers(parser.add_subparsers(dest="command"), [])
>>> parser.parse_args(["anomalies", "ack", "d/t/zscore/2026-01-01T00:00:00.000Z",
...                    "--by", "alice"]).by
'alice'
"""

from __future__ import annotations

import argparse
from typing import Any

import pandas as pd

from iotlab.errors import ValidationError

__all__ = ["add_anomaly_parsers"]

_SHOWN = ["anomaly_id", "severity", "score", "value", "expected", "status", "acknowledged_by"]


def _connect(url: str | None) -> Any:
    import iotlab

    return iotlab.connect(url)


def _list(args: argparse.Namespace) -> int:
    devices = None if args.devices is None else [d for d in args.devices.split(",") if d]
    with _connect(args.store) as lab:
        found = lab.anomalies(start=args.start, end=args.end, devices=devices)
    if args.status != "all":
        found = found[found["status"] == args.status]
    # Most anomalous first: the unbounded score ranks, severity breaks ties.
    found = found.sort_values(["score", "ts"], ascending=[False, False], kind="stable")
    counts = found["status"].value_counts()
    summary = ", ".join(f"{s} {counts.get(s, 0)}" for s in ("open", "acknowledged", "resolved"))
    print(f"{len(found)} anomalies ({summary})")
    if len(found):
        with pd.option_context("display.width", 200, "display.max_colwidth", 80):
            print(found[_SHOWN].head(args.limit).to_string(index=False))
    return 0


def _ids(args: argparse.Namespace) -> list[str]:
    ids = list(args.ids)
    if args.ids_file:
        with open(args.ids_file, encoding="utf-8") as handle:
            ids += [line.strip() for line in handle if line.strip()]
    if not ids:
        raise ValidationError("name at least one anomaly id", field="anomaly_id")
    return ids


def _act(args: argparse.Namespace) -> int:
    with _connect(args.store) as lab:
        act = lab.acknowledge_anomaly if args.action == "ack" else lab.resolve_anomaly
        rows = act(_ids(args), by=args.by, note=args.note)
    for row in rows.itertuples():
        print(f"{row.anomaly_id}: {row.status}")
    return 0


def _migrate(args: argparse.Namespace) -> int:
    from iotlab.store.migrate import migrate_store
    from iotlab.store.url import resolve_store_url

    for step in migrate_store(resolve_store_url(args.store)):
        print(step)
    return 0


def add_anomaly_parsers(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    """Add ``anomalies`` (list, ack, resolve) and ``migrate`` to the ``iotlab`` command."""
    anomalies = sub.add_parser(  # --store goes on each verb, where its default cannot clash
        "anomalies",
        help="list, acknowledge or resolve stored anomalies",
        description="Anomalies move open -> acknowledged -> resolved; an episode that ended "
        "is resolved automatically after detection.",
    )
    verbs = anomalies.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = verbs.add_parser("list", parents=parents, help="list anomalies, worst first")
    listing.add_argument("--start", help="window start (UTC)")
    listing.add_argument("--end", help="window end (UTC, exclusive)")
    listing.add_argument("--devices", help="comma-separated device ids (default: all)")
    listing.add_argument(
        "--status",
        choices=("open", "acknowledged", "resolved", "all"),
        default="open",
        help="(open)",
    )
    listing.add_argument("--limit", type=int, default=50, help="rows shown (50)")
    listing.set_defaults(run=_list)
    for action, text in (("ack", "acknowledge"), ("resolve", "resolve")):
        verb = verbs.add_parser(action, parents=parents, help=f"{text} anomalies by id")
        verb.add_argument("ids", nargs="*", metavar="ID", help="anomaly ids (from list)")
        verb.add_argument("--ids-file", metavar="FILE", help="more ids, one per line")
        verb.add_argument("--by", required=True, help="who does it")
        verb.add_argument("--note", help="why, or what was done")
        verb.set_defaults(run=_act)

    migrate = sub.add_parser(
        "migrate",
        parents=parents,
        help="bring a store made by an older iotlab up to the current tables",
        description="Carries every row over to tables whose key has changed (anomalies "
        "gained the detector); keeps a backup table on Cassandra. Stop writers first.",
    )
    migrate.set_defaults(run=_migrate)
