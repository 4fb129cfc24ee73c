"""Collapse flagged readings into anomaly episodes: one alert per ongoing anomaly.

Flagged readings belong to the same episode while the gap between consecutive
flagged readings is at most ``gap``; the unflagged readings in between are part
of the episode's extent (a stuck sensor or a drift is not flagged at every
reading, and it should not raise a new alert each time it is).

Examples
--------
>>> import pandas as pd
>>> ts = pd.Series(pd.date_range("2026-01-01", periods=6, freq="5min", tz="UTC"))
>>> episode_ids(ts, pd.Series([False, True, True, False, False, True]), gap="5min").tolist()
[-1, 0, 0, -1, -1, 1]
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["EPISODE_COLUMNS", "collapse_episodes", "episode_ids"]

#: Columns of :meth:`Detector.detect` (see there for their meaning).
EPISODE_COLUMNS = (
    "start",
    "end",
    "ts",
    "value",
    "expected",
    "lower",
    "upper",
    "residual",
    "score",
    "confidence",
    "severity",
    "n_points",
)


def episode_ids(
    ts: pd.Series, flagged: pd.Series | np.ndarray, gap: str | pd.Timedelta
) -> np.ndarray:
    """Event number (0, 1, ...) of each flagged row, -1 for unflagged rows.

    ``ts`` must be sorted. Events are numbered in time order.
    """
    flags = np.asarray(flagged, dtype=bool)
    ids = np.full(flags.shape, -1, dtype=np.int64)
    if not flags.any():
        return ids
    times = pd.DatetimeIndex(ts).as_unit("ns").asi8[flags]
    new_event = np.diff(times, prepend=times[0] - 1) > pd.Timedelta(gap).value
    new_event[0] = True
    ids[flags] = np.cumsum(new_event) - 1
    return ids


def collapse_episodes(scored: pd.DataFrame, gap: str | pd.Timedelta) -> pd.DataFrame:
    """One row per episode of a scored frame: extent, count and the peak reading.

    Extra key columns present in ``scored`` (``device_id``, ``sensor_id``) are kept
    in front; ``scored`` must hold one series sorted by ``ts``.
    """
    keys = [c for c in ("device_id", "sensor_id") if c in scored.columns]
    ids = episode_ids(scored["ts"], scored["is_anomaly"], gap)
    flagged = scored.loc[ids >= 0].assign(_event=ids[ids >= 0])
    if flagged.empty:
        empty = scored.iloc[:0]
        out = pd.DataFrame({c: empty[c] for c in keys})
        out["start"] = empty["ts"]
        out["end"] = empty["ts"]
        for col in EPISODE_COLUMNS[2:-1]:
            out[col] = empty[col]
        out["n_points"] = pd.Series([], dtype="int64")
        return out.reset_index(drop=True)
    groups = flagged.groupby("_event", sort=True)
    # The peak is the most anomalous reading: the highest score (which never ties).
    peak_rows = flagged.loc[
        flagged.sort_values(["_event", "score"], ascending=[True, False])
        .drop_duplicates("_event")
        .index
    ]
    out = peak_rows[keys].reset_index(drop=True)
    out["start"] = groups["ts"].min().to_numpy()
    out["end"] = groups["ts"].max().to_numpy()
    for col in EPISODE_COLUMNS[2:-2]:
        out[col] = peak_rows[col].to_numpy()
    worst = groups["severity"].max()
    out["severity"] = pd.Categorical(
        worst.to_numpy(), categories=scored["severity"].cat.categories, ordered=True
    )
    out["n_points"] = groups.size().to_numpy().astype("int64")
    return out
