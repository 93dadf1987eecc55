"""Fixtures shared by server tests: stubs on a channel to the folder's ``server``.

Each test folder defines its own ``server`` fixture with the settings it needs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest
import pytest_asyncio

from aetus.device.v1 import device_service_pb2_grpc
from aetus.ingest.v1 import ingest_service_pb2_grpc
from aetus.server.app import RunningServer
from aetus.server.testing import bearer


@pytest_asyncio.fixture
async def channel(server: RunningServer) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(server.address) as opened:
        yield opened


@pytest.fixture
def ingest(channel: grpc.aio.Channel) -> ingest_service_pb2_grpc.IngestServiceStub:
    return ingest_service_pb2_grpc.IngestServiceStub(channel)


@pytest.fixture
def devices(channel: grpc.aio.Channel) -> device_service_pb2_grpc.DeviceServiceStub:
    return device_service_pb2_grpc.DeviceServiceStub(channel)


@pytest.fixture
def admin(server: RunningServer) -> tuple[tuple[str, str], ...]:
    return bearer(server.admin_token)
