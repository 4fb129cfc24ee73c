"""What a newcomer does in the first hour must not silently overwrite, hide or lose data.

One test (or a few) per finding of issue 20, numbered as there. Each runs the real
command in-process (``iotlab.cli.main``) on a real embedded store in a temporary
directory, and checks the exit status, the one-line error and what the store or the files
hold afterwards.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import iotlab
from iotlab.cli import main
from iotlab.errors import InvalidURLError, NotFoundError, StoreConnectionError, ValidationError
from iotlab.simulate import Fleet

ROOT = Path(__file__).resolve().parent.parent
FLEET = ["--devices", "3", "--seed", "11"]


@pytest.fixture
def here(tmp_path, monkeypatch) -> Path:
    """A fresh working directory with no $IOTLAB_STORE: the default store lands here."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("IOTLAB_STORE", raising=False)
    return tmp_path


@pytest.fixture
def loaded(here, capsys) -> Path:
    """Three devices' readings and heartbeats, two days from 2026-01-01, in ./.iotlab."""
    simulate = ["simulate", *FLEET, "--days", "2", "--freq", "30min", "--start", "2026-01-01"]
    files = ["--out", "readings.csv", "--metrics-out", "heartbeats.csv"]
    assert main([*simulate, *files, "--no-progress"]) == 0
    with iotlab.connect() as lab:  # the library, so that item 8's command is not assumed
        lab.provision(Fleet(n_devices=3, seed=11))
    assert main(["ingest", "readings.csv", "--no-progress"]) == 0
    assert main(["ingest", "--metrics", "heartbeats.csv", "--no-progress"]) == 0
    capsys.readouterr()
    return here


