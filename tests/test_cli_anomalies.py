"""``iotlab anomalies list|ack|resolve`` and ``iotlab migrate`` on a real store."""

from __future__ import annotations

import pandas as pd
import pytest

from iotlab.cli import main
from iotlab.store import open_store

T = pd.Timestamp("2026-01-02 10:00", tz="UTC")


@pytest.fixture
def store(tmp_path) -> str:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    rows = pd.DataFrame(
        {
            "device_id": ["dev-a", "dev-b"],
            "ts": pd.Series([T, T + pd.Timedelta("5min")]).astype("datetime64[ms, UTC]"),
            "sensor_id": "temp_01",
            "value": [30.0, 9.0],
            "expected": 20.0,
            "lower": 18.0,
            "upper": 22.0,
            "score": [3.0, 40.0],
            "confidence": 0.99,
            "severity": ["medium", "critical"],
            "status": "open",
            "detector": "rolling_zscore",
        }
    )
    with open_store(url) as opened:
        opened.write_rows("anomalies", rows)
        opened.write_rows("anomalies_by_day", rows)
    return url


def test_list_ack_resolve(store, capsys) -> None:
    assert main(["anomalies", "list", "--store", store]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "2 anomalies (open 2, acknowledged 0, resolved 0)"
    worst, mild = out[2].split()[0], out[3].split()[0]
    assert worst.startswith("dev-b/") and mild.startswith("dev-a/")  # highest score first

    assert main(["anomalies", "ack", worst, "--by", "alice", "--store", store]) == 0
    assert capsys.readouterr().out == f"{worst}: acknowledged\n"
    assert main(["anomalies", "list", "--status", "all", "--store", store]) == 0
    assert capsys.readouterr().out.startswith("2 anomalies (open 1, acknowledged 1, resolved 0)")

    assert main(["anomalies", "resolve", worst, mild, "--by", "bob", "--store", store]) == 0
    assert capsys.readouterr().out.splitlines() == [f"{worst}: resolved", f"{mild}: resolved"]
    assert main(["anomalies", "list", "--store", store]) == 0
    assert capsys.readouterr().out == "0 anomalies (open 0, acknowledged 0, resolved 0)\n"


def test_errors_are_one_line(store, capsys) -> None:
    assert main(["anomalies", "ack", "dev-a/x/y/2026-01-01", "--by", "a", "--store", store]) == 2
    assert "no stored anomaly dev-a/x/y/2026-01-01" in capsys.readouterr().err
    assert main(["anomalies", "ack", "--by", "a", "--store", store]) == 2
    assert "name at least one anomaly id" in capsys.readouterr().err


def test_migrate_on_an_up_to_date_store(store, capsys) -> None:
    assert main(["migrate", "--store", store]) == 0
    assert "up to date" in capsys.readouterr().out
