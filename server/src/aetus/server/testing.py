"""Helpers for tests that need a real AETUS server on a free loopback port."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from aetus.server.app import RunningServer, start_server
from aetus.server.config import Settings

__all__ = ["bearer", "running_server"]


@asynccontextmanager
async def running_server(
    data_dir: Path, **overrides: Any
) -> AsyncIterator[RunningServer]:
    """Start a server on ``127.0.0.1:0`` with its data in ``data_dir``.

    The process environment is ignored, so ``AETUS_*`` variables of the
    developer's shell cannot change a test. The server stops, draining its
    event log, when the block ends.

    Args:
        data_dir: Folder for the store and the generated admin token.
        **overrides: Other settings, as keyword arguments of ``Settings``.
    """
    values: dict[str, Any] = {"data_dir": data_dir, "grpc_address": "127.0.0.1:0"}
    values.update(overrides)
    running = await start_server(Settings.load({}, **values))
    try:
        yield running
    finally:
        await running.stop(grace_s=1.0)


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    """Return call metadata that carries ``token`` as a bearer credential."""
    return (("authorization", f"Bearer {token}"),)
