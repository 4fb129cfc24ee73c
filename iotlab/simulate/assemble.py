"""Turn per-type arrays and device plans into the frames of a :class:`Simulation`.

Arrays come per device type; rows must come out sorted by ``device_id``, so blocks
(one per device) are interleaved with a single gather index rather than a sort.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any, cast

import numpy as np
import pandas as pd

from iotlab.simulate.engine import METRIC_COLUMNS, READING_COLUMNS
from iotlab.simulate.model import TypeGroup
from iotlab.simulate.plan import DevicePlan, Window

__all__ = ["events_frame", "labels_frame", "metrics_frame", "readings_frame"]

LABEL_COLUMNS = ("device_id", "sensor_id", "start", "end", "kind")
EVENT_COLUMNS = ("device_id", "occurred_at", "event_type", "data")


def utc_ms(ms: np.ndarray) -> pd.arrays.DatetimeArray:
    """int64 epoch milliseconds -> a ``datetime64[ms, UTC]`` array (no copy of the values)."""
    naive = np.asarray(ms, dtype=np.int64).view("datetime64[ms]")
    # Read as UTC wall times directly: tz_localize would take 60x longer.
    return pd.DatetimeIndex(naive, dtype=pd.DatetimeTZDtype("ms", "UTC")).array


def text(values: np.ndarray | list[object]) -> pd.api.extensions.ExtensionArray:
    return pd.array(np.asarray(values, dtype=object), dtype="str")


def _gather(positions: list[np.ndarray], block: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Index that reorders concatenated per-group blocks into device (position) order.

    ``positions[g]`` are the fleet rows of group ``g``; each of its devices owns a
    contiguous block of ``block[g]`` elements. Returns (index, sorted block lengths).
    """
    pos = np.concatenate(positions)
    lengths = np.concatenate(
        [np.full(len(p), b, dtype=np.int64) for p, b in zip(positions, block)]
    )
    source = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    order = np.argsort(pos, kind="stable")
    lengths, source = lengths[order], source[order]
    target = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    total = int(lengths.sum())
    index = np.repeat(source - target, lengths) + np.arange(total, dtype=np.int64)
    return index, lengths


