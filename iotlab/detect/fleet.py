"""Fleet-wide detection: one model per (device, sensor), fitted in parallel, stored.

The parallel core (:func:`score_many`) takes plain data (timestamps and values),
never the store, so it runs the same in a process pool (spawned workers, one
core each) and on a ``dask.distributed`` cluster (``client.map``).
:func:`detect_anomalies` reads the readings from a store, runs the core, and writes
one row per anomaly *episode* (its peak reading, as :meth:`Detector.detect`
returns it) to both ``anomalies`` and ``anomalies_by_day``. The rows' keys are the
episode's peak time, device and sensor, so re-running writes the same rows.
"""

from __future__ import annotations

import copy
import multiprocessing
from collections.abc import Hashable, Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar, cast

import numpy as np
import pandas as pd

from iotlab._compat import deprecated, legacy_call_forms
from iotlab._time import TimeLike, utc_timestamp_or_none
from iotlab._vocabulary import id_list
from iotlab.detect.base import Detector
from iotlab.detect.prophet import ProphetResidualDetector
from iotlab.errors import IotlabError, NotFoundError, ValidationError

if TYPE_CHECKING:
    from distributed import Client

    from iotlab.store.base import Store

__all__ = ["FleetRun", "detect_anomalies", "episodes_many", "score_many"]

SeriesKey = tuple[str, str]
T = TypeVar("T")


class FleetRun(NamedTuple):
    """What a fleet-wide run produced: ``rows`` (one per reading, or per anomaly episode)
    with ``device_id, sensor_id`` first, and ``failures`` (``device_id, sensor_id,
    error``), one row per series that could not be fitted or scored."""

    rows: pd.DataFrame
    failures: pd.DataFrame


_STORED = ("value", "expected", "lower", "upper", "score", "confidence")


def _configured(detector: Detector, sensor_range: tuple[float, float] | None) -> Detector:
    fresh = copy.deepcopy(detector)
    usable = sensor_range is not None and all(pd.notna(v) for v in sensor_range)
    if usable and sensor_range is not None and sensor_range[1] > sensor_range[0]:
        fresh.sensor_range = (float(sensor_range[0]), float(sensor_range[1]))
    return fresh


#: Thread pools a worker caps at one thread: the parallelism is across series (one
#: process per core), and a BLAS or OpenMP pool per process would oversubscribe the cores.
_ONE_THREAD = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "STAN_NUM_THREADS")


def _worker_init() -> None:
    """Once per worker process: one thread each, and Prophet imported up front (its
    import takes most of a second; paid once per worker, not per task)."""
    import os

    for name in _ONE_THREAD:
        os.environ[name] = "1"  # inherited by the cmdstan processes Prophet starts
    from iotlab.detect._quiet import import_prophet

    import_prophet()


