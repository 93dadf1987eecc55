"""Live measurements of the host machine, the built-in demo device of ``aetus up``.

Two sources, both real measurements of the machine AETUS runs on:

- ``HostMetricsCollector`` reads psutil about once a second: per-core CPU
  utilisation, memory, load average, per-interface network rates, disk rates
  and, where the host exposes them, temperatures.
- ``WakeLatencySampler`` is a thread that sleeps until each slot, one every
  ``period_ns`` (5 ms, 200 Hz by default) and records how late each wake-up came, in
  nanoseconds. The lateness is the sum of OS timer slack, scheduler delay and
  the time the thread waited for the Python GIL, so it rises when the host or
  the AETUS process is busy. Each scheduled slot gets exactly one sample, so
  the samples form a regular signal frame: sample i belongs to the slot due at
  ``start + i * period``. When the thread oversleeps past several slots, each
  missed slot records its own lateness at the moment the thread saw it.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import psutil

__all__ = [
    "HostMetricsCollector",
    "HostReading",
    "LatencyFrame",
    "WakeLatencySampler",
]

logger = logging.getLogger(__name__)

# Default wake-up period of the latency sampler: 5 ms, that is 200 Hz.
DEFAULT_PERIOD_NS = 5_000_000

# Default samples per latency frame: one second at 200 Hz.
DEFAULT_FRAME_SAMPLES = 200


@dataclass(frozen=True)
class HostReading:
    """One scalar measurement: a metric name, its unit and value."""

    name: str
    unit: str
    value: float | int


class HostMetricsCollector:
    """Reads the host's utilisation counters and turns them into readings.

    Rates (network and disk bytes per second) need two samples, so the first
    call to ``collect`` returns none of them. CPU utilisation covers the time
    since the previous call; the constructor takes the baseline.
    """

    def __init__(self, clock_ns: Callable[[], int] = time.monotonic_ns) -> None:
        self._clock_ns = clock_ns
        psutil.cpu_percent(percpu=True)
        self._last_ns = clock_ns()
        self._last_net = psutil.net_io_counters(pernic=True)
        self._last_disk = psutil.disk_io_counters()

    def collect(self) -> list[HostReading]:
        """Read every measurement once and return them."""
        now_ns = self._clock_ns()
        elapsed_s = max((now_ns - self._last_ns) / 1e9, 1e-9)
        self._last_ns = now_ns
        readings = self._cpu() + self._memory() + self._load()
        readings += self._network(elapsed_s) + self._disk(elapsed_s)
        readings += self._temperatures()
        return readings

    def _cpu(self) -> list[HostReading]:
        per_core = psutil.cpu_percent(percpu=True)
        readings = [
            HostReading(f"cpu/core{index}/utilization", "%", float(value))
            for index, value in enumerate(per_core)
        ]
        if per_core:
            total = float(sum(per_core) / len(per_core))
            readings.append(HostReading("cpu/utilization", "%", total))
        return readings

    def _memory(self) -> list[HostReading]:
        memory = psutil.virtual_memory()
        return [
            HostReading("memory/total", "B", int(memory.total)),
            HostReading("memory/used", "B", int(memory.used)),
            HostReading("memory/available", "B", int(memory.available)),
            HostReading("memory/utilization", "%", float(memory.percent)),
        ]

    def _load(self) -> list[HostReading]:
        one, five, fifteen = os.getloadavg()
        return [
            HostReading("load/1m", "", one),
            HostReading("load/5m", "", five),
            HostReading("load/15m", "", fifteen),
        ]

    def _network(self, elapsed_s: float) -> list[HostReading]:
        current = psutil.net_io_counters(pernic=True)
        readings = []
        for interface, counters in sorted(current.items()):
            previous = self._last_net.get(interface)
            if previous is None:
                continue
            received = _rate(counters.bytes_recv, previous.bytes_recv, elapsed_s)
            sent = _rate(counters.bytes_sent, previous.bytes_sent, elapsed_s)
            readings.append(HostReading(f"net/{interface}/rx_rate", "B/s", received))
            readings.append(HostReading(f"net/{interface}/tx_rate", "B/s", sent))
        self._last_net = current
        return readings

    def _disk(self, elapsed_s: float) -> list[HostReading]:
        current = psutil.disk_io_counters()
        previous, self._last_disk = self._last_disk, current
        # Hosts without block-device statistics (some containers) return None.
        if current is None or previous is None:
            return []
        read = _rate(current.read_bytes, previous.read_bytes, elapsed_s)
        written = _rate(current.write_bytes, previous.write_bytes, elapsed_s)
        return [
            HostReading("disk/read_rate", "B/s", read),
            HostReading("disk/write_rate", "B/s", written),
        ]

    def _temperatures(self) -> list[HostReading]:
        sensors = getattr(psutil, "sensors_temperatures", None)
        if sensors is None:
            return []
        readings = []
        for chip, entries in sorted(sensors().items()):
            for index, entry in enumerate(entries):
                label = entry.label or str(index)
                name = _metric_safe(f"temperature/{chip}/{label}")
                readings.append(HostReading(name, "degC", float(entry.current)))
        return readings


def _rate(current: int, previous: int, elapsed_s: float) -> float:
    # Counters restart at 0 when an interface is reset; report 0 rather than
    # a negative rate for that interval.
    return max(current - previous, 0) / elapsed_s


def _metric_safe(name: str) -> str:
    allowed = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._/-")
    return "".join(char if char in allowed else "_" for char in name)


@dataclass(frozen=True)
class LatencyFrame:
    """Wake-up lateness (ns) of consecutive slots; the first is due at start_time_ns."""

    start_time_ns: int
    period_ns: int
    lateness_ns: npt.NDArray[np.int32]


class WakeLatencySampler:
    """Measures how late a sleeping thread wakes, once per slot.

    Frames go to a bounded queue; when the consumer falls behind, the oldest
    frame is dropped and counted in ``dropped_frames``.
    """

    def __init__(
        self,
        period_ns: int = DEFAULT_PERIOD_NS,
        frame_samples: int = DEFAULT_FRAME_SAMPLES,
        max_queued_frames: int = 60,
    ) -> None:
        if period_ns < 1_000_000:
            raise ValueError(
                f"wake-up period {period_ns} ns is below 1 ms; the sleep call "
                "cannot resolve it, so choose 1000000 ns or more"
            )
        if frame_samples < 1:
            raise ValueError(f"frame size {frame_samples} is below 1 sample")
        self.period_ns = period_ns
        self.frame_samples = frame_samples
        self.frames: queue.Queue[LatencyFrame] = queue.Queue(max_queued_frames)
        self.dropped_frames = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name="aetus-wake-latency", daemon=True
        )

    def start(self) -> None:
        """Start the sampling thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop the sampling thread and wait for it; a partial frame is dropped."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        wall_start = time.time_ns()
        mono_start = time.monotonic_ns()
        slot = 0
        buffer = np.empty(self.frame_samples, dtype=np.int32)
        filled = 0
        while not self._stop.is_set():
            due = mono_start + (slot + 1) * self.period_ns
            delay = due - time.monotonic_ns()
            if delay > 0:
                time.sleep(delay / 1e9)
            now = time.monotonic_ns()
            # Record every slot that has come due, so no slot is skipped.
            while mono_start + (slot + 1) * self.period_ns <= now:
                lateness = now - (mono_start + (slot + 1) * self.period_ns)
                buffer[filled] = min(lateness, 2**31 - 1)
                filled += 1
                slot += 1
                if filled == self.frame_samples:
                    first_slot = slot - filled + 1
                    start = wall_start + first_slot * self.period_ns
                    self._publish(LatencyFrame(start, self.period_ns, buffer.copy()))
                    filled = 0

    def _publish(self, frame: LatencyFrame) -> None:
        try:
            self.frames.put_nowait(frame)
        except queue.Full:
            self.frames.get_nowait()
            self.frames.put_nowait(frame)
            self.dropped_frames += 1
            if self.dropped_frames == 1 or self.dropped_frames % 100 == 0:
                logger.warning(
                    "wake-latency frames dropped: %s in all; the sender is behind",
                    self.dropped_frames,
                )