def _segment_sums(keep: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Kept elements in each consecutive block of ``lengths`` (blocks may be empty)."""
    ends = np.concatenate([[0], np.cumsum(keep, dtype=np.int64)])
    bounds = np.concatenate([[0], np.cumsum(lengths)])
    return ends[bounds[1:]] - ends[bounds[:-1]]


def readings_frame(
    device_ids: np.ndarray, groups: list[TypeGroup], arrays: list[dict[str, np.ndarray]],
    t_ms: np.ndarray,
) -> pd.DataFrame:  # fmt: skip
    """The readings rows of ``groups`` (devices sorted by id), dropping rows not kept."""
    if not groups or len(t_ms) == 0:
        return empty_readings()
    nt = len(t_ms)
    index, lengths = _gather(
        [g.positions for g in groups], [len(g.sensor_ids) * nt for g in groups]
    )
    keep = np.concatenate([a["keep"].ravel() for a in arrays])[index]
    index = index[keep]
    order = np.argsort(np.concatenate([g.positions for g in groups]), kind="stable")
    per_row = keep.reshape(-1, nt).sum(axis=1)
    sensors_in_order = (lengths // nt).astype(np.int64)
    per_device = np.add.reduceat(per_row, np.concatenate([[0], np.cumsum(sensors_in_order)[:-1]]))
    sensor_rows = np.concatenate(
        [np.tile(np.array(g.sensor_ids, dtype=object), len(g.positions)) for g in groups]
    )
    sensors_per_device = np.concatenate(
        [np.full(len(g.positions), len(g.sensor_ids)) for g in groups]
    )
    row_start = np.concatenate([[0], np.cumsum(sensors_per_device)[:-1]])
    # Sensor rows of each device, in device order.
    row_order = np.concatenate(
        [np.arange(row_start[d], row_start[d] + sensors_per_device[d]) for d in order]
    )
    if any(a["maintenance"].any() for a in arrays):
        in_maintenance = np.concatenate([a["maintenance"].ravel() for a in arrays])[index]
        status = np.array(["ok", "maintenance"], dtype=object)[in_maintenance.view(np.int8)]
    else:
        status = np.full(len(index), "ok", dtype=object)
    positions = np.concatenate([g.positions for g in groups])[order]
    return pd.DataFrame(
        {
            "device_id": text(np.repeat(device_ids[positions], per_device)),
            "sensor_id": text(np.repeat(sensor_rows[row_order], per_row)),
            "ts": utc_ms(np.tile(t_ms, len(row_order))[keep]),
            "value": np.concatenate([a["value"].ravel() for a in arrays])[index],
            "quality": np.concatenate([a["quality"].ravel() for a in arrays])[index].astype(
                np.int64
            ),
            "status": text(status),
        },
        columns=list(READING_COLUMNS),
        copy=False,
    )


def empty_readings() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "device_id": text([]),
            "sensor_id": text([]),
            "ts": utc_ms(np.array([], dtype=np.int64)),
            "value": np.array([], dtype=np.float64),
            "quality": np.array([], dtype=np.int64),
            "status": text([]),
        }
    )


def metrics_frame(
    device_ids: np.ndarray, groups: list[TypeGroup], arrays: list[dict[str, np.ndarray]]
) -> pd.DataFrame:
    """Heartbeat rows of ``groups`` sorted by device id and time."""
    if not groups:
        return empty_metrics()
    index, lengths = _gather([g.positions for g in groups], [len(a["t_ms"]) for a in arrays])
    keep = np.concatenate([a["keep"].ravel() for a in arrays])[index]
    index = index[keep]
    order = np.argsort(np.concatenate([g.positions for g in groups]), kind="stable")
    per_device = _segment_sums(keep, lengths)
    times = np.concatenate([np.tile(a["t_ms"], len(g.positions)) for g, a in zip(groups, arrays)])
    positions = np.concatenate([g.positions for g in groups])[order]
    frame = {
        "device_id": text(np.repeat(device_ids[positions], per_device)),
        "ts": utc_ms(times[index]),
    }
    for name in METRIC_COLUMNS[2:]:
        frame[name] = np.concatenate([a[name].ravel() for a in arrays])[index]
    return pd.DataFrame(frame, columns=list(METRIC_COLUMNS), copy=False)


def empty_metrics() -> pd.DataFrame:
    frame: dict[str, object] = {
        "device_id": text([]),
        "ts": utc_ms(np.array([], dtype=np.int64)),
    }
    for name in METRIC_COLUMNS[2:]:
        frame[name] = np.array([], dtype=np.float64)
    return pd.DataFrame(frame)


def labels_frame(
    rows: list[tuple[str, str | None, int, int, str]],
) -> pd.DataFrame:
    """Labels from ``(device_id, sensor_id, start_ms, end_ms, kind)`` tuples."""
    rows = sorted(rows, key=lambda r: (r[0], r[2]))
    columns: list[tuple[object, ...]] = list(zip(*rows)) if rows else [(), (), (), (), ()]
    return pd.DataFrame(
        {
            "device_id": text(list(columns[0])),
            "sensor_id": text(list(columns[1])),
            "start": utc_ms(np.array(columns[2], dtype=np.int64)),
            "end": utc_ms(np.array(columns[3], dtype=np.int64)),
            "kind": text(list(columns[4])),
        },
        columns=list(LABEL_COLUMNS),
    )


def plan_labels(
    device_id: str, sensor_ids: tuple[str, ...], plan: DevicePlan, window: Window,
    a_ms: int, b_ms: int,
) -> list[tuple[str, str | None, int, int, str]]:  # fmt: skip
    """Label rows of one device's faults that start in ``[a_ms, b_ms)``."""
    out = []
    for fault in plan.faults:
        start = window.time(fault.k0)
        if a_ms <= start < b_ms:
            sensor = sensor_ids[fault.sensor] if fault.sensor >= 0 else None
            out.append((device_id, sensor, start, window.time(fault.k1), fault.kind))
    return out


def plan_events(
    device: Mapping[Hashable, Any], sensors: Sequence[Mapping[Hashable, Any]],
    plan: DevicePlan, window: Window,
) -> list[tuple[int, str, str, dict[str, object]]]:  # fmt: skip
    """All lifecycle events of one device as ``(ms, device_id, event_type, data)``."""
    device_id = str(device["device_id"])
    provisioned = {
        "device_type": device["device_type"],
        "location": dict(device["location"]),
        "manufacturer": device["manufacturer"],
        "model": device["model"],
        "firmware_version": device["firmware_version"],
        "sensors": [
            {
                "sensor_id": s["sensor_id"],
                "sensor_type": s["sensor_type"],
                "unit": s["unit"],
                "min_value": float(cast(float, s["min_value"])),
                "max_value": float(cast(float, s["max_value"])),
                "calibration_date": pd.Timestamp(cast(Any, s["calibration_date"])).isoformat(),
            }
            for s in sensors
        ],
    }
    events = [
        (plan.provisioned_ms, device_id, "DeviceProvisioned", provisioned),
        (plan.activated_ms, device_id, "DeviceActivated", {}),
    ]
    for k0, k1, reason in plan.maintenance:
        events.append((window.time(k0), device_id, "MaintenanceStarted", {"reason": reason}))
        events.append((window.time(k1), device_id, "MaintenanceEnded", {}))
    location = dict(device["location"])
    for k, where in plan.relocations:
        events.append(
            (window.time(k), device_id, "DeviceLocationUpdated",
             {"old_location": location, "new_location": dict(where)})
        )  # fmt: skip
        location = dict(where)
    version = device["firmware_version"]
    for k, new in plan.firmware_updates:
        events.append(
            (window.time(k), device_id, "FirmwareUpdated",
             {"old_version": version, "new_version": new})
        )  # fmt: skip
        version = new
    if plan.decommission is not None:
        k, reason = plan.decommission
        events.append((window.time(k), device_id, "DeviceDecommissioned", {"reason": reason}))
    return events


def events_frame(events: list[tuple[int, str, str, dict[str, object]]]) -> pd.DataFrame:
    """Events sorted by time, then device id (a device never has two at the same time)."""
    events = sorted(events, key=lambda e: (e[0], e[1]))
    columns: list[tuple[object, ...]] = list(zip(*events)) if events else [(), (), (), ()]
    return pd.DataFrame(
        {
            "device_id": text(list(columns[1])),
            "occurred_at": utc_ms(np.array(columns[0], dtype=np.int64)),
            "event_type": text(list(columns[2])),
            "data": pd.Series(list(columns[3]), dtype=object),
        },
        columns=list(EVENT_COLUMNS),
    )
