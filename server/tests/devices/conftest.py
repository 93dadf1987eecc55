"""Fixtures for device and auth tests: a real server and its stubs."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest
import pytest_asyncio

from aetus.device.v1 import device_service_pb2_grpc
from aetus.ingest.v1 import ingest_service_pb2_grpc
from aetus.server.app import RunningServer
from aetus.server.testing import bearer, running_server

READ_TOKEN = "read-token-for-tests"


@pytest_asyncio.fixture
async def server(tmp_path) -> AsyncIterator[RunningServer]:
    async with running_server(tmp_path / "data", read_token=READ_TOKEN) as running:
        yield running


@pytest_asyncio.fixture
async def channel(server: RunningServer) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(server.address) as opened:
        yield opened


@pytest.fixture
def devices(channel: grpc.aio.Channel) -> device_service_pb2_grpc.DeviceServiceStub:
    return device_service_pb2_grpc.DeviceServiceStub(channel)


@pytest.fixture
def ingest(channel: grpc.aio.Channel) -> ingest_service_pb2_grpc.IngestServiceStub:
    return ingest_service_pb2_grpc.IngestServiceStub(channel)


@pytest.fixture
def admin(server: RunningServer) -> tuple[tuple[str, str], ...]:
    return bearer(server.admin_token)


@pytest.fixture
def reader() -> tuple[tuple[str, str], ...]:
    return bearer(READ_TOKEN)