def _pack(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """A series as two plain arrays (epoch ns, float64): cheap to pickle to a worker."""
    ts = pd.to_datetime(frame["ts"], utc=True) if len(frame) else frame["ts"]
    return (
        pd.DatetimeIndex(ts).as_unit("ns").asi8.copy(),
        pd.to_numeric(frame["value"], errors="coerce").to_numpy(dtype=np.float64, copy=True),
    )


def _unpack(ts_ns: np.ndarray, values: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({"ts": pd.to_datetime(ts_ns, utc=True), "value": values})


def _run_one(task: tuple) -> tuple:
    """Worker: fit and score one series. Returns (key, frame or None, error or None).

    Expected failures (too little data, a constant series a detector cannot use) come
    back as text so one bad sensor never aborts a fleet run.
    """
    key, (ts_ns, values), sensor_range, detector, mode = task
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # reported per series below
            fitted = _configured(detector, sensor_range)
            scored = fitted.score(_unpack(ts_ns, values))
            out = fitted.episodes(scored) if mode == "episodes" else scored
        return key, out, None
    except (IotlabError, ValueError, RuntimeError) as exc:
        return key, None, f"{type(exc).__name__}: {exc}"


def _progress(iterable: Iterable[T], total: int, enabled: bool) -> Iterable[T]:
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc="detect", unit="series")


def _run(
    series: Mapping[SeriesKey, pd.DataFrame],
    detector: Detector | None,
    sensor_ranges: Mapping[SeriesKey, tuple[float, float]] | None,
    n_jobs: int,
    client: Client | None,
    progress: bool,
    mode: str,
) -> FleetRun:
    detector = detector or ProphetResidualDetector()
    if n_jobs < 1:
        raise ValidationError(f"must be >= 1, got {n_jobs}", field="n_jobs")
    ranges = sensor_ranges or {}
    tasks = [(key, _pack(frame), ranges.get(key), detector, mode) for key, frame in series.items()]
    results: list[tuple] = []
    if client is not None:
        from distributed import as_completed

        client.run(_worker_init)
        # Scattered first: the series go to the workers as data, not inside the task graph.
        futures = client.map(_run_one, client.scatter(tasks), pure=False)
        results = [f.result() for f in _progress(as_completed(futures), len(tasks), progress)]
    elif n_jobs == 1 or len(tasks) <= 1:
        results = [_run_one(task) for task in _progress(iter(tasks), len(tasks), progress)]
    else:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(
            max_workers=n_jobs, mp_context=context, initializer=_worker_init
        ) as pool:
            # A few chunks per worker: big enough to amortise the round trips, small
            # enough that one slow series does not leave the other workers idle.
            chunk = max(1, -(-len(tasks) // (4 * n_jobs)))
            mapped = pool.map(_run_one, tasks, chunksize=chunk)
            results = list(_progress(mapped, len(tasks), progress))
    frames, failures = [], []
    for (device_id, sensor_id), frame, error in sorted(results, key=lambda r: r[0]):
        if error is not None:
            failures.append({"device_id": device_id, "sensor_id": sensor_id, "error": error})
        elif len(frame):
            frames.append(frame.assign(device_id=device_id, sensor_id=sensor_id))
    failed = pd.DataFrame(failures, columns=["device_id", "sensor_id", "error"])
    if not frames:
        return FleetRun(pd.DataFrame(), failed)
    out = pd.concat(frames, ignore_index=True)
    front = ["device_id", "sensor_id"]
    return FleetRun(out[front + [c for c in out.columns if c not in front]], failed)


def score_many(
    series: Mapping[SeriesKey, pd.DataFrame],
    detector: Detector | None = None,
    *,
    sensor_ranges: Mapping[SeriesKey, tuple[float, float]] | None = None,
    n_jobs: int = 1,
    client: Client | None = None,
    progress: bool = True,
) -> FleetRun:
    """Fit and score many series in parallel: every reading's scores, and the failures.

    ``series`` maps ``(device_id, sensor_id)`` to a series; each gets its own copy of
    ``detector`` (default :class:`ProphetResidualDetector`) with its sensor range.
    """
    return _run(series, detector, sensor_ranges, n_jobs, client, progress, "scores")


def episodes_many(
    series: Mapping[SeriesKey, pd.DataFrame],
    detector: Detector | None = None,
    *,
    sensor_ranges: Mapping[SeriesKey, tuple[float, float]] | None = None,
    n_jobs: int = 1,
    client: Client | None = None,
    progress: bool = True,
) -> FleetRun:
    """Fit many series in parallel: their anomaly episodes (one row each, as
    :meth:`Detector.detect` returns them), and the failures."""
    return _run(series, detector, sensor_ranges, n_jobs, client, progress, "episodes")


def detect_many(*args: Any, **kwargs: Any) -> pd.DataFrame:
    """Deprecated: :func:`episodes_many`, with the failures in ``result.attrs``."""
    deprecated("detect_many() is deprecated, use episodes_many() (rows, failures)")
    rows, failures = episodes_many(*args, **kwargs)
    rows.attrs["failures"] = failures
    return rows


def read_anomalies(
    store: Store,
    start: TimeLike | None = None,
    end: TimeLike | None = None,
    device_id: str | None = None,
) -> pd.DataFrame:
    """Deprecated: :func:`iotlab.store.lifecycle.read_anomalies` (``devices=``)."""
    from iotlab.store.lifecycle import read_anomalies as read

    deprecated("detect.fleet.read_anomalies is deprecated, use store.lifecycle.read_anomalies")
    return read(store, start=start, end=end, devices=device_id)


@legacy_call_forms(positional=("start", "end"))
def detect_anomalies(
    store: Store,
    *,
    start: TimeLike | None = None,
    end: TimeLike | None = None,
    devices: str | Sequence[str] | None = None,
    detector: Detector | None = None,
    n_jobs: int = 1,
    client: Client | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Detect anomalies of every (device, sensor) in ``[start, end)`` and store them.

    Returns one row per episode (columns of :meth:`Detector.detect` plus ``device_id``,
    ``sensor_id``, ``status="open"`` and ``detector``); series that could not be
    processed are listed in ``result.attrs["failures"]`` (device_id, sensor_id, error).
    The episodes' peak readings are written to ``anomalies`` and ``anomalies_by_day``.
    """
    from iotlab.store.queries import read_readings

    detector = detector or ProphetResidualDetector()
    lo, hi = utc_timestamp_or_none(start, field="start"), utc_timestamp_or_none(end, field="end")
    sensors = store.read_rows("sensors")
    wanted = id_list(devices, field="devices")
    if wanted is not None:
        sensors = sensors[sensors["device_id"].isin(wanted)]
    series: dict[SeriesKey, pd.DataFrame] = {}
    ranges: dict[SeriesKey, tuple[float, float]] = {}
    for device_id, own in sensors.groupby("device_id", sort=True):
        try:
            readings = read_readings(store, str(device_id), start=lo, end=hi)
        except NotFoundError:  # a sensor without readings: reported as a failure below
            readings = pd.DataFrame()
        by_sensor: dict[Hashable, pd.DataFrame] = (
            dict(iter(readings.groupby("sensor_id"))) if len(readings) else {}
        )
        for row in own.itertuples(index=False):
            key = (str(row.device_id), str(row.sensor_id))
            data = by_sensor.get(row.sensor_id)
            series[key] = (
                data[["ts", "value"]]
                if data is not None
                else pd.DataFrame({"ts": pd.Series([], dtype="datetime64[ms, UTC]"), "value": []})
            )
            # Floats, NaN where undeclared (_configured then keeps the detector's own range).
            ranges[key] = cast("tuple[float, float]", (row.min_value, row.max_value))
    events, failures = episodes_many(
        series, detector, sensor_ranges=ranges, n_jobs=n_jobs, client=client, progress=progress
    )
    if events.empty:
        events = pd.DataFrame(
            columns=[
                "device_id",
                "sensor_id",
                "start",
                "end",
                "ts",
                *_STORED,
                "severity",
                "n_points",
            ]
        )
    events = events.assign(status="open", detector=detector.name)
    rows = events[["device_id", "ts", "sensor_id", *_STORED]].assign(
        ts=pd.to_datetime(events["ts"], utc=True).astype("datetime64[ms, UTC]"),
        severity=events["severity"].astype(object).astype(str),
        status="open",
        detector=detector.name,
    )
    if len(rows):
        store.write_rows("anomalies", rows)
        store.write_rows(
            "anomalies_by_day", rows[["ts", "device_id", "sensor_id", *rows.columns[3:]]]
        )
    events.attrs["failures"] = failures
    return events
