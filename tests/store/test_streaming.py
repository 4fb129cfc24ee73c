"""``iter_readings``: a long range read as a stream of frames, on both stores."""

from __future__ import annotations

import pandas as pd
import pytest

from iotlab.errors import NotFoundError, ValidationError

T0 = pd.Timestamp("2026-02-03 21:30", tz="UTC")


@pytest.fixture
def lab(platform):
    ts = pd.date_range(T0, periods=4 * 24 * 12, freq="5min")  # four days
    frame = pd.concat(
        [
            pd.DataFrame({"device_id": "d1", "sensor_id": s, "ts": ts, "value": range(len(ts))})
            for s in ("temp_01", "humidity_01")
        ],
        ignore_index=True,
    )
    platform.provision_device(
        "environmental",
        location="lab",
        sensors=["temp_01", "humidity_01"],
        device_id="d1",
        at=T0 - pd.Timedelta("1D"),
    )
    assert platform.ingest(frame, progress=False).written == len(frame)
    return platform


@pytest.mark.parametrize(
    ("start", "end", "chunk"),
    [
        (None, None, "1D"),
        ("2026-02-04 06:00", "2026-02-06 18:00", "1D"),
        ("2026-02-04", None, "6h"),
        (None, "2026-02-05 01:00", "MS"),
    ],
)
def test_the_stream_concatenates_to_the_whole_read(lab, start, end, chunk) -> None:
    frames = list(lab.iter_readings("d1", start=start, end=end, chunk=chunk))
    whole = lab.readings("d1", start=start, end=end)
    assert len(whole) > 0
    pd.testing.assert_frame_equal(pd.concat(frames, ignore_index=True), whole)
    assert all(len(frame) for frame in frames)  # empty windows are skipped
    if chunk != "MS":  # each frame lies within one chunk-aligned window
        step = pd.tseries.frequencies.to_offset(chunk)
        for frame in frames:
            assert frame["ts"].max() < frame["ts"].min().floor(step) + step


def test_one_sensor_and_daily_frames(lab) -> None:
    frames = list(lab.iter_readings("d1", sensors="temp_01", chunk="1D"))
    assert [len(f) for f in frames] == [30, 288, 288, 288, 258]
    assert {s for f in frames for s in f["sensor_id"]} == {"temp_01"}


def test_bad_chunk_and_unknown_device(lab) -> None:
    with pytest.raises(ValidationError, match="chunk"):
        list(lab.iter_readings("d1", chunk="fortnight"))
    with pytest.raises(NotFoundError):
        list(lab.iter_readings("nobody"))
