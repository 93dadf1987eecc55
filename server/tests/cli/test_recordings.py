"""Recording readers on the real sensor files and on small files written here."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from aetus.server.recordings import (
    TIMING_TOLERANCE,
    ReadOptions,
    Recording,
    RecordingError,
    SignalTrack,
    choose_encoding,
    read_recording,
)


def _decoded(track: SignalTrack) -> np.ndarray:
    raw = np.concatenate([frame.samples for frame in track.frames])
    scale = 1.0 if track.scale is None else track.scale
    return raw.astype(np.float64) * scale


def _sample_offsets(track: SignalTrack) -> np.ndarray:
    parts = [
        frame.offset_ns
        + np.arange(len(frame.samples), dtype=np.int64) * track.sample_interval_ns
        for frame in track.frames
    ]
    return np.concatenate(parts)


def _csv_columns(path: Path) -> tuple[list[str], np.ndarray]:
    with path.open() as handle:
        header = next(csv.reader(handle))
    return header, np.genfromtxt(path, delimiter=",", skip_header=1)


def test_read_recording_fan_npz_keeps_counts(data_dir: Path) -> None:
    path = data_dir / "fan_vibration_esp32_msa301.npz"
    with np.load(path, allow_pickle=False) as archive:
        counts = archive["counts"]
        scale = float(archive["scale_g_per_count"])
        conditions = archive["condition"].tolist()

    recording = read_recording(path)

    (track,) = recording.signals
    assert track.encoding == "int16"
    assert track.scale == scale
    assert [channel.name for channel in track.channels] == ["x", "y", "z"]
    assert {channel.unit for channel in track.channels} == {"g"}
    assert track.sample_interval_ns == 5_000_000
    assert len(track.frames) == counts.shape[0]
    raw = np.stack([frame.samples for frame in track.frames])
    assert np.array_equal(raw, counts)
    labels = {metric.name: metric for metric in recording.metrics}
    condition = labels["fan/condition"]
    assert condition.values == list(dict.fromkeys(conditions))


def test_read_recording_fan_npz_spaces_captures(data_dir: Path) -> None:
    path = data_dir / "fan_vibration_esp32_msa301.npz"

    recording = read_recording(path, ReadOptions(capture_gap_s=2.5))

    offsets = [frame.offset_ns for frame in recording.signals[0].frames]
    steps = set(np.diff(offsets).tolist())
    assert steps == {200 * 5_000_000 + 2_500_000_000}


def test_read_recording_motor_npz_is_lossless_int32(data_dir: Path) -> None:
    path = data_dir / "motor_current_itsc_1khz.npz"
    with np.load(path, allow_pickle=False) as archive:
        current = archive["current"]

    recording = read_recording(path, ReadOptions(frame_samples=1000))

    (track,) = recording.signals
    assert track.encoding == "int32"
    assert track.scale == pytest.approx(1e-6, rel=0, abs=0)
    assert len(track.frames) == current.shape[0] * 5
    raw = np.concatenate([frame.samples for frame in track.frames]).astype(np.int64)
    assert np.array_equal(raw, np.round(current.reshape(-1, 3) * 1e6).astype(np.int64))
    assert np.max(np.abs(_decoded(track) - current.reshape(-1, 3))) < 1e-12


def test_read_recording_ecg_csv_uses_rate_in_name(data_dir: Path) -> None:
    path = data_dir / "ecg_mitdb208_360hz.csv"
    values = np.loadtxt(path, skiprows=1)

    recording = read_recording(path)

    (track,) = recording.signals
    assert track.stream == "ecg"
    assert track.channels[0].unit == "mV"
    assert track.encoding == "int16"
    assert track.sample_interval_ns == round(1e9 / 360)
    assert track.sample_count == len(values)
    assert len(track.frames[0].samples) == 360
    assert np.max(np.abs(_decoded(track)[:, 0] - values)) < 1e-12


def test_read_recording_fusion_imu_splits_at_gaps(data_dir: Path) -> None:
    path = data_dir / "imu_xio_fusion_sensor_data.csv"
    header, table = _csv_columns(path)
    times_ns = np.round(table[:, 0] * 1e9).astype(np.int64)

    recording = read_recording(path)

    streams = {track.stream: track for track in recording.signals}
    assert sorted(streams) == ["imu/accel", "imu/gyro", "imu/mag"]
    gyro = streams["imu/gyro"]
    assert gyro.sample_count == len(table)
    assert header[1] == "Gyroscope X (deg/s)"
    assert gyro.channels[0].unit == "deg/s"
    assert np.array_equal(_decoded(gyro), table[:, 1:4].astype(np.float32))
    # Each sample's grid time stays within the tolerance of its recorded time.
    error = np.abs(_sample_offsets(gyro) - (times_ns - times_ns[0]))
    assert error.max() <= TIMING_TOLERANCE * gyro.sample_interval_ns
    # The ten 30 ms gaps each start a new frame.
    starts = {frame.offset_ns for frame in gyro.frames}
    gap_rows = np.flatnonzero(np.diff(times_ns) > 25_000_000) + 1
    assert len(gap_rows) == 10
    assert all(int(times_ns[row] - times_ns[0]) in starts for row in gap_rows)


def test_read_recording_gait_imu_drops_duplicates(data_dir: Path) -> None:
    path = data_dir / "imu_xio_gait_short_walk.csv"
    _, table = _csv_columns(path)
    times = table[:, 0]
    repeated = int(np.count_nonzero(np.diff(times) == 0))

    recording = read_recording(path)

    gyro = next(track for track in recording.signals if track.stream == "imu/gyro")
    assert repeated == 205
    assert gyro.sample_count == len(table) - repeated
    assert any("205" in note for note in recording.notes)
    offsets = _sample_offsets(gyro)
    assert np.all(np.diff(offsets) > 0)


@pytest.mark.parametrize("missing", ["skip", "nan"])
def test_read_recording_air_quality_sentinel(data_dir: Path, missing: str) -> None:
    path = data_dir / "airquality_uci_hourly.csv"
    values = np.genfromtxt(path, delimiter=",", skip_header=1, usecols=12)

    recording = read_recording(path, ReadOptions(missing=missing))  # type: ignore[arg-type]

    assert recording.signals == []
    humidity = next(m for m in recording.metrics if m.name == "env/humidity_rel")
    assert humidity.unit == "%"
    sentinel = values == -200
    assert int(np.count_nonzero(sentinel)) == 366
    stored = np.asarray(humidity.values)
    if missing == "skip":
        assert np.array_equal(stored, values[~sentinel])
    else:
        assert np.array_equal(np.isnan(stored), sentinel)
        assert np.array_equal(stored[~sentinel], values[~sentinel])
    assert np.all(np.diff(humidity.offsets_ns) % 3_600_000_000_000 == 0)


def _write_csv(path: Path, rows: list[str]) -> Path:
    path.write_text("\n".join(rows) + "\n")
    return path


def test_read_recording_backwards_time_names_line(tmp_path: Path) -> None:
    path = _write_csv(tmp_path / "imu.csv", ["time_ms,a", "0,1", "10,2", "5,3"])

    with pytest.raises(RecordingError, match=r"line 4.*'5'.*earlier.*sort"):
        read_recording(path)


def test_read_recording_bad_cell_names_value(tmp_path: Path) -> None:
    path = _write_csv(tmp_path / "imu.csv", ["time_ms,a", "0,1", "10,oops"])

    with pytest.raises(
        RecordingError, match=r"line 3, column 'a': 'oops' is not a number"
    ):
        read_recording(path)


def test_read_recording_regular_rows_need_rate(tmp_path: Path) -> None:
    path = _write_csv(tmp_path / "sensor.csv", ["a", "1", "2"])

    with pytest.raises(RecordingError, match="--sample-rate-hz"):
        read_recording(path)
    recording = read_recording(path, ReadOptions(sample_rate_hz=50))
    assert recording.signals[0].sample_interval_ns == 20_000_000


@pytest.mark.parametrize(
    ("options", "pattern"),
    [
        (ReadOptions(sample_rate_hz=0), "sample rate 0"),
        (ReadOptions(frame_samples=0), "frame size 0"),
        (ReadOptions(capture_gap_s=-1), "capture gap -1"),
    ],
    ids=["rate", "frame", "gap"],
)
def test_read_recording_invalid_options(
    tmp_path: Path, options: ReadOptions, pattern: str
) -> None:
    path = _write_csv(tmp_path / "sensor.csv", ["a", "1"])

    with pytest.raises(RecordingError, match=pattern):
        read_recording(path, options)


def test_read_recording_unknown_suffix(tmp_path: Path) -> None:
    path = tmp_path / "sensor.json"
    path.write_text("{}")

    with pytest.raises(RecordingError, match=r"'\.json'.*\.csv and \.npz"):
        read_recording(path)


def test_read_recording_metrics_from_iso_times(tmp_path: Path) -> None:
    path = _write_csv(
        tmp_path / "station.csv",
        ["timestamp,temp (degC)", "2024-05-01T12:00:00Z,21.5", "2024-05-01T12:00:10Z,"],
    )

    recording: Recording = read_recording(path)

    (metric,) = recording.metrics
    assert metric.name == "temp"
    assert metric.unit == "degC"
    assert metric.offsets_ns.tolist() == [0]
    assert np.asarray(metric.values).tolist() == [21.5]


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (np.array([0.005, -0.245, 1.5]), ("int16", 1e-3)),
        (np.array([2.605652, -8.9]), ("int32", 1e-6)),
        (np.array([0.1234567891234]), ("float32", None)),
        (np.array([1, -3], dtype=np.int16), ("int16", None)),
        (np.array([70_000], dtype=np.int64), ("int32", None)),
    ],
    ids=["int16-milli", "int32-micro", "float", "int16", "int32"],
)
def test_choose_encoding_picks_lossless(
    values: np.ndarray, expected: tuple[str, float | None]
) -> None:
    encoding, scale = choose_encoding(values)

    assert encoding == expected[0]
    if expected[1] is None:
        assert scale is None
    else:
        assert scale == pytest.approx(expected[1])
