"""The demo device against a real in-process server: status, metrics, dense frames."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from aetus.device.v1 import device_service_pb2, device_service_pb2_grpc
from aetus.sdk import AsyncClient
from aetus.server.app import RunningServer, start_server
from aetus.server.config import Settings
from aetus.server.demo import LATENCY_STREAM, DemoDevice, DemoSettings

ADMIN = "demo-test-admin"


@pytest_asyncio.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    settings = Settings.load(
        environ={}, data_dir=tmp_path, grpc_address="127.0.0.1:0", admin_token=ADMIN
    )
    running = await start_server(settings)
    try:
        yield running
    finally:
        await running.stop(0)


async def _provision(address: str, device_id: str) -> str:
    async with AsyncClient(address, token=ADMIN) as client:
        stub = device_service_pb2_grpc.DeviceServiceStub(client.channel)
        request = device_service_pb2.ProvisionDeviceRequest(
            device_id=device_id, hardware_id=device_id
        )
        reply = await stub.ProvisionDevice(request, metadata=client.metadata)
    return reply.token


async def test_demo_device_streams_host_data(server: RunningServer) -> None:
    token = await _provision(server.address, "demo-test")
    settings = DemoSettings(device_id="demo-test", metrics_interval_s=0.5)

    async with AsyncClient(server.address, token=token) as client:
        device = DemoDevice(client, settings)
        running = asyncio.create_task(device.run())
        await asyncio.sleep(2.6)
        device.stop()
        result = await running

    assert result.complete
    assert device.rejections == 0
    assert result.accepted_count == device.events_sent
    async with AsyncClient(server.address, token=ADMIN) as reader:
        streams = {s.name: s for s in await reader.list_streams("demo-test")}
        latency = await reader.read_stream("demo-test", LATENCY_STREAM, mode="raw")
    assert {"cpu/utilization", "memory/total", "load/1m", LATENCY_STREAM} <= set(
        streams
    )
    assert streams[LATENCY_STREAM].nominal_rate_hz == pytest.approx(200.0)
    assert streams["cpu/utilization"].point_count >= 4
    series = latency["lateness"]
    assert series.unit == "us"
    # At least two full one-second frames at 200 Hz arrived.
    assert len(series) >= 400
    assert (series.values[~series.gaps] >= 0).all()
