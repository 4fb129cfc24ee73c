"""Device health and data quality from the stored data, and who needs attention first.

- **Device health** (:func:`device_health`): the last battery, cpu, memory and signal of
  each heartbeat series, its silence, and the battery's *time to empty*: a Theil-Sen
  (median of pairwise slopes) fit of the recent discharge (the steepest of the last 2 h,
  6 h and day, so a sudden drain shows within hours), robust to the odd outlier,
  with Sen's rank-based 90 % interval on the slope turned into an interval on the time
  to empty. A flat or rising battery has no time to empty (NaN).
- **Data quality** (:func:`data_quality`): per sensor, the gaps (silences longer than
  three reading intervals), the longest run of identical values (stuck) and readings
  outside the sensor's declared range.
- **Needs attention** (:func:`needs_attention`): devices ranked by their worst open
  anomaly (by ``score``, the unbounded one, then severity), silence, battery and data
  quality, each with its reasons in words.

Examples
--------
>>> t = pd.date_range("2026-01-01", periods=24, freq="1h", tz="UTC")
>>> battery = pd.Series(60.0 - np.arange(24.0))  # 1 % an hour: 37 % left at the end
>>> fit = battery_forecast(t, battery)
>>> round(fit.slope_per_day, 1), round(fit.days_to_empty, 2)
(-24.0, 1.54)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pandas as pd

from iotlab._compat import legacy_call_forms
from iotlab.store.queries import read_heartbeats, read_readings

if TYPE_CHECKING:
    from iotlab.store.base import Store

__all__ = [
    "BatteryForecast",
    "battery_forecast",
    "FleetHealth",
    "data_quality",
    "device_health",
    "fleet_health_check",
    "needs_attention",
]

#: a device silent for longer than this many heartbeat intervals counts as offline
OFFLINE_AFTER_INTERVALS = 3
#: batteries expected to be empty within this many days are reported
BATTERY_DAYS = 7.0
_SEVERITY_RANK = {"low": 1, "medium": 2, "high": 3, "critical": 4}
_Z90 = 1.6448536269514722
_BATTERY_WINDOWS = ("2h", "6h", "1D")


@dataclass(frozen=True)
class BatteryForecast:
    """The battery's level now and when it will be empty, with a 90 % interval."""

    level: float
    slope_per_day: float
    days_to_empty: float
    days_low: float
    days_high: float


