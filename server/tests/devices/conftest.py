"""Fixtures for device and auth tests: a real server and its stubs."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from aetus.server.app import RunningServer
from aetus.server.testing import bearer, running_server

READ_TOKEN = "read-token-for-tests"


@pytest_asyncio.fixture
async def server(tmp_path) -> AsyncIterator[RunningServer]:
    async with running_server(tmp_path / "data", read_token=READ_TOKEN) as running:
        yield running


@pytest.fixture
def reader() -> tuple[tuple[str, str], ...]:
    return bearer(READ_TOKEN)