def _one_line_error(capsys, *words: str) -> str:
    err = capsys.readouterr().err
    assert err.startswith("iotlab: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    for word in words:
        assert word in err, err
    return err


def _heartbeats(device: str) -> pd.DataFrame:
    with iotlab.connect() as lab:
        return lab.heartbeats(device)


# 1 ---------------------------------------------------------------------------------------
def test_1_readings_given_as_heartbeats_are_refused_and_heartbeats_kept(loaded, capsys):
    device = pd.read_csv("heartbeats.csv")["device_id"][0]
    before = _heartbeats(device)
    assert before["cpu"].notna().all()
    assert main(["ingest", "--metrics", "readings.csv", "--no-progress"]) == 2
    _one_line_error(capsys, "missing column(s) cpu, memory, battery, signal")
    pd.testing.assert_frame_equal(_heartbeats(device), before)
    # The library refuses it too, whoever calls it.
    readings = pd.read_csv("readings.csv").assign(ts=lambda f: pd.to_datetime(f["ts"]))
    with iotlab.connect() as lab, pytest.raises(ValidationError, match="heartbeat metric"):
        lab.ingest_metrics(readings, progress=False)


# 2 ---------------------------------------------------------------------------------------
def test_2_sqlite_url_into_a_missing_directory_is_an_error_not_a_new_database(here, capsys):
    with pytest.raises(InvalidURLError, match="four slashes"):
        iotlab.connect("sqlite:///srv/x.db")
    assert not (here / "srv").exists()
    assert main(["report", "fleet_health", "--store", "sqlite:///srv/x.db"]) == 2
    _one_line_error(capsys, str(here / "srv" / "x.db"), "four slashes")
    assert not (here / "srv").exists()
    # A reading command on a database file that does not exist says where it looked.
    assert main(["detect", "--store", "sqlite:///nothing.db"]) == 2
    _one_line_error(capsys, f"no iotlab database at {here / 'nothing.db'}")
    assert not (here / "nothing.db").exists()
    # iotlab still creates its own .iotlab/ directory for the default store.
    with iotlab.connect() as lab:
        assert lab.store.url.path == "./.iotlab/iotlab.db"


# 3 ---------------------------------------------------------------------------------------
def test_3_report_window_is_the_datas_span_and_an_old_report_is_kept(loaded, capsys):
    assert main(["report", "fleet_health"]) == 0
    printed = capsys.readouterr().out
    assert "window:      2026-01-01 00:00 UTC to 2026-01-03 00:00 UTC" in printed
    assert "data until 2026-01-02 23:" in printed
    report = loaded / "reports" / "fleet-health.html"
    first = report.read_text(encoding="utf-8")
    uptime = float(re.search(r"Mean uptime ([\d.]+)%", first).group(1))
    assert uptime > 50 and "Data until 2026-01-02" in first
    # A second report does not overwrite the first without --force.
    assert main(["report", "fleet_health", "--start", "2025-06-01", "--end", "2025-06-08"]) == 2
    _one_line_error(capsys, "fleet-health.html exists", "--force")
    assert report.read_text(encoding="utf-8") == first
    # A window without data is refused, not written as an all-zero report.
    argv = ["report", "fleet_health", "--start", "2025-06-01", "--end", "2025-06-08"]
    assert main([*argv, "--force"]) == 1
    _one_line_error(capsys, "no readings or heartbeats between", "the data spans 2026-01-01")
    assert report.read_text(encoding="utf-8") == first
    assert main(["report", "fleet_health", "--force"]) == 0


def test_3_simulate_does_not_overwrite_files_without_force(loaded, capsys):
    before = (loaded / "readings.csv").read_bytes()
    argv = ["simulate", "--devices", "1", "--days", "1", "--out", "new.csv"]
    assert main([*argv, "--metrics-out", "heartbeats.csv"]) == 2
    _one_line_error(capsys, "heartbeats.csv exists", "--force")
    assert not (loaded / "new.csv").exists()  # refused before writing anything
    assert main(["simulate", "--devices", "1", "--days", "1", "--out", "readings.csv"]) == 2
    assert (loaded / "readings.csv").read_bytes() == before
    assert main([*argv[:-1], "readings.csv", "--force"]) == 0
    assert (loaded / "readings.csv").read_bytes() != before


# 5 ---------------------------------------------------------------------------------------
def test_5_an_unknown_sensor_of_a_known_device_is_an_error(here):
    fleet = Fleet(n_devices=2, seed=3)
    sim = fleet.simulate(start="2026-01-01", days=1, freq="1h")
    with iotlab.connect() as lab:
        lab.provision(sim)
        lab.ingest(sim.readings, progress=False)
        device = fleet.sensors.loc[0, "device_id"]
        mine = sorted(fleet.sensors.query("device_id == @device")["sensor_id"])
        other = next(s for s in fleet.sensors["sensor_id"] if s not in mine)
        assert len(lab.readings(device, sensors=mine[0])) == 24
        with pytest.raises(NotFoundError, match=f"has no sensor '{other}'.*{mine[0]}"):
            lab.readings(device, sensors=other)
        with pytest.raises(NotFoundError, match="has no sensor 'nope_01'"):
            lab.rollups(device, sensors=["nope_01", mine[0]])


def test_5_readme_quick_start_guards_its_worker_processes():
    code = (ROOT / "README.md").read_text(encoding="utf-8")
    code = code[code.index("## Quick start") :]
    code = re.search(r"```python\n(.*?)```", code, re.S).group(1)
    assert 'if __name__ == "__main__":' in code and "n_jobs=2" in code
    assert '"temp_01"' not in code  # device 0 is a power meter


# 6 ---------------------------------------------------------------------------------------
def test_6_empty_csv_and_non_database_store_are_one_line_errors(here, capsys):
    (here / "empty.csv").write_text("")
    assert main(["ingest", "empty.csv"]) == 2
    _one_line_error(capsys, "empty.csv is empty")
    (here / "header.csv").write_text("device_id,sensor_id,ts,value\n")
    assert main(["ingest", "header.csv"]) == 2
    _one_line_error(capsys, "header.csv has a header but no rows")
    (here / "readings.csv").write_text(
        "device_id,sensor_id,ts,value\nd,s,2026-01-01T00:00Z,1\nd,s,2026-13-01T00:00Z,2\n"
    )
    assert main(["ingest", "readings.csv", "--allow-unprovisioned", "--no-progress"]) == 0
    assert "1  unparseable timestamp" in capsys.readouterr().out  # a row, not a traceback
    assert main(["ingest", "readings.csv", "--store", "sqlite:///readings.csv"]) == 2
    _one_line_error(capsys, f"{here / 'readings.csv'} is not an SQLite database")
    with pytest.raises(StoreConnectionError, match="not an SQLite database"):
        iotlab.connect("sqlite:///readings.csv")
    assert (here / "readings.csv").read_text().startswith("device_id,")  # untouched


# 7 ---------------------------------------------------------------------------------------
def test_7_detect_on_unknown_devices_is_refused(loaded, capsys):
    assert main(["detect", "--devices", "nope", "--detector", "zscore", "--no-progress"]) == 2
    _one_line_error(capsys, "unknown devices (never provisioned): nope")


def test_7_all_rows_rejected_exits_1_with_full_reasons_written_here(loaded, capsys):
    rows = pd.read_csv("readings.csv", dtype=str)
    rows["ts"] = rows["ts"].str.replace("+00:00", "", regex=False)  # naive: refused
    inbox = loaded / "inbox"
    inbox.mkdir()
    rows.to_csv(inbox / "naive.csv", index=False)
    assert main(["ingest", "inbox/naive.csv", "--no-progress"]) == 1
    printed = capsys.readouterr()
    assert "all" in printed.err and "nothing was written" in printed.err
    assert f"{len(rows)}  naive timestamp: give a time zone" in printed.out  # full reason
    assert not (inbox / "naive.rejected.csv").exists()  # never next to the input
    rejected = pd.read_csv(loaded / "naive.rejected.csv")
    assert len(rejected) == len(rows)
    # A clean run removes the earlier run's rejects file, and says so.
    rows.head(0).to_csv(inbox / "header.csv", index=False)
    good = pd.read_csv("readings.csv", dtype=str)
    good.to_csv(inbox / "naive.csv", index=False)
    assert main(["ingest", "inbox/naive.csv", "--no-progress"]) == 0
    assert "removed naive.rejected.csv" in capsys.readouterr().out
    assert not (loaded / "naive.rejected.csv").exists()
    # --rejects puts them where asked.
    rows.to_csv(inbox / "bad.csv", index=False)
    assert main(["ingest", "inbox/bad.csv", "--rejects", "out/bad.csv", "--no-progress"]) == 1
    assert len(pd.read_csv(loaded / "out" / "bad.csv")) == len(rows)


def test_7_naive_timestamp_reason_is_the_same_words_everywhere(here, capsys):
    from iotlab.ingest.messages import parse_message
    from iotlab.store.validate import validate_readings

    frame = pd.DataFrame(
        {"device_id": ["d"], "sensor_id": ["s"], "ts": ["2026-01-01 00:00"], "value": [1.0]}
    )
    frame.to_csv("naive.csv", index=False)
    assert main(["ingest", "naive.csv", "--allow-unprovisioned", "--no-progress"]) == 1
    from_cli = pd.read_csv("naive.rejected.csv")["reason"].tolist()
    from_frame = validate_readings(frame, require_provisioned=False)[1]["reason"].tolist()
    payload = b'{"ts": "2026-01-01T00:00:00", "value": 1}'
    from_mqtt = parse_message("iotlab/d/s", payload).reason
    assert from_cli == from_frame == ["naive timestamp: give a time zone"]
    assert from_mqtt == f"ts: {from_frame[0]}"  # MQTT reasons name their field first
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"`{from_frame[0]}`" in readme


# 8 ---------------------------------------------------------------------------------------
def test_8_provision_makes_the_bundled_sample_ingestible(here, capsys):
    sample = ROOT / "data" / "readings.csv.gz"
    assert main(["ingest", str(sample), "--no-progress"]) == 1  # a fresh store: none known
    assert "sensor not provisioned" in capsys.readouterr().out
    assert main(["provision"]) == 0
    assert "provisioned: 10 new devices" in capsys.readouterr().out
    assert main(["ingest", str(sample), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert re.search(r"written: +[1-9]\d+\n", printed) and "rejected:    0" in printed
    assert main(["provision"]) == 0  # again: nothing changes
    assert "provisioned: 0 new devices, 10 already there" in capsys.readouterr().out


def test_8_version_flag(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"iotlab {iotlab.__version__}"


def test_8_serve_rejects_a_bad_broker_url_before_opening_the_store(here, capsys):
    assert main(["serve", "--mqtt", "bogus", "--store", "sqlite:///served.db"]) == 2
    _one_line_error(capsys, "MQTT URL must look like mqtt://host:port, got 'bogus'")
    assert not (here / "served.db").exists()  # nothing was opened, let alone fitted


# 9 ---------------------------------------------------------------------------------------
def test_9_readme_has_what_a_newcomer_needs_and_no_link_outside_the_repository():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "../" not in readme
    commands = re.findall(r"^make \w+", readme, re.M)
    assert commands[:2] == ["make demo", "make test"]
    for needed in ("python3-venv", "Java 17", "Maven", "make PYTHON=", "jupyter lab"):
        assert needed in readme, needed
    assert "sqlite:////" in readme and "four slashes" in readme
    for link in re.findall(r"\]\(([^)#]+)\)", readme):
        if "://" not in link:
            assert (ROOT / link).exists(), link
    design = (ROOT / "docs" / "design.md").read_text(encoding="utf-8")
    assert "docs/design.md" in readme and "../" not in design
    for topic in ("## Stores", "## Public API", "## The `iotlab` command", "naive timestamp"):
        assert topic in design, topic


def test_9_quick_local_run_leaves_service_tests_out_instead_of_skipping_them():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    marker = re.search(r'pytest -m "([^"]+)"', readme).group(1)
    collected = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-m", marker, "-p",
         "no:cacheprovider", "tests/test_connect.py", "tests/store/test_contract.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip
    ids = [line for line in collected.stdout.splitlines() if "::" in line]
    assert ids and not [i for i in ids if "cassandra]" in i or "-cassandra" in i], ids


# 10 --------------------------------------------------------------------------------------
def test_10_a_widget_callback_error_shows_in_the_explorer(here):
    from iotlab.widgets import DeviceExplorer

    fleet = Fleet(n_devices=2, seed=5)
    sim = fleet.simulate(start="2026-01-01", days=2, freq="1h")
    lab = iotlab.connect()
    lab.provision(sim)
    lab.ingest(sim.readings, progress=False)
    explorer = DeviceExplorer(lab)
    assert explorer.error is None and explorer.message.value == ""
    lab.close()
    explorer.device_picker.value = explorer.device_picker.options[1]  # a user's click
    assert explorer.error is not None and "closed" in str(explorer.error)
    assert "error:" in explorer.message.value and "closed" in explorer.message.value
    assert explorer.message in explorer.widget.children  # shown above the plot


def test_10_notebook_05_leaves_the_explorer_working_after_run_all(tmp_path, monkeypatch):
    monkeypatch.delenv("IOTLAB_STORE", raising=False)
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(ROOT / "notebooks" / "05_device_explorer.ipynb", as_version=4)
    check = (
        "before = explorer.updates\n"  # a user picks another device after Run All
        "now = explorer.device_picker.value\n"
        "other = [d for d in explorer.device_picker.options if d != now]\n"
        "explorer.device_picker.value = other[0]\n"
        "print(explorer.error, explorer.updates - before)"
    )
    notebook.cells.append(nbformat.v4.new_code_cell(check))
    NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": tmp_path}}
    ).execute()
    printed = "".join(o.get("text", "") for o in notebook.cells[-1].outputs)
    assert printed.strip() == "None 1"
