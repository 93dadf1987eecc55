"""Helpers for tests that need a real AETUS server on a free loopback port."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import grpc

from aetus.server.app import RunningServer, start_server
from aetus.server.config import Settings

__all__ = ["bearer", "running_server", "server_process"]


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


@asynccontextmanager
async def server_process(
    data_dir: Path,
    admin_token: str,
    preexec_fn: Callable[[], None] | None = None,
) -> AsyncIterator[tuple[asyncio.subprocess.Process, str]]:
    """Run ``aetus serve`` as its own process on a free loopback port.

    Yields the process and its address once the server accepts
    connections. Its log (stderr) goes to ``<data_dir>.log``. The process
    is terminated when the block ends.

    Args:
        data_dir: Folder for the store.
        admin_token: Admin credential the server accepts.
        preexec_fn: Run in the child before it starts, for example to set
            resource limits.
    """
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{probe.getsockname()[1]}"
    log = data_dir.with_name(data_dir.name + ".log").open("wb")
    process = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).with_name("aetus")),
        "serve",
        "--grpc-address",
        address,
        "--data-dir",
        str(data_dir),
        env={**os.environ, "AETUS_ADMIN_TOKEN": admin_token},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=log,
        preexec_fn=preexec_fn,
    )
    log.close()
    try:
        async with grpc.aio.insecure_channel(address) as channel:
            await asyncio.wait_for(channel.channel_ready(), timeout=20)
        yield process, address
    finally:
        if process.returncode is None:
            process.terminate()
        await asyncio.wait_for(process.wait(), timeout=20)
