"""Fixtures: the real AETUS server in-process on 127.0.0.1:0 with a temp data folder."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from aetus.sdk import AsyncClient, stubs
from aetus.server.app import RunningServer, start_server
from aetus.server.config import Settings


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    settings = Settings.load(
        environ={}, data_dir=tmp_path / "data", grpc_address="127.0.0.1:0"
    )
    running = await start_server(settings)
    yield running
    # A test that paused or delayed commits must not hold up the shutdown.
    running.event_log.commit_delay_s = 0.0
    running.event_log.resume_commits()
    await running.stop(0)


@pytest.fixture
async def client(server: RunningServer) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(server.address, token=server.admin_token) as opened:
        yield opened


async def provision_device(server: RunningServer, device_id: str) -> str:
    """Register a device with the admin token and return its bearer token."""
    async with AsyncClient(server.address, token=server.admin_token) as admin:
        stub = stubs.DeviceServiceStub(admin.channel)
        reply = await stub.ProvisionDevice(
            stubs.device_service_pb2.ProvisionDeviceRequest(
                device_id=device_id, hardware_id=f"hw-{device_id}", model="test"
            ),
            metadata=admin.metadata,
        )
    return str(reply.token)


def stored_points(server: RunningServer, device_id: str, stream: str) -> int:
    """Return the points (samples per channel) the store holds for one stream."""
    info = server.store.find_stream(device_id, stream)
    return 0 if info is None else info.point_count
