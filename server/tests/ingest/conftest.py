"""Fixtures for ingest tests: a real server, stubs, a provisioned device, events."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import pytest_asyncio

from aetus.device.v1 import device_service_pb2, device_service_pb2_grpc
from aetus.server.app import RunningServer
from aetus.server.testing import bearer, running_server
from aetus.telemetry.v1 import telemetry_pb2

DEVICE_ID = "dev-01"
HARDWARE_ID = "esp32c5-a1b2c3d4e5f6"


@dataclass(frozen=True)
class Device:
    """A provisioned device and the call metadata that carries its token."""

    device_id: str
    token: str
    metadata: tuple[tuple[str, str], ...]


class EventFactory:
    """Builds valid events of each body kind for ``DEVICE_ID``."""

    def __init__(self) -> None:
        self.time_ns = time.time_ns() - 60 * 1_000_000_000

    def metrics(self, sequence: int, **values: float) -> telemetry_pb2.Event:
        event = self._event(sequence)
        for name, value in (values or {"temp": 21.5}).items():
            event.metrics.metrics.add(name=name, unit="degC", double_value=value)
        return event

    def frame(self, sequence: int, samples: bytes = bytes(48)) -> telemetry_pb2.Event:
        event = self._event(sequence)
        frame = event.signal_frame
        frame.stream = "imu/accel"
        frame.sample_interval_ns = 5_000_000
        frame.sample_count = 4
        frame.encoding = telemetry_pb2.SAMPLE_ENCODING_FLOAT32_LE
        frame.layout = telemetry_pb2.SAMPLE_LAYOUT_INTERLEAVED
        for name in "xyz":
            frame.channels.add(name=name, unit="g")
        frame.samples = samples
        return event

    def status(self, sequence: int) -> telemetry_pb2.Event:
        event = self._event(sequence)
        event.status.state = telemetry_pb2.DEVICE_STATE_ONLINE
        event.status.reset_reason = "power_on"
        return event

    def alert(self, sequence: int) -> telemetry_pb2.Event:
        event = self._event(sequence)
        event.alert.code = "SENSOR_TIMEOUT"
        event.alert.severity = telemetry_pb2.SEVERITY_WARNING
        return event

    def columns(self, sequence: int) -> telemetry_pb2.Event:
        event = self._event(sequence)
        columns = event.metric_columns
        columns.names.extend(["a", "b"])
        columns.units.extend(["V", "A"])
        columns.name_indices.extend([0, 1, 0])
        columns.time_offsets_ns.extend([0, 1_000, 2_000])
        columns.values.extend([1.0, 2.0, 3.0])
        return event

    def _event(self, sequence: int) -> telemetry_pb2.Event:
        event = telemetry_pb2.Event(
            device_id=DEVICE_ID,
            boot_id="boot-1",
            sequence=sequence,
            time_source=telemetry_pb2.TIME_SOURCE_SYNCED,
        )
        event.time.FromNanoseconds(self.time_ns + sequence * 1_000_000)
        return event


@pytest_asyncio.fixture
async def server(tmp_path) -> AsyncIterator[RunningServer]:
    async with running_server(tmp_path / "data") as running:
        yield running


@pytest_asyncio.fixture
async def device(
    devices: device_service_pb2_grpc.DeviceServiceStub,
    admin: tuple[tuple[str, str], ...],
) -> Device:
    response = await devices.ProvisionDevice(
        device_service_pb2.ProvisionDeviceRequest(
            device_id=DEVICE_ID, hardware_id=HARDWARE_ID, model="esp32c5"
        ),
        metadata=admin,
    )
    return Device(response.device.device_id, response.token, bearer(response.token))


@pytest.fixture
def events() -> EventFactory:
    return EventFactory()
