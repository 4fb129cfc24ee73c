"""A newcomer's first hour, scripted: the README's quick start and the CLI workflow.

Each part runs in a fresh temporary directory with no ``$IOTLAB_STORE``, as on a fresh
clone: the quick start pasted into ``quickstart.py`` and run by ``python``, the same code
as a notebook cell in a real Jupyter kernel, and ``iotlab simulate → provision → ingest →
detect → report`` as separate processes, checking what each prints and its exit status.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def readme_quick_start() -> str:
    """The first Python block under the README's "Quick start" heading."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Quick start") :]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "IOTLAB_STORE"}


def _check_quick_start_outputs(printed: str, directory: Path) -> None:
    written = re.search(r"IngestResult\(written=(\d+), rejected=0\)", printed)
    assert written and int(written.group(1)) > 1000, printed
    day = re.search(r"(\S+) (\S+): (\d+) readings on 2026-01-02", printed)
    assert day and int(day.group(3)) > 0, printed  # a sensor the device really has
    assert re.search(r"^\d+ anomalies$", printed, re.M), printed
    report = directory / "fleet-health.html"
    uptime = re.search(r"Mean uptime ([\d.]+)%", report.read_text(encoding="utf-8"))
    assert uptime and float(uptime.group(1)) > 50  # the window holds the data
    assert (directory / ".iotlab" / "iotlab.db").is_file()  # the documented default store


def test_readme_quick_start_runs_as_a_script(tmp_path) -> None:
    script = tmp_path / "quickstart.py"
    script.write_text(readme_quick_start(), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and "BrokenProcessPool" not in done.stderr
    _check_quick_start_outputs(done.stdout, tmp_path)


def test_readme_quick_start_runs_as_a_notebook(tmp_path, monkeypatch) -> None:
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.delenv("IOTLAB_STORE", raising=False)
    notebook = nbformat.v4.new_notebook()
    notebook.cells.append(nbformat.v4.new_code_cell(readme_quick_start()))
    NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": tmp_path}}
    ).execute()
    outputs = notebook.cells[0].outputs
    assert not [o for o in outputs if o.output_type == "error"]
    printed = "".join(o.get("text", "") for o in outputs if o.get("name") == "stdout")
    _check_quick_start_outputs(printed, tmp_path)


def _iotlab(directory: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the installed ``iotlab`` command in ``directory``."""
    command = Path(sys.executable).with_name("iotlab")
    argv = [str(command)] if command.exists() else [sys.executable, "-m", "iotlab.cli"]
    quiet = ["--no-progress"] if args[0] != "--version" else []
    return subprocess.run(
        [*argv, *args, *quiet],
        cwd=directory,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )


def _ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    return done.stdout


def _refused(done: subprocess.CompletedProcess[str], status: int, words: str) -> None:
    assert done.returncode == status, (done.stdout, done.stderr)
    assert done.stderr.startswith("iotlab: error: ") and words in done.stderr, done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr


def test_cli_workflow_from_an_empty_directory(tmp_path) -> None:
    import iotlab

    assert _ok(_iotlab(tmp_path, "--version")).strip() == f"iotlab {iotlab.__version__}"
    fleet = ["--devices", "5", "--seed", "7"]
    printed = _ok(
        _iotlab(
            tmp_path,
            "simulate",
            *fleet,
            "--days",
            "3",
            "--freq",
            "15min",
            "--start",
            "2026-01-01",
            "--out",
            "readings.csv",
            "--metrics-out",
            "heartbeats.csv",
        )
    )
    n_readings = int(re.search(r"readings: +(\d+) rows -> readings.csv", printed).group(1))
    n_beats = int(re.search(r"heartbeats: +(\d+) rows -> heartbeats.csv", printed).group(1))

    # Before provisioning every reading is refused: exit 1, the reasons in ./ .
    done = _iotlab(tmp_path, "ingest", "readings.csv")
    _refused(done, 1, f"all {n_readings} rows of readings.csv were rejected")
    assert "sensor not provisioned" in done.stdout
    assert (tmp_path / "readings.rejected.csv").is_file()

    printed = _ok(_iotlab(tmp_path, "provision", *fleet))
    assert "provisioned: 5 new devices" in printed
    assert f"({tmp_path / '.iotlab' / 'iotlab.db'})" in printed  # says where the store is

    printed = _ok(_iotlab(tmp_path, "ingest", "readings.csv"))
    assert f"written:     {n_readings}" in printed and "rejected:    0" in printed
    assert not (tmp_path / "readings.rejected.csv").exists()  # the stale one is gone
    assert "removed readings.rejected.csv" in printed

    # A readings file given as heartbeats is refused before anything is written.
    _refused(_iotlab(tmp_path, "ingest", "--metrics", "readings.csv"), 2, "cpu, memory")
    printed = _ok(_iotlab(tmp_path, "ingest", "--metrics", "heartbeats.csv"))
    assert f"written:     {n_beats}" in printed

    _refused(_iotlab(tmp_path, "detect", "--devices", "nope"), 2, "unknown devices")
    printed = _ok(_iotlab(tmp_path, "detect"))  # Prophet, as a newcomer runs it
    assert "window:      2026-01-01 00:00 UTC to 2026-01-04 00:00 UTC" in printed
    assert re.search(r"anomalies: .*\(total [1-9]\d*\)", printed), printed

    printed = _ok(_iotlab(tmp_path, "report", "fleet_health"))
    report = tmp_path / "reports" / "fleet-health.html"
    assert "report:      reports/fleet-health.html" in printed
    assert "note:        data until 2026-01-03" in printed
    html = report.read_text(encoding="utf-8")
    assert "Data until 2026-01-03" in html and "Mean uptime 0.0%" not in html

    _refused(_iotlab(tmp_path, "report", "fleet_health"), 2, "pass --force")
    assert report.read_text(encoding="utf-8") == html
    _ok(_iotlab(tmp_path, "report", "fleet_health", "--force"))

    # A store URL with a slash too few is an error, not a new empty database.
    _refused(
        _iotlab(tmp_path, "report", "anomaly_summary", "--store", "sqlite:///srv/x.db"),
        2,
        "four slashes",
    )
    assert not (tmp_path / "srv").exists()