def _theil_sen(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """Median pairwise slope and Sen's 90 % interval (at most 300 points used)."""
    if len(x) > 300:
        keep = np.linspace(0, len(x) - 1, 300).astype(int)
        x, y = x[keep], y[keep]
    i, j = np.triu_indices(len(x), k=1)
    dx = x[j] - x[i]
    ok = dx != 0
    slopes = np.sort((y[j] - y[i])[ok] / dx[ok])
    n, m = len(x), len(slopes)
    if m == 0:
        return float("nan"), float("nan"), float("nan")
    spread = _Z90 * np.sqrt(n * (n - 1) * (2 * n + 5) / 18.0)
    low = int(np.clip(np.floor((m - spread) / 2.0), 0, m - 1))
    high = int(np.clip(np.ceil((m + spread) / 2.0), 0, m - 1))
    return float(np.median(slopes)), float(slopes[low]), float(slopes[high])


def battery_forecast(
    ts: pd.Series | pd.DatetimeIndex, battery: pd.Series, *, recent: str = "1D"
) -> BatteryForecast:
    """Fit the last ``recent`` of a battery series; see the module docstring."""
    frame = pd.DataFrame({"ts": pd.DatetimeIndex(ts), "battery": np.asarray(battery, float)})
    frame = frame.dropna()
    if frame.empty:
        nan = float("nan")
        return BatteryForecast(nan, nan, nan, nan, nan)
    frame = frame[frame["ts"] > frame["ts"].max() - pd.Timedelta(recent)]
    days = (frame["ts"] - frame["ts"].max()).dt.total_seconds().to_numpy() / 86400.0
    level = float(frame["battery"].iloc[-1])
    slope, low, high = _theil_sen(days, frame["battery"].to_numpy())

    def to_empty(rate: float) -> float:
        return level / -rate if rate < 0 else float("inf")

    if not np.isfinite(slope) or slope >= 0:
        return BatteryForecast(level, slope, float("nan"), float("nan"), float("nan"))
    # the steeper end of the slope interval empties sooner
    return BatteryForecast(level, slope, to_empty(slope), to_empty(low), to_empty(high))


def device_health(
    heartbeats: pd.DataFrame, *, now: pd.Timestamp, interval: pd.Timedelta | None = None
) -> dict[str, Any]:
    """Health of one device from its heartbeats (``ts, cpu, memory, battery, signal``).

    Returns battery/cpu/memory/signal now (last value) and on average, the battery
    forecast, the last heartbeat, the silence up to ``now`` and ``offline`` (silent for
    more than :data:`OFFLINE_AFTER_INTERVALS` heartbeat intervals).
    """
    out: dict[str, Any] = {}
    beats = heartbeats.sort_values("ts") if len(heartbeats) else heartbeats
    for column in ("battery", "cpu", "memory", "signal"):
        values = beats[column] if len(beats) else pd.Series(dtype=float)
        out[column] = float(values.iloc[-1]) if len(values) else float("nan")
        out[f"{column}_mean"] = float(values.mean()) if len(values) else float("nan")
    if len(beats) > 1 and interval is None:
        interval = pd.Timedelta(beats["ts"].diff().median())
    last = beats["ts"].iloc[-1] if len(beats) else None
    silent = (now - last) if last is not None else None
    # The recent rate decides: a drain that began two hours ago shows in the last two
    # hours, not yet in the last day. The steepest of three windows is reported.
    # Only since the battery was last replaced or charged (a rise of 5 points or more).
    rises = (
        np.flatnonzero(beats["battery"].diff().to_numpy() > 5.0)
        if len(beats)
        else np.empty(0, dtype=np.intp)
    )
    since = beats.iloc[rises[-1] :] if len(rises) else beats
    forecasts = (
        [battery_forecast(since["ts"], since["battery"], recent=w) for w in _BATTERY_WINDOWS]
        if len(since) > 2
        else []
    )
    finite = [f for f in forecasts if np.isfinite(f.days_to_empty)]
    forecast = min(finite, key=lambda f: f.days_to_empty) if finite else None
    out.update(
        {
            "last_heartbeat": last,
            "silent_for": silent,
            "offline": bool(
                silent is None  # never heard from
                or (interval is not None and silent > OFFLINE_AFTER_INTERVALS * interval)
            ),
            "battery_days_to_empty": forecast.days_to_empty if forecast else float("nan"),
            "battery_days_low": forecast.days_low if forecast else float("nan"),
            "battery_days_high": forecast.days_high if forecast else float("nan"),
        }
    )
    return out


def data_quality(readings: pd.DataFrame, sensors: pd.DataFrame) -> pd.DataFrame:
    """Per sensor: gaps, the longest stuck run and out-of-range readings.

    ``readings`` has ``sensor_id, ts, value`` (one device); ``sensors`` the device's rows
    of the sensors projection (``sensor_id, min_value, max_value``). A gap is a silence
    longer than three reading intervals (the median spacing); a stuck run is at least
    12 identical values in a row lasting at least an hour.
    """
    rows = []
    limits = sensors.set_index("sensor_id")[["min_value", "max_value"]] if len(sensors) else None
    for sensor_id, own in readings.groupby("sensor_id", sort=True):
        own = own.sort_values("ts")
        ts, values = own["ts"], own["value"].to_numpy(float)
        gaps = ts.diff()
        step = gaps.median()
        long = gaps[gaps > 3 * step] if pd.notna(step) else gaps.iloc[:0]
        change = np.concatenate([[True], values[1:] != values[:-1]])
        run_id = np.cumsum(change)
        runs = pd.DataFrame({"run": run_id, "ts": ts.to_numpy()}).groupby("run")["ts"]
        sizes, first, last_ = runs.size(), runs.min(), runs.max()
        stuck = (sizes >= 12) & ((last_ - first) >= pd.Timedelta("1h"))
        # The run number (an int label) of the longest stuck run.
        longest = cast("int", (last_ - first)[stuck].idxmax()) if stuck.any() else None
        known = limits is not None and sensor_id in limits.index
        low, high = limits.loc[sensor_id] if known and limits is not None else (np.nan, np.nan)
        outside = int(((values < low) | (values > high)).sum()) if pd.notna(low) else 0
        rows.append(
            {
                "sensor_id": sensor_id,
                "readings": len(own),
                "gaps": len(long),
                "longest_gap": long.max() if len(long) else pd.Timedelta(0),
                "stuck_since": first[longest] if longest is not None else pd.NaT,
                "stuck_for": (last_[longest] - first[longest]) if longest is not None else pd.NaT,
                "stuck_until_end": bool(longest is not None and longest == run_id[-1]),
                "out_of_range": outside,
            }
        )
    columns = ["sensor_id", "readings", "gaps", "longest_gap", "stuck_since", "stuck_for"]
    return pd.DataFrame(rows, columns=[*columns, "stuck_until_end", "out_of_range"])


def _short(device_id: str) -> str:
    return device_id if len(device_id) <= 12 else device_id[:8] + "…"


def _days(value: float) -> str:
    if value < 1 / 24:
        return f"{value * 1440:.0f} min"
    return f"{value * 24:.0f} h" if value < 2 else f"{value:.1f} days"


def needs_attention(
    devices: pd.DataFrame,
    anomalies: pd.DataFrame,
    health: pd.DataFrame,
    quality: pd.DataFrame,
    *,
    now: pd.Timestamp,
) -> pd.DataFrame:
    """Devices that need someone, worst first, with their reasons in words.

    Each reason has a level: an open anomaly its severity; offline or a battery empty
    within two days ``high``; a battery empty within :data:`BATTERY_DAYS`, a sensor stuck
    until now or readings out of range ``medium``; gaps ``low``. A device's ``severity``
    is its worst reason's.

    Parameters
    ----------
    devices
        ``device_id, device_type`` of the devices considered.
    anomalies
        Anomalies with lifecycle (``status``); only open ones count.
    health
        :func:`device_health` rows with a ``device_id`` column.
    quality
        :func:`data_quality` rows with a ``device_id`` column.
    now
        The time the report is judged at (silence is counted up to it).

    Returns
    -------
    pandas.DataFrame
        ``rank, device_id, device_type, severity, open_anomalies, worst_score, reasons``;
        only devices with at least one reason. Ranked by severity, being offline, an
        emptying battery, then the worst open anomaly's ``score`` and the latest one.
    """
    open_ = anomalies[anomalies["status"] == "open"] if len(anomalies) else anomalies
    rows = []
    health = health.set_index("device_id") if len(health) else health
    # Rows of the frames: their fields are typed by the columns, not statically.
    device: Any
    q: Any
    for device in devices.itertuples(index=False):
        reasons, level = [], 0
        mine = open_[open_["device_id"] == device.device_id] if len(open_) else open_
        worst_score, latest = float("nan"), pd.NaT
        if len(mine):
            ranked = mine.assign(_rank=mine["severity"].map(_SEVERITY_RANK).fillna(0))
            worst = ranked.sort_values(["score", "_rank"], ascending=False).iloc[0]
            level = int(ranked["_rank"].max())
            worst_score, latest = float(worst["score"]), mine["ts"].max()
            reasons.append(
                f"{len(mine)} open anomal{'y' if len(mine) == 1 else 'ies'}; worst "
                f"{worst['sensor_id']} {worst['value']:.4g} vs expected "
                f"{worst['expected']:.4g} ({worst['severity']}, {worst['ts']:%Y-%m-%d %H:%M})"
            )
        h = health.loc[device.device_id] if device.device_id in set(health.index) else None
        offline = battery = 0
        if h is not None:
            if h["offline"]:
                offline, level = 1, max(level, _SEVERITY_RANK["high"])
                last = h["last_heartbeat"]
                reasons.append(
                    "never heard from"
                    if last is None or pd.isna(last)
                    else f"silent since {last:%Y-%m-%d %H:%M} "
                    f"({_days(h['silent_for'] / pd.Timedelta('1D'))})"
                )
            days = h["battery_days_to_empty"]
            if pd.notna(days) and days < BATTERY_DAYS:
                battery = 1
                level = max(level, _SEVERITY_RANK["high" if days < 2 else "medium"])
                reasons.append(
                    f"battery {h['battery']:.0f} %, empty in {_days(days)} "
                    f"(90 %: {_days(h['battery_days_low'])} to {_days(h['battery_days_high'])})"
                )
        mine_q = quality[quality["device_id"] == device.device_id] if len(quality) else quality
        for q in mine_q.itertuples(index=False):
            if q.stuck_until_end:
                level = max(level, _SEVERITY_RANK["medium"])
                reasons.append(f"{q.sensor_id} stuck since {q.stuck_since:%Y-%m-%d %H:%M}")
            if q.out_of_range:
                level = max(level, _SEVERITY_RANK["medium"])
                reasons.append(f"{q.sensor_id} {q.out_of_range} readings out of range")
        gapped = mine_q[mine_q["gaps"] > 0] if len(mine_q) else mine_q
        if len(gapped):
            level = max(level, _SEVERITY_RANK["low"])
            # The same gaps in every sensor: the device was silent, say it once.
            same = (
                len(gapped) == len(mine_q) and gapped[["gaps", "longest_gap"]].nunique().max() == 1
            )
            for q in (
                gapped.iloc[:1].itertuples(index=False) if same else gapped.itertuples(index=False)
            ):
                who = "all sensors" if same and len(mine_q) > 1 else q.sensor_id
                reasons.append(
                    f"{who}: {q.gaps} gap{'s' if q.gaps > 1 else ''} in the data, longest "
                    f"{_days(q.longest_gap / pd.Timedelta('1D'))}"
                )
        if reasons:
            rows.append(
                {
                    "device_id": device.device_id,
                    "device_type": device.device_type,
                    "severity": {v: k for k, v in _SEVERITY_RANK.items()}.get(level, ""),
                    "open_anomalies": len(mine),
                    "worst_score": worst_score,
                    "reasons": "; ".join(reasons),
                    "_order": (level, offline, battery, np.nan_to_num(worst_score, nan=-1.0)),
                    "_latest": latest,
                }
            )
    columns = ["device_id", "device_type", "severity", "open_anomalies", "worst_score", "reasons"]
    if not rows:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in ["rank", *columns]})
    frame = pd.DataFrame(rows)
    keys = pd.DataFrame(frame["_order"].tolist(), columns=["lvl", "off", "bat", "score"])
    frame = pd.concat([frame, keys], axis=1)
    frame["_latest"] = pd.to_datetime(frame["_latest"], utc=True)
    frame = frame.sort_values(
        ["lvl", "off", "bat", "score", "_latest", "device_id"],
        ascending=[False, False, False, False, False, True],
        kind="stable",
        na_position="last",
    )
    frame.insert(0, "rank", np.arange(1, len(frame) + 1))
    return frame[["rank", *columns]].reset_index(drop=True)


