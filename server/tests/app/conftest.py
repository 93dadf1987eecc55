"""Fixtures for server wiring tests: a real server on a free loopback port."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from aetus.server.app import RunningServer
from aetus.server.testing import running_server


@pytest_asyncio.fixture
async def server(tmp_path) -> AsyncIterator[RunningServer]:
    async with running_server(tmp_path / "data") as running:
        yield running
