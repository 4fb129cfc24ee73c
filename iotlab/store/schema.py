"""The platform's tables, described once and rendered by each backend.

Each table is designed for one query (see DESIGN.md). Cassandra renders the
partition key, clustering order, TTL and compaction; SQLite renders the same
columns with a primary key made of partition key + clustering columns (minus
the ``bucket`` column, which only exists to bound Cassandra partitions and is
still stored so both backends hold the same rows).

Logical column types: ``text``, ``int`` (64-bit), ``double``, ``timestamp``
(UTC, millisecond precision), ``bool``.

Examples
--------
>>> TABLES["readings"].partition_key
('device_id', 'sensor_id', 'bucket')
>>> TABLES["readings"].bucket_seconds
86400
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

__all__ = ["DAY", "HOUR", "TABLES", "TableSpec", "bucket_column"]

HOUR = 3600
DAY = 86400
THIRTY_DAYS = 30 * DAY
MONTH_BUCKET = 30 * DAY  # hour roll-ups: 720 rows per partition
YEAR_BUCKET = 365 * DAY


@dataclass(frozen=True)
class TableSpec:
    """One table: columns, keys, and time-series settings.

    Parameters
    ----------
    name
        Table name (a validated identifier).
    columns
        Column name -> logical type, in storage order.
    partition_key
        Columns that choose the partition (Cassandra) / lead the primary key (SQLite).
    clustering
        Columns that order rows within a partition.
    descending
        Clustering columns stored newest first.
    bucket_seconds
        Width of the time bucket held in the ``bucket`` column (epoch ms of the
        bucket start), or ``None`` for tables without one. Chosen so one
        partition stays well under 100,000 rows at the expected rate.
    bucket_source
        The timestamp column the bucket is computed from.
    ttl_seconds
        Default time to live of a row (``None``: rows never expire).
    time_series
        Use TimeWindowCompactionStrategy (Cassandra) for this table.
    """

    name: str
    columns: dict[str, str]
    partition_key: tuple[str, ...]
    clustering: tuple[str, ...] = ()
    descending: tuple[str, ...] = ()
    bucket_seconds: int | None = None
    bucket_source: str = "ts"
    ttl_seconds: int | None = None
    time_series: bool = False
    comment: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def primary_key(self) -> tuple[str, ...]:
        return self.partition_key + self.clustering

    @property
    def bucket_ms(self) -> int:
        """Bucket width in ms, for tables with a ``bucket`` column (see :func:`bucket_column`)."""
        if self.bucket_seconds is None:
            raise ValueError(f"table {self.name} has no time bucket")
        return self.bucket_seconds * 1000

    def with_settings(
        self, *, bucket_seconds: int | None = None, ttl_seconds: int | None = -1
    ) -> TableSpec:
        """A copy with another bucket width and/or TTL (``ttl_seconds=None`` disables TTL)."""
        return replace(
            self,
            bucket_seconds=bucket_seconds or self.bucket_seconds,
            ttl_seconds=self.ttl_seconds if ttl_seconds == -1 else ttl_seconds,
        )


_ANOMALY_VALUES = {
    "value": "double",
    "expected": "double",
    "lower": "double",
    "upper": "double",
    "score": "double",
    "confidence": "double",
    "severity": "text",
    "status": "text",  # as detected ("open"); the lifecycle lives in anomaly_lifecycle
    "detector": "text",
}

_ROLLUP_COLUMNS = {
    "device_id": "text",
    "sensor_id": "text",
    "bucket": "timestamp",
    "bucket_start": "timestamp",
    "count": "int",
    "sum": "double",
    "min": "double",
    "max": "double",
}

TABLES: dict[str, TableSpec] = {
    spec.name: spec
    for spec in (
        TableSpec(
            "readings",
            {
                "device_id": "text",
                "sensor_id": "text",
                "bucket": "timestamp",
                "ts": "timestamp",
                "value": "double",
                "quality": "int",
                "status": "text",
            },
            partition_key=("device_id", "sensor_id", "bucket"),
            clustering=("ts",),
            bucket_seconds=DAY,  # 86,400 rows at 1 Hz
            ttl_seconds=THIRTY_DAYS,
            time_series=True,
            comment="raw sensor readings",
        ),
        TableSpec(
            "device_metrics",
            {
                "device_id": "text",
                "bucket": "timestamp",
                "ts": "timestamp",
                "cpu": "double",
                "memory": "double",
                "battery": "double",
                "signal": "double",
            },
            partition_key=("device_id", "bucket"),
            clustering=("ts",),
            bucket_seconds=DAY,
            ttl_seconds=THIRTY_DAYS,
            time_series=True,
            comment="device heartbeats",
        ),
        TableSpec(
            "rollups_minute",
            dict(_ROLLUP_COLUMNS),
            partition_key=("device_id", "sensor_id", "bucket"),
            clustering=("bucket_start",),
            bucket_seconds=DAY,  # 1,440 rows per partition
            bucket_source="bucket_start",
            ttl_seconds=90 * DAY,
            time_series=True,
            comment="per-minute count/sum/min/max, recomputed from stored raw rows",
        ),
        TableSpec(
            "rollups_hour",
            dict(_ROLLUP_COLUMNS),
            partition_key=("device_id", "sensor_id", "bucket"),
            clustering=("bucket_start",),
            bucket_seconds=MONTH_BUCKET,
            bucket_source="bucket_start",
            ttl_seconds=YEAR_BUCKET,
            time_series=True,
            comment="per-hour count/sum/min/max, recomputed from stored raw rows",
        ),
        TableSpec(
            "anomalies",
            {
                "device_id": "text",
                "day": "timestamp",
                "ts": "timestamp",
                "sensor_id": "text",
                **_ANOMALY_VALUES,
            },
            partition_key=("device_id", "day"),
            # The detector is part of the key: two detectors' findings at the same
            # reading are two rows, never one overwriting the other.
            clustering=("ts", "sensor_id", "detector"),
            bucket_seconds=DAY,
            comment="anomalies by device and day, one row per detector",
        ),
        TableSpec(
            "anomalies_by_day",
            {
                "day": "timestamp",
                "ts": "timestamp",
                "device_id": "text",
                "sensor_id": "text",
                **_ANOMALY_VALUES,
            },
            partition_key=("day",),
            clustering=("ts", "device_id", "sensor_id", "detector"),
            bucket_seconds=DAY,
            comment="fleet-wide anomalies by day, no scans, one row per detector",
        ),
        TableSpec(
            "anomaly_lifecycle",
            {
                "day": "timestamp",
                "ts": "timestamp",
                "device_id": "text",
                "sensor_id": "text",
                "detector": "text",
                "status": "text",  # acknowledged | resolved (open has no row)
                "acknowledged_by": "text",
                "acknowledged_at": "timestamp",
                "resolved_by": "text",
                "resolved_at": "timestamp",
                "cleared_at": "timestamp",  # when the episode ended (auto-resolution)
                "note": "text",
            },
            partition_key=("day",),
            clustering=("ts", "device_id", "sensor_id", "detector"),
            bucket_seconds=DAY,
            # Kept apart from the anomalies so that a detector re-run, which rewrites
            # its rows whole, never undoes what an operator did.
            comment="what operators (or episode ends) did to each anomaly",
        ),
        TableSpec(
            "devices",
            {
                "device_id": "text",
                "device_type": "text",
                "status": "text",
                "location": "text",  # JSON object: building, floor, room
                "manufacturer": "text",
                "model": "text",
                "firmware_version": "text",
                "created_at": "timestamp",
                "updated_at": "timestamp",
                "last_seen": "timestamp",
                "version": "int",
            },
            partition_key=("device_id",),
            comment="projection of the event stream: one row per device",
        ),
        TableSpec(
            "sensors",
            {
                "device_id": "text",
                "sensor_id": "text",
                "sensor_type": "text",
                "unit": "text",
                "min_value": "double",
                "max_value": "double",
                "calibration_date": "timestamp",
                "added_at": "timestamp",
            },
            partition_key=("device_id",),
            clustering=("sensor_id",),
            comment="projection of the event stream: sensors of each device",
        ),
        TableSpec(
            "events",
            {
                "device_id": "text",
                "version": "int",
                "event_id": "text",
                "event_type": "text",
                "data": "text",  # JSON
                "occurred_at": "timestamp",
            },
            partition_key=("device_id",),
            clustering=("version",),
            comment="append-only device event streams (LWT on append)",
        ),
        TableSpec(
            "events_by_day",
            {
                "day": "timestamp",
                "occurred_at": "timestamp",
                "device_id": "text",
                "version": "int",
                "event_type": "text",
            },
            partition_key=("day",),
            clustering=("occurred_at", "device_id", "version"),
            bucket_seconds=DAY,
            bucket_source="occurred_at",
            comment="fleet-wide event feed by day for catch-up readers",
        ),
        TableSpec(
            "snapshots",
            {
                "device_id": "text",
                "version": "int",
                "state": "text",  # JSON
                "taken_at": "timestamp",
            },
            partition_key=("device_id",),
            clustering=("version",),
            descending=("version",),
            comment="serialised aggregate state every N events",
        ),
        TableSpec(
            "partition_index",
            {"table_name": "text", "key": "text", "bucket": "timestamp"},
            partition_key=("table_name", "key"),
            clustering=("bucket",),
            comment="which buckets of a bucketed table hold rows, so open ranges need no scan",
        ),
        TableSpec(
            "dead_letters",
            {
                "day": "timestamp",
                "received_at": "timestamp",
                "id": "text",
                "source": "text",
                "topic": "text",
                "payload": "text",
                "reason": "text",
            },
            partition_key=("day",),
            clustering=("received_at", "id"),
            bucket_seconds=DAY,
            bucket_source="received_at",
            ttl_seconds=THIRTY_DAYS,
            comment="malformed messages with the reason they were refused",
        ),
        TableSpec(
            "heartbeats_hour",
            {
                "device_id": "text",
                "bucket": "timestamp",
                "hour_start": "timestamp",
                "count": "int",
                "first_ts": "timestamp",
                "last_ts": "timestamp",
                "max_gap_ms": "int",  # longest spacing between the hour's heartbeats
            },
            partition_key=("device_id", "bucket"),
            clustering=("hour_start",),
            bucket_seconds=MONTH_BUCKET,  # 720 rows per partition
            bucket_source="hour_start",
            ttl_seconds=YEAR_BUCKET,
            time_series=True,
            comment="heartbeats per hour: count, first, last, longest gap; from stored rows",
        ),
    )
}


def bucket_column(spec: TableSpec) -> str | None:
    """The derived bucket column of a bucketed table (``bucket`` or ``day``), else ``None``.

    Examples
    --------
    >>> bucket_column(TABLES["anomalies"]), bucket_column(TABLES["devices"])
    ('day', None)
    """
    if spec.bucket_seconds is None:
        return None
    candidates = [c for c in spec.partition_key if spec.columns[c] == "timestamp"]
    return candidates[-1] if candidates else None
