"""The ``iotlab`` command: one-line errors with exit 2, ingest of files, the demo."""

from __future__ import annotations

import pandas as pd
import pytest

import iotlab
from iotlab.cli import build_parser, main


@pytest.fixture
def store(tmp_path) -> str:
    """An existing, empty embedded store (commands that only read refuse a missing one)."""
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    iotlab.connect(url).close()
    return url


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["report", "weekly"], "unknown report kind 'weekly'; known kinds: anomaly_summary"),
        (
            ["report", "fleet_health", "--start", "2026-01-02", "--end", "2026-01-01"],
            "end: must be after start",
        ),
        (["report", "device_performance", "--devices", "ghost"], "unknown devices"),
        (["ingest", "missing.csv"], "no such file: missing.csv"),
        (["simulate", "--out", "r.csv", "--per", "device"], "--per: only with --mqtt"),
    ],
)
def test_errors_are_one_line_with_exit_2(argv, message, store, capsys) -> None:
    assert main([*argv, "--store", store]) == 2
    err = capsys.readouterr().err
    assert err.startswith("iotlab: error: ") and message in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_bad_store_url_is_a_clean_error(capsys) -> None:
    assert main(["report", "fleet_health", "--store", "mysql://x"]) == 2
    assert "iotlab: error:" in capsys.readouterr().err


def test_every_subcommand_has_help_with_store(capsys) -> None:
    for command in ("demo", "simulate", "ingest", "detect", "report"):
        with pytest.raises(SystemExit) as exit_info:
            build_parser().parse_args([command, "--help"])
        assert exit_info.value.code == 0
        assert "--store URL" in capsys.readouterr().out


def test_simulate_then_ingest_writes_rejected_rows_with_reasons(
    tmp_path, store, capsys, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the rejected rows go to the current directory
    out = tmp_path / "readings.csv.gz"
    argv = ["simulate", "--devices", "2", "--days", "1", "--freq", "30min", "--seed", "1"]
    assert (
        main([*argv, "--start", "2026-01-05", "--out", str(out), "--provision", "--store", store])
        == 0
    )
    rows = pd.read_csv(out, dtype=str)
    assert capsys.readouterr().out.startswith(f"readings:    {len(rows)} rows")
    rows.loc[0, "ts"] = "2026-01-05 00:00:00"  # naive: refused, never guessed
    rows.loc[1, "sensor_id"] = "nope_01"  # never provisioned
    broken = tmp_path / "broken.csv"
    rows.to_csv(broken, index=False)
    assert main(["ingest", str(broken), "--store", store, "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert f"written:     {len(rows) - 2}" in printed and "rejected:    2" in printed
    rejected = pd.read_csv(tmp_path / "broken.rejected.csv")
    assert len(rejected) == 2
    assert rejected["reason"].str.contains("naive").sum() == 1
    # Each names its data row in the file, whichever step refused it.
    assert rejected.set_index("row")["sensor_id"].to_dict() == rows["sensor_id"][:2].to_dict()


def test_demo_on_a_tiny_fleet_writes_the_report(tmp_path, store, capsys) -> None:
    out = tmp_path / "reports"
    argv = [
        "demo",
        "--devices",
        "2",
        "--days",
        "1",
        "--freq",
        "15min",
        "--start",
        "2026-01-05",
        "--detector",
        "zscore",
        "--n-jobs",
        "1",
        "--no-progress",
    ]
    assert main([*argv, "--store", store, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    report = out / "demo-fleet-health.html"
    assert report.is_file() and f"report:      {report}" in printed
    assert "devices:     2" in printed and "rejected" in printed and "anomalies:" in printed
    text = report.read_text()
    assert text.count("data:image/png;base64,") == 2 and "https://" not in text
    assert (
        main(
            [
                "report",
                "anomaly_summary",
                "--start",
                "2026-01-05",
                "--end",
                "2026-01-06",
                "--store",
                store,
                "--out",
                str(out / "a.html"),
            ]
        )
        == 0
    )
    assert (out / "a.html").is_file()


def test_ingest_metrics_honours_allow_unprovisioned(tmp_path, store, capsys, monkeypatch) -> None:
    """``--allow-unprovisioned`` lets heartbeats of a device never provisioned in, and
    without it they are refused with the reason (0.1 ignored the flag for --metrics)."""
    monkeypatch.chdir(tmp_path)
    beats = tmp_path / "beats.csv"
    pd.DataFrame(
        {
            "device_id": "stranger",
            "ts": pd.date_range("2026-01-05", periods=3, freq="1min", tz="UTC").astype(str),
            "cpu": 10.0,
            "memory": 20.0,
            "battery": 90.0,
            "signal": -60.0,
        }
    ).to_csv(beats, index=False)
    base = ["ingest", str(beats), "--metrics", "--store", store, "--no-progress"]
    assert main(base) == 1  # nothing written: an error, with the reasons kept
    assert "all 3 rows" in capsys.readouterr().err
    assert "not provisioned" in pd.read_csv(tmp_path / "beats.rejected.csv")["reason"].iloc[0]
    assert main([*base, "--allow-unprovisioned"]) == 0
    assert "written:     3" in capsys.readouterr().out


@pytest.mark.mqtt
def test_simulate_publishes_per_device_to_a_real_broker(tmp_path, mqtt_contact, capsys) -> None:
    """``simulate --mqtt URL --per device``: every reading reaches the broker, a device's
    together in one message (fewer than 1,000 here), each element naming its sensor,
    and the command says how many it published."""
    import json
    import threading
    import uuid

    from iotlab.ingest.mqtt import connect_client

    url = f"mqtt://{mqtt_contact[0]}:{mqtt_contact[1]}"
    received: list[tuple[str, bytes]] = []
    subscribed = threading.Event()
    listener = connect_client(
        url,
        f"test-cli-{uuid.uuid4().hex[:8]}",
        persistent=False,
        on_message=lambda client, userdata, m: received.append((m.topic, m.payload)),
    )
    listener.on_subscribe = lambda *args: subscribed.set()
    listener.subscribe("iotlab/#", qos=1)
    assert subscribed.wait(10)
    out = tmp_path / "readings.csv"
    argv = ["simulate", "--devices", "3", "--days", "1", "--freq", "1h", "--seed", "5"]
    try:
        code = main([*argv, "--out", str(out), "--mqtt", url, "--per", "device"])
        readings = pd.read_csv(out)
        deadline = pd.Timestamp.now() + pd.Timedelta("20s")
        while len(received) < readings["device_id"].nunique():
            assert pd.Timestamp.now() < deadline, f"{len(received)} messages arrived"
            threading.Event().wait(0.05)
    finally:
        listener.disconnect()
        listener.loop_stop()
    assert code == 0
    printed = capsys.readouterr().out
    assert f"published:   {len(readings)} readings (a message per device" in printed
    ours = [(t, json.loads(p)) for t, p in received if t.count("/") == 1]  # device topics
    devices = readings.groupby("device_id").size()
    assert len(ours) == len(devices)
    assert sorted(len(body) for _, body in ours) == sorted(devices.tolist())
    sent = {(t.split("/")[1], e["sensor_id"], e["ts"]) for t, body in ours for e in body}
    assert len(sent) == len(readings)