@dataclass(frozen=True)
class FleetHealth:
    """What :func:`fleet_health_check` found: who needs attention, health, data quality."""

    attention: pd.DataFrame
    health: pd.DataFrame
    quality: pd.DataFrame


@legacy_call_forms(store_first=True)
def fleet_health_check(
    store: Store,
    start: pd.Timestamp,
    end: pd.Timestamp,
    *,
    devices: pd.DataFrame,
    anomalies: pd.DataFrame,
    now: pd.Timestamp | None = None,
) -> FleetHealth:
    """Device health, data quality and the attention ranking of ``devices`` (rows of
    the devices projection) over ``[start, end)``, judged at ``now`` (default ``end``)."""
    now = end if now is None else now
    sensors = store.read_rows("sensors")
    health_rows, quality_parts = [], []
    for device_id in devices["device_id"]:
        beats = read_heartbeats(store, device_id, start=start, end=end)
        health_rows.append({"device_id": device_id, **device_health(beats, now=now)})
        readings = read_readings(store, device_id, start=start, end=end)
        own = sensors[sensors["device_id"] == device_id]
        quality_parts.append(data_quality(readings, own).assign(device_id=device_id))
    health = pd.DataFrame(health_rows)
    quality = (
        pd.concat(quality_parts, ignore_index=True)
        if quality_parts
        else data_quality(
            pd.DataFrame(columns=["sensor_id", "ts", "value"]), sensors.iloc[:0]
        ).assign(device_id=pd.Series(dtype=object))
    )
    quality = quality[["device_id", *[c for c in quality.columns if c != "device_id"]]]
    attention = needs_attention(devices, anomalies, health, quality, now=now)
    return FleetHealth(attention, health, quality)
