"""Host measurements of the demo device, checked against /proc and real load."""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from aetus.server.hostmetrics import (
    HostMetricsCollector,
    HostReading,
    WakeLatencySampler,
)

_PROC = Path("/proc")
needs_proc = pytest.mark.skipif(not (_PROC / "meminfo").exists(), reason="no /proc")


def _by_name(readings: list[HostReading]) -> dict[str, HostReading]:
    return {reading.name: reading for reading in readings}


def _meminfo_bytes(field: str) -> int:
    for line in (_PROC / "meminfo").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"{field} missing from /proc/meminfo")


def _send_over_loopback(total_bytes: int) -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        received = []

        def drain() -> None:
            connection, _ = server.accept()
            with connection:
                while chunk := connection.recv(65536):
                    received.append(len(chunk))

        reader = threading.Thread(target=drain)
        reader.start()
        with socket.create_connection(server.getsockname()) as client:
            client.sendall(b"\0" * total_bytes)
        reader.join()
    assert sum(received) == total_bytes


@needs_proc
def test_host_collector_memory_matches_proc() -> None:
    collector = HostMetricsCollector()

    readings = _by_name(collector.collect())

    assert readings["memory/total"].value == _meminfo_bytes("MemTotal")
    available = _meminfo_bytes("MemAvailable")
    assert abs(int(readings["memory/available"].value) - available) < 64 * 2**20
    assert readings["memory/total"].unit == "B"


@needs_proc
def test_host_collector_cores_match_proc_stat() -> None:
    lines = (_PROC / "stat").read_text().splitlines()
    cores = [line for line in lines if line.startswith("cpu") and line[3].isdigit()]
    collector = HostMetricsCollector()
    time.sleep(0.2)

    readings = _by_name(collector.collect())

    per_core = [name for name in readings if name.startswith("cpu/core")]
    assert len(per_core) == len(cores)
    for name in per_core:
        assert 0.0 <= float(readings[name].value) <= 100.0
        assert readings[name].unit == "%"


@needs_proc
def test_host_collector_cpu_sees_busy_loop() -> None:
    collector = HostMetricsCollector()
    deadline = time.monotonic() + 0.5
    while time.monotonic() < deadline:
        pass

    readings = _by_name(collector.collect())

    # One core spun for the whole interval, so the busiest core is well used.
    busiest = max(
        float(r.value) for r in readings.values() if r.name.startswith("cpu/core")
    )
    assert busiest > 50.0


@needs_proc
def test_host_collector_load_matches_proc() -> None:
    collector = HostMetricsCollector()

    readings = _by_name(collector.collect())
    one_minute = float((_PROC / "loadavg").read_text().split()[0])

    assert abs(float(readings["load/1m"].value) - one_minute) < 0.5
    assert readings["load/1m"].value == pytest.approx(os.getloadavg()[0], abs=0.5)


def test_host_collector_loopback_rate_counts_traffic() -> None:
    collector = HostMetricsCollector()
    start = time.monotonic()
    _send_over_loopback(8 * 2**20)
    time.sleep(0.05)
    elapsed = time.monotonic() - start

    readings = _by_name(collector.collect())

    rate = readings["net/lo/rx_rate"]
    assert rate.unit == "B/s"
    # At least the bytes sent here passed lo in the interval (other traffic
    # on the machine only adds to it).
    assert float(rate.value) * (elapsed + 0.05) >= 8 * 2**20


def test_host_collector_first_sample_has_rates_from_baseline() -> None:
    collector = HostMetricsCollector()

    names = set(_by_name(collector.collect()))

    assert "net/lo/tx_rate" in names
    assert {"load/1m", "load/5m", "load/15m", "cpu/utilization"} <= names


def test_wake_latency_frames_at_dense_rate() -> None:
    sampler = WakeLatencySampler(period_ns=5_000_000, frame_samples=100)
    started = time.time_ns()
    sampler.start()
    try:
        first = sampler.frames.get(timeout=5)
        second = sampler.frames.get(timeout=5)
    finally:
        sampler.stop()

    assert first.period_ns == 5_000_000
    assert len(first.lateness_ns) == 100
    # Frames are contiguous: the second starts one frame after the first.
    assert second.start_time_ns - first.start_time_ns == 100 * 5_000_000
    assert abs(first.start_time_ns - started) < 1_000_000_000
    # Lateness is never negative and a sleeping thread is always somewhat late.
    assert np.all(first.lateness_ns >= 0)
    assert int(np.median(first.lateness_ns)) > 0
    assert first.lateness_ns.dtype == np.int32


def test_wake_latency_rises_when_gil_is_held() -> None:
    sampler = WakeLatencySampler(period_ns=2_000_000, frame_samples=50)
    sampler.start()
    try:
        idle = sampler.frames.get(timeout=5)
        # Pure-Python work holds the GIL in 5 ms slices (the default switch
        # interval), so the sampling thread wakes later while it runs.
        deadline = time.monotonic() + 0.4
        busy_frames = []
        while time.monotonic() < deadline:
            sum(range(10_000))
        while not sampler.frames.empty():
            busy_frames.append(sampler.frames.get_nowait())
    finally:
        sampler.stop()

    assert busy_frames
    busy = np.concatenate([frame.lateness_ns for frame in busy_frames])
    assert np.percentile(busy, 90) > np.percentile(idle.lateness_ns, 50)


@pytest.mark.parametrize(
    ("period_ns", "frame_samples", "pattern"),
    [(500_000, 10, "below 1 ms"), (5_000_000, 0, "below 1 sample")],
    ids=["period", "frame"],
)
def test_wake_latency_rejects_bad_settings(
    period_ns: int, frame_samples: int, pattern: str
) -> None:
    with pytest.raises(ValueError, match=pattern):
        WakeLatencySampler(period_ns=period_ns, frame_samples=frame_samples)
