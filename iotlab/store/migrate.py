"""Migrating a store whose tables predate a primary-key change, without losing a row.

The only such change so far: ``anomalies`` and ``anomalies_by_day`` gained the
``detector`` as their last clustering column (before it, a second detector's findings
at the same reading overwrote the first one's). A key that only *grows* keeps every
old row unique, so the old rows can all be carried over.

- **SQLite** migrates by itself when the store is opened: rename, create, copy,
  compare counts and drop, in one transaction (see ``SQLiteStore._widen_key``).
- **Cassandra** cannot change a primary key in place, so opening such a keyspace raises
  :class:`~iotlab.errors.SchemaMismatchError` naming ``iotlab migrate``, which calls
  :func:`migrate_store`. Per table it copies every row to a backup table
  ``<table>_before_key_change``, checks the copy's row count, drops and recreates the
  table with the new key, copies the rows back (a missing detector becomes
  ``"unknown"``) and checks the count again. The backup is kept; drop it once satisfied.
  Every step is an idempotent upsert, so running it again after an interruption
  finishes the job. Stop writers (``iotlab serve``) while it runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import pandas as pd

from iotlab.errors import SchemaMismatchError
from iotlab.store.schema import TABLES, TableSpec, bucket_column
from iotlab.store.url import StoreURL, parse_store_url

__all__ = ["BACKUP_SUFFIX", "key_only_grew", "migrate_store"]

BACKUP_SUFFIX = "_before_key_change"
#: tables whose key has grown, and the value a new key column takes in old rows
_GROWN = {"anomalies": "unknown", "anomalies_by_day": "unknown"}


def _existing_clustering(existing: Mapping[str, tuple]) -> list[str]:
    found = [(pos, name) for name, (kind, pos, *_) in existing.items() if kind == "clustering"]
    return [name for _, name in sorted(found)]


def key_only_grew(spec: TableSpec, existing: Mapping[str, tuple]) -> bool:
    """Whether an existing Cassandra table differs from ``spec`` only by trailing
    clustering columns that :func:`migrate_store` can add.

    Examples
    --------
    >>> spec = TABLES["anomalies"]
    >>> old = {"device_id": ("partition_key", 0, "text", "none"),
    ...        "day": ("partition_key", 1, "timestamp", "none"),
    ...        "ts": ("clustering", 0, "timestamp", "asc"),
    ...        "sensor_id": ("clustering", 1, "text", "asc")}
    >>> key_only_grew(spec, old)
    True
    >>> key_only_grew(TABLES["readings"], old)
    False
    """
    if spec.name not in _GROWN:
        return False
    partition = [n for n, (k, *_) in sorted(existing.items(), key=lambda i: i[1][1])
                 if k == "partition_key"]  # fmt: skip
    have = _existing_clustering(existing)
    return (
        partition == list(spec.partition_key)
        and len(have) < len(spec.clustering)
        and list(spec.clustering[: len(have)]) == have
    )


def migrate_store(url: str | StoreURL) -> list[str]:
    """Bring the store at ``url`` up to the current primary keys; return what was done.

    Safe to run on an up-to-date store (it reports that nothing was needed) and to run
    again after an interruption. See the module docstring for the steps.
    """
    parsed = url if isinstance(url, StoreURL) else parse_store_url(url)
    if parsed.scheme == "sqlite":
        from iotlab.store import open_store

        open_store(parsed).close()  # the embedded backend migrates on open
        return [f"{parsed}: up to date (the embedded store migrates itself when opened)"]
    return _migrate_cassandra(parsed)


def _legacy_spec(spec: TableSpec, clustering: list[str], name: str) -> TableSpec:
    return replace(spec, name=name, clustering=tuple(clustering))


def _migrate_cassandra(url: StoreURL) -> list[str]:
    from iotlab.store._cql_schema import create_table_cql
    from iotlab.store.cassandra import CassandraStore

    done: list[str] = []
    probe = CassandraStore(url)
    try:
        existing = probe._existing_columns()
    finally:
        probe.close()
    for name, filler in _GROWN.items():
        spec = TABLES[name]
        backup = name + BACKUP_SUFFIX
        have = existing.get(name)
        old_key = _existing_clustering(existing[backup]) if backup in existing else None
        if have is not None and _existing_clustering(have) == list(spec.clustering):
            if old_key is None or _copied_back(url, spec, old_key):
                kept = f"; its backup {backup} can be dropped" if old_key else ""
                done.append(f"{name}: up to date{kept}")
                continue
        elif have is not None:
            if not key_only_grew(spec, have):
                raise SchemaMismatchError(
                    f"table {url.keyspace}.{name} has a key iotlab cannot migrate; nothing "
                    "was changed"
                )
            old_key = _existing_clustering(have)
        if old_key is None:  # neither the table nor a backup: created on first open
            done.append(f"{name}: absent, will be created")
            continue
        done += _move_through_backup(url, spec, old_key, have, filler, create_table_cql)
    return done


def _move_through_backup(
    url: StoreURL,
    spec: TableSpec,
    old_key: list[str],
    have: Mapping[str, tuple] | None,
    filler: str,
    create_table_cql,
) -> list[str]:
    name, backup = spec.name, spec.name + BACKUP_SUFFIX
    old = _legacy_spec(spec, old_key, name)
    saved = _legacy_spec(spec, old_key, backup)
    added = [c for c in spec.clustering if c not in old_key]
    store = _open_raw(url, {**TABLES, backup: saved})
    done = []
    try:
        store._ddl(create_table_cql(store.keyspace, saved))
        if have is not None and _existing_clustering(have) == old_key:
            rows = _read_everything(store, old)
            store.write_rows(backup, rows)
            copied = len(_read_everything(store, saved))
            if copied < len(rows):
                raise SchemaMismatchError(
                    f"{name}: {len(rows)} rows, but the backup {backup} holds {copied}; "
                    f"{name} was left as it was"
                )
            done.append(f"{name}: {len(rows)} rows copied to {backup}")
            store._ddl(f"DROP TABLE {store.keyspace}.{name}")
            store._prepared.clear()  # statements prepared on the dropped table
            done.append(f"{name}: dropped (old key {', '.join(old_key)})")
        store._ddl(create_table_cql(store.keyspace, spec))
        rows = _read_everything(store, saved)
        for column in added:
            rows[column] = rows[column].where(rows[column].notna(), filler)
        store.write_rows(name, rows)
        restored = len(_read_everything(store, spec))
        if restored < len(rows):
            raise SchemaMismatchError(
                f"{name}: the backup {backup} holds {len(rows)} rows, {name} only {restored} "
                "after the copy; run `iotlab migrate` again (the backup is kept)"
            )
        done.append(
            f"{name}: recreated with key ({', '.join(spec.clustering)}), {len(rows)} rows "
            f"restored; the backup {backup} is kept: drop it once satisfied"
        )
    finally:
        store.close()
    return done


def _copied_back(url: StoreURL, spec: TableSpec, old_key: list[str]) -> bool:
    """Whether the table holds at least as many rows as its backup (migration finished)."""
    backup = spec.name + BACKUP_SUFFIX
    saved = _legacy_spec(spec, old_key, backup)
    store = _open_raw(url, {**TABLES, backup: saved})
    try:
        return len(_read_everything(store, spec)) >= len(_read_everything(store, saved))
    finally:
        store.close()


def _open_raw(url: StoreURL, tables: Mapping[str, TableSpec]):
    from iotlab.store.cassandra import CassandraStore

    return CassandraStore(url, tables)


def _read_everything(store, spec: TableSpec) -> pd.DataFrame:
    """Every row of a (small) table: a one-off full scan, which only a migration does."""
    bucket = bucket_column(spec)
    columns = [c for c in spec.columns if c != bucket]
    return store._read_all(spec, columns, None, None)
