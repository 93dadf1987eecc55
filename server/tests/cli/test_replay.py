"""Replay scheduling, ``aetus replay`` and ``aetus read`` against a real server."""

from __future__ import annotations

import asyncio
import csv
import io
import time
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
import pytest_asyncio

from aetus.sdk import AsyncClient, DeviceIdentity, build_metrics
from aetus.server.app import RunningServer, start_server
from aetus.server.cli import main
from aetus.server.config import Settings
from aetus.server.credentials import device_token_path, write_token_file
from aetus.server.recordings import read_recording
from aetus.server.replay import default_start_time_ns, schedule_recording

ADMIN = "replay-test-admin"


@pytest_asyncio.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    settings = Settings.load(
        environ={},
        data_dir=tmp_path / "server",
        grpc_address="127.0.0.1:0",
        admin_token=ADMIN,
    )
    running = await start_server(settings)
    try:
        yield running
    finally:
        await running.stop(0)


@pytest.fixture
def client_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Data folder of the client commands, holding only the admin token."""
    monkeypatch.delenv("AETUS_TOKEN", raising=False)
    folder = tmp_path / "client"
    write_token_file(folder / "admin-token", ADMIN)
    return folder


def _write_imu(path: Path, rows: int, step_ms: float) -> np.ndarray:
    """Write a small timed CSV of gyro readings taken from the gait recording."""
    times = np.arange(rows) * step_ms / 1000
    values = np.round(np.sin(np.arange(rows * 3).reshape(rows, 3) / 7) * 100, 3)
    lines = ["Time (s),Gyroscope X (deg/s),Gyroscope Y (deg/s),Gyroscope Z (deg/s)"]
    lines += [
        f"{t:.6f},{x},{y},{z}" for t, (x, y, z) in zip(times, values, strict=True)
    ]
    path.write_text("\n".join(lines) + "\n")
    return values


def test_schedule_recording_orders_every_item(data_dir: Path) -> None:
    recording = read_recording(data_dir / "fan_vibration_esp32_msa301.npz")

    items = schedule_recording(recording)

    due = [item.due_offset_ns for item in items]
    assert due == sorted(due)
    frames = [item for item in items if item.frame is not None]
    assert len(frames) == len(recording.signals[0].frames)
    points = sum(part.stop - part.start for item in items for _, part in item.points)
    assert points == sum(len(track.offsets_ns) for track in recording.metrics)


def test_default_start_time_by_rate(data_dir: Path) -> None:
    recording = read_recording(data_dir / "ecg_mitdb208_360hz.csv")
    now = 1_800_000_000_000_000_000

    assert default_start_time_ns(recording, 1.0, now) == now
    assert default_start_time_ns(recording, None, now) == now - recording.duration_ns
    assert default_start_time_ns(recording, 10.0, now) == now - recording.duration_ns


async def test_replay_command_provisions_and_stores(
    server: RunningServer, client_dir: Path, tmp_path: Path
) -> None:
    path = tmp_path / "walk.csv"
    values = _write_imu(path, 300, 2.5)
    argv = [
        "replay", str(path), "--device", "walk-01", "--as-fast-as-possible",
        "--target", server.address, "--data-dir", str(client_dir),
        "--start-time", "2026-01-01T00:00:00Z",
    ]  # fmt: skip

    status = await asyncio.to_thread(main, argv)

    assert status == 0
    assert device_token_path(client_dir, "walk-01").is_file()
    async with AsyncClient(server.address, token=ADMIN) as client:
        data = await client.read_stream("walk-01", "imu/gyro", mode="raw")
    x = data["x"]
    raw = np.round(values[:, 0] * 1000)
    # The server decodes raw * scale, which is exact for the raw counts and
    # within one unit in the last place of the decimal text.
    assert np.array_equal(x.values[~x.gaps], raw * 0.001)
    assert np.allclose(x.values[~x.gaps], values[:, 0], rtol=1e-15, atol=0)
    assert int(x.times_ns[0]) == 1_767_225_600_000_000_000


async def test_replay_command_paces_at_rate(
    server: RunningServer, client_dir: Path, tmp_path: Path
) -> None:
    path = tmp_path / "walk.csv"
    _write_imu(path, 400, 5.0)  # two seconds of data
    argv = [
        "replay", str(path), "--device", "walk-02", "--rate", "2",
        "--frame-samples", "50",
        "--target", server.address, "--data-dir", str(client_dir),
    ]  # fmt: skip

    began = time.monotonic()
    status = await asyncio.to_thread(main, argv)
    elapsed = time.monotonic() - began

    assert status == 0
    # 1.995 s of samples at twice the pace: the last frame is due near 1 s.
    assert 0.9 < elapsed < 5.0


async def test_replay_command_wrong_token_fails(
    server: RunningServer,
    client_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "walk.csv"
    _write_imu(path, 50, 5.0)
    other = tmp_path / "other.token"
    other.write_text("aetus_dev_not-a-real-token\n")
    argv = [
        "replay", str(path), "--device", "walk-03", "--as-fast-as-possible",
        "--target", server.address, "--token-file", str(other),
    ]  # fmt: skip

    status = await asyncio.to_thread(main, argv)

    assert status == 1
    captured = capsys.readouterr()
    assert "UNAUTHENTICATED" in captured.err
    assert "0 stored" in captured.out


async def test_read_command_prints_missing_and_gap(
    server: RunningServer,
    client_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    identity = DeviceIdentity("read-01")
    start_ns = 1_767_225_600_000_000_000
    offsets_s = [0, 1, 2, 3, 20]
    sent = [1.25, None, float("nan"), 2.5, 4.0]
    async with AsyncClient(server.address, token=ADMIN) as client:
        await client.send_events(
            [
                build_metrics(
                    identity, {"level": value}, time=start_ns + offset * 10**9
                )
                for value, offset in zip(sent, offsets_s, strict=True)
            ]
        )
    argv = [
        "read", "--device", "read-01", "--stream", "level", "--csv",
        "--target", server.address, "--data-dir", str(client_dir),
    ]  # fmt: skip

    status = await asyncio.to_thread(main, argv)

    assert status == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    cells = [row[1] for row in rows[1:]]
    assert cells == ["1.25", "missing", "nan", "2.5", "gap", "4.0"]
