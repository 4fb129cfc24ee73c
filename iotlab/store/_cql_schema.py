"""CQL rendering of :mod:`iotlab.store.schema` and safe migration.

Identifiers (keyspace, table, column names) are validated and double-quoted;
DDL cannot bind values, so the few literals it holds (replication settings, a
comment) come from validated settings, never from data. Migration creates what
is missing and adds missing columns; it never drops or retypes anything.

Examples
--------
>>> from iotlab.store.schema import TABLES
>>> print(create_table_cql("ks", TABLES["snapshots"]))  # doctest: +NORMALIZE_WHITESPACE
CREATE TABLE IF NOT EXISTS ks.snapshots ("device_id" text, "version" bigint, "state" text,
"taken_at" timestamp, PRIMARY KEY (("device_id"), "version"))
WITH CLUSTERING ORDER BY ("version" DESC) AND comment = 'serialised aggregate state every N events'
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from iotlab.errors import SchemaMismatchError
from iotlab.store.schema import DAY, HOUR, TableSpec
from iotlab.store.url import validate_identifier

__all__ = [
    "CQL_TYPES",
    "ExistingColumn",
    "create_keyspace_cql",
    "create_table_cql",
    "plan_migration",
]

#: logical column type -> CQL type
CQL_TYPES = {
    "text": "text",
    "int": "bigint",
    "double": "double",
    "timestamp": "timestamp",
    "bool": "boolean",
}

#: (kind, position, cql type, clustering order) of one column in system_schema.columns
ExistingColumn = tuple[str, int, str, str]


def quote(name: str) -> str:
    """A validated, double-quoted column name (quoting avoids clashes with CQL keywords)."""
    return '"' + validate_identifier(name, what="column name") + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def create_keyspace_cql(keyspace: str, *, replication_factor: int, dc: str | None) -> str:
    """``CREATE KEYSPACE IF NOT EXISTS`` with SimpleStrategy, or NetworkTopology for ``dc``.

    Examples
    --------
    >>> create_keyspace_cql("iot", replication_factor=1, dc=None)
    "CREATE KEYSPACE IF NOT EXISTS iot WITH replication = {'class': 'SimpleStrategy', \
'replication_factor': 1}"
    >>> create_keyspace_cql("iot", replication_factor=3, dc="dc1")
    "CREATE KEYSPACE IF NOT EXISTS iot WITH replication = {'class': \
'NetworkTopologyStrategy', 'dc1': 3}"
    """
    validate_identifier(keyspace, what="keyspace")
    rf = int(replication_factor)
    if dc:
        strategy = f"'class': 'NetworkTopologyStrategy', {_literal(dc)}: {rf}"
    else:
        strategy = f"'class': 'SimpleStrategy', 'replication_factor': {rf}"
    return f"CREATE KEYSPACE IF NOT EXISTS {keyspace} WITH replication = {{{strategy}}}"


def _compaction(spec: TableSpec) -> str:
    """TimeWindowCompactionStrategy with one window per bucket (hours below a day)."""
    width = spec.bucket_seconds or DAY
    unit, size = ("DAYS", max(1, width // DAY)) if width >= DAY else ("HOURS", width // HOUR or 1)
    return (
        "{'class': 'TimeWindowCompactionStrategy', "
        f"'compaction_window_unit': '{unit}', 'compaction_window_size': {size}}}"
    )


def create_table_cql(keyspace: str, spec: TableSpec) -> str:
    """``CREATE TABLE IF NOT EXISTS`` for ``spec``: keys, clustering order, TTL, compaction."""
    validate_identifier(keyspace, what="keyspace")
    table = validate_identifier(spec.name, what="table name")
    columns = ", ".join(f"{quote(c)} {CQL_TYPES[t]}" for c, t in spec.columns.items())
    partition = ", ".join(quote(c) for c in spec.partition_key)
    key = ", ".join([f"({partition})", *(quote(c) for c in spec.clustering)])
    options = []
    if spec.clustering:
        order = ", ".join(
            f"{quote(c)} {'DESC' if c in spec.descending else 'ASC'}" for c in spec.clustering
        )
        options.append(f"CLUSTERING ORDER BY ({order})")
    if spec.ttl_seconds:
        options.append(f"default_time_to_live = {int(spec.ttl_seconds)}")
    if spec.time_series:
        options.append(f"compaction = {_compaction(spec)}")
    if spec.comment:
        options.append(f"comment = {_literal(spec.comment)}")
    with_clause = f" WITH {' AND '.join(options)}" if options else ""
    body = f"({columns}, PRIMARY KEY ({key}))"
    return f"CREATE TABLE IF NOT EXISTS {keyspace}.{table} {body}{with_clause}"


def plan_migration(
    keyspace: str, spec: TableSpec, existing: Mapping[str, ExistingColumn]
) -> list[str]:
    """``ALTER TABLE ... ADD`` statements that bring an existing table up to ``spec``.

    Raises ``SchemaMismatchError`` naming the table and column when the existing table
    has a column of another type or a different primary key: those need a person.

    Examples
    --------
    >>> from iotlab.store.schema import TABLES
    >>> spec = TABLES["snapshots"]
    >>> have = {"device_id": ("partition_key", 0, "text", "none"),
    ...         "version": ("clustering", 0, "bigint", "desc"),
    ...         "state": ("regular", -1, "text", "none")}
    >>> plan_migration("ks", spec, have)
    ['ALTER TABLE ks.snapshots ADD "taken_at" timestamp']
    >>> have["state"] = ("regular", -1, "blob", "none")
    >>> plan_migration("ks", spec, have)
    Traceback (most recent call last):
    ...
    iotlab.errors.SchemaMismatchError: table ks.snapshots: column state is blob, iotlab needs text
    """
    where = f"table {keyspace}.{spec.name}"
    _check_primary_key(where, spec, existing)
    statements = []
    for column, logical in spec.columns.items():
        wanted = CQL_TYPES[logical]
        if column not in existing:
            statements.append(f"ALTER TABLE {keyspace}.{spec.name} ADD {quote(column)} {wanted}")
        elif existing[column][2] != wanted:
            raise SchemaMismatchError(
                f"{where}: column {column} is {existing[column][2]}, iotlab needs {wanted}"
            )
    return statements


def _ordered(existing: Mapping[str, ExistingColumn], kind: str) -> list[str]:
    found = [(pos, name) for name, (k, pos, _, _) in existing.items() if k == kind]
    return [name for _, name in sorted(found)]


def _check_primary_key(
    where: str, spec: TableSpec, existing: Mapping[str, ExistingColumn]
) -> None:
    for kind, wanted in (("partition_key", spec.partition_key), ("clustering", spec.clustering)):
        have = _ordered(existing, kind)
        if have != list(wanted):
            differing = [c for c in (*wanted, *have) if c not in wanted or c not in have]
            column = differing[0] if differing else (wanted or have)[0]
            raise SchemaMismatchError(
                f"{where}: {kind.replace('_', ' ')} is ({', '.join(have)}), iotlab needs "
                f"({', '.join(wanted)}); column {column} differs. Nothing was changed: "
                "migrate or drop the table by hand"
            )
    for column in spec.clustering:
        order = existing[column][3]
        wanted_order = "desc" if column in spec.descending else "asc"
        if order != wanted_order:
            raise SchemaMismatchError(
                f"{where}: column {column} is clustered {order}, iotlab needs {wanted_order}"
            )


def group_columns(
    rows: Iterable[tuple[str, str, str, int, str, str]],
) -> dict[str, dict[str, ExistingColumn]]:
    """``system_schema.columns`` rows -> {table: {column: (kind, position, type, order)}}."""
    tables: dict[str, dict[str, ExistingColumn]] = {}
    for table, column, kind, position, cql_type, order in rows:
        tables.setdefault(table, {})[column] = (kind, position, cql_type, order)
    return tables
