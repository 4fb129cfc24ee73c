"""A small sample dataset: 10 simulated devices, 7 days of 5-minute readings, with labels.

The files in ``data/`` are written by::

    python -m iotlab.datasets --write data/

from ``Fleet(10, seed=7).simulate("2026-01-05", days=7, freq="5min")`` (see
:data:`SAMPLE`), as gzip-compressed CSV (values rounded to 6 significant digits,
dict columns as JSON). :func:`load_sample` reads them back; where the files are
missing (an installed package without the repository) it simulates the same data.

Examples
--------
>>> sim = load_sample()
>>> sim.devices.shape[0], sim.readings["ts"].dt.tz is not None
(10, True)
>>> sim.labels.groupby("kind").size()["spike"] > 10
np.True_
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TypedDict

import pandas as pd

from iotlab.simulate import Fleet, Simulation

__all__ = ["SAMPLE", "load_sample", "make_sample", "write_sample"]


class SampleParameters(TypedDict):
    """What :data:`SAMPLE` holds: the arguments of ``Fleet`` and ``Fleet.simulate``."""

    n_devices: int
    seed: int
    start: str
    days: int
    freq: str


#: The parameters the sample is simulated with.
SAMPLE: SampleParameters = {
    "n_devices": 10,
    "seed": 7,
    "start": "2026-01-05",
    "days": 7,
    "freq": "5min",
}
DEFAULT_DIR = Path(__file__).resolve().parent.parent / "data"
FRAMES = ("readings", "device_metrics", "labels", "events", "devices", "sensors")
TIME_COLUMNS = {
    "readings": ("ts",),
    "device_metrics": ("ts",),
    "labels": ("start", "end"),
    "events": ("occurred_at",),
    "sensors": ("calibration_date",),
}
JSON_COLUMNS = {"events": ("data",), "devices": ("location",)}


def make_sample() -> Simulation:
    """Simulate the sample (exactly, without rounding)."""
    fleet = Fleet(SAMPLE["n_devices"], seed=SAMPLE["seed"])
    return fleet.simulate(SAMPLE["start"], days=SAMPLE["days"], freq=SAMPLE["freq"])


def write_sample(directory: str | Path) -> list[Path]:
    """Write the sample's frames as ``<name>.csv.gz`` files; return their paths."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    sim = make_sample()
    paths = []
    for name in FRAMES:
        frame = getattr(sim, name).copy()
        for column in JSON_COLUMNS.get(name, ()):
            frame[column] = [json.dumps(v, sort_keys=True) for v in frame[column]]
        path = directory / f"{name}.csv.gz"
        # mtime=0: the same data gives the same bytes, so git sees no change.
        frame.to_csv(
            path, index=False, float_format="%.6g", compression={"method": "gzip", "mtime": 0}
        )
        paths.append(path)
    return paths


def _read(path: Path, name: str) -> pd.DataFrame:
    frame = pd.read_csv(path, keep_default_na=name == "labels")
    for column in TIME_COLUMNS.get(name, ()):
        frame[column] = pd.to_datetime(frame[column], utc=True).astype("datetime64[ms, UTC]")
    for column in JSON_COLUMNS.get(name, ()):
        frame[column] = pd.Series([json.loads(v) for v in frame[column]], dtype=object)
    dtypes = {"quality": "int64", "min_value": "float64", "max_value": "float64"}
    return frame.astype({c: dtype for c, dtype in dtypes.items() if c in frame})


def load_sample(directory: str | Path | None = None) -> Simulation:
    """The sample dataset as a :class:`~iotlab.simulate.Simulation`.

    Parameters
    ----------
    directory
        Where the ``*.csv.gz`` files are; default: the repository's ``data/``. If they
        are not there, the sample is simulated instead (same data, unrounded).
    """
    folder = Path(directory) if directory is not None else DEFAULT_DIR
    if not all((folder / f"{name}.csv.gz").exists() for name in FRAMES):
        if directory is not None:
            missing = [n for n in FRAMES if not (folder / f"{n}.csv.gz").exists()]
            raise FileNotFoundError(f"{folder}: missing {', '.join(missing)} (.csv.gz)")
        return make_sample()
    frames = {name: _read(folder / f"{name}.csv.gz", name) for name in FRAMES}
    start = pd.Timestamp(SAMPLE["start"], tz="UTC")
    return Simulation(
        **frames,
        start=start,
        end=start + pd.Timedelta(days=SAMPLE["days"]),
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m iotlab.datasets", description=__doc__)
    parser.add_argument("--write", metavar="DIR", required=True, help="directory to write to")
    args = parser.parse_args(argv)
    for path in write_sample(args.write):
        print(f"{path}  {path.stat().st_size / 1e3:.0f} kB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
