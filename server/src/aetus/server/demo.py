"""The demo fleet of ``aetus up``: this machine, streaming its own live measurements.

The demo device sends, over one SDK EventStream (the bidi stream with acks):

- a status event at start (``online``) and at a clean stop (``offline``);
- about once a second, a metric set from ``HostMetricsCollector``: per-core
  CPU utilisation, memory, load average, network and disk rates and, where
  the host exposes them, temperatures;
- every second, a signal frame of ``host/wake_latency``: 200 samples per
  second of how late a sampling thread woke for its 5 ms slots (see
  ``hostmetrics.WakeLatencySampler``). Raw samples are int32 nanoseconds,
  and the channel's scale of 0.001 makes the decoded unit microseconds.

Nothing here is synthetic: every value is read from the host when it is sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import platform
import queue
from dataclasses import dataclass

import psutil

from aetus.sdk import (
    AsyncClient,
    BatchRejected,
    Channel,
    DeviceIdentity,
    EventStream,
    StreamResult,
    build_metrics,
    build_signal_frames,
    build_status,
)
from aetus.server.hostmetrics import (
    DEFAULT_FRAME_SAMPLES,
    DEFAULT_PERIOD_NS,
    HostMetricsCollector,
    WakeLatencySampler,
)
from aetus.telemetry.v1 import telemetry_pb2

__all__ = ["DEMO_DEVICE_ID", "DEMO_HARDWARE_ID", "DemoDevice", "DemoSettings"]

logger = logging.getLogger(__name__)

# Device id of the built-in demo device.
DEMO_DEVICE_ID = "demo-host"
DEMO_HARDWARE_ID = "aetus-demo-host"
LATENCY_STREAM = "host/wake_latency"

# How long a stopping demo device waits for the server to acknowledge what it
# already sent.
CLOSE_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class DemoSettings:
    """Pace of the demo device.

    Attributes:
        device_id: Device id the events carry; it must match the token.
        metrics_interval_s: Seconds between host metric sets.
        latency_period_ns: Wake-up period of the latency sampler, in ns.
        latency_frame_samples: Samples per latency frame.
    """

    device_id: str = DEMO_DEVICE_ID
    metrics_interval_s: float = 1.0
    latency_period_ns: int = DEFAULT_PERIOD_NS
    latency_frame_samples: int = DEFAULT_FRAME_SAMPLES


class DemoDevice:
    """Streams the host's measurements until ``stop()`` is called.

    Args:
        client: Client whose token belongs to ``settings.device_id``.
        settings: Pace of the measurements.
    """

    def __init__(
        self, client: AsyncClient, settings: DemoSettings | None = None
    ) -> None:
        self.settings = settings or DemoSettings()
        self._client = client
        self._stop = asyncio.Event()
        self.rejections = 0
        self.events_sent = 0

    def stop(self) -> None:
        """Ask ``run()`` to send its last events and return."""
        self._stop.set()

    async def run(self) -> StreamResult:
        """Send status, metrics and latency frames until stopped.

        Returns:
            The stream's counters after the last acks came back (or after
            ``CLOSE_TIMEOUT_S``).
        """
        identity = DeviceIdentity(self.settings.device_id)
        stream = self._client.open_stream(on_rejection=self._log_rejection)
        sampler = WakeLatencySampler(
            self.settings.latency_period_ns, self.settings.latency_frame_samples
        )
        try:
            collector = await asyncio.to_thread(HostMetricsCollector)
            await self._send(stream, [self._status(identity, "online")])
            sampler.start()
            await self._loop(stream, identity, collector, sampler)
            await self._send(stream, [self._status(identity, "offline")])
        finally:
            await asyncio.to_thread(sampler.stop)
            result = await stream.close(timeout_s=CLOSE_TIMEOUT_S)
        logger.info(
            "Demo device %s stopped: %s events stored, %s unacked",
            identity.device_id,
            result.accepted_count,
            result.unacked_event_count,
        )
        return result

    async def _loop(
        self,
        stream: EventStream,
        identity: DeviceIdentity,
        collector: HostMetricsCollector,
        sampler: WakeLatencySampler,
    ) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._stop.wait(), timeout=self.settings.metrics_interval_s
                )
            readings = await asyncio.to_thread(collector.collect)
            values = {reading.name: reading.value for reading in readings}
            units = {reading.name: reading.unit for reading in readings}
            events = [build_metrics(identity, values, units=units)]
            events.extend(self._latency_events(identity, sampler))
            await self._send(stream, events)

    def _latency_events(
        self, identity: DeviceIdentity, sampler: WakeLatencySampler
    ) -> list[telemetry_pb2.Event]:
        events: list[telemetry_pb2.Event] = []
        channel = Channel("lateness", "us", scale=0.001)
        while True:
            try:
                frame = sampler.frames.get_nowait()
            except queue.Empty:
                return events
            events.extend(
                build_signal_frames(
                    identity,
                    LATENCY_STREAM,
                    frame.lateness_ns,
                    channels=[channel],
                    sample_interval_ns=frame.period_ns,
                    time=frame.start_time_ns,
                )
            )

    async def _send(
        self, stream: EventStream, events: list[telemetry_pb2.Event]
    ) -> None:
        await stream.send_many(events)
        self.events_sent += len(events)

    def _status(self, identity: DeviceIdentity, state: str) -> telemetry_pb2.Event:
        memory = psutil.virtual_memory()
        return build_status(
            identity,
            state=state,
            free_heap_bytes=min(int(memory.available), 2**32 - 1),
            reset_reason="process_start" if state == "online" else "",
            message=f"AETUS demo device on {platform.node()} "
            f"({platform.system()} {platform.release()}, psutil {psutil.__version__})",
        )

    def _log_rejection(self, rejection: BatchRejected) -> None:
        self.rejections += 1
        logger.error(
            "Demo batch %s rejected (%s events): %s",
            rejection.batch_number,
            len(rejection.events),
            rejection.error,
        )
