"""Server process wiring: options, limits, binding, and serve() with signals."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import time
from pathlib import Path

import grpc
import pytest

from aetus.ingest.v1 import ingest_service_pb2, ingest_service_pb2_grpc
from aetus.server.app import (
    KEEPALIVE_OPTIONS,
    MIN_PING_INTERVAL_KEY,
    RunningServer,
    server_options,
)
from aetus.server.config import Settings
from aetus.server.store import EmbeddedStore
from aetus.server.testing import bearer, running_server
from aetus.telemetry.v1 import telemetry_pb2

# Keepalive time of clients that the server must tolerate without GOAWAY.
CLIENT_KEEPALIVE_MS = 10_000

SERVE_SCRIPT = """
import asyncio, logging
from aetus.server.app import serve
from aetus.server.config import Settings
logging.basicConfig(level=logging.INFO)
asyncio.run(serve(Settings.load()))
"""


def _event(sequence: int) -> telemetry_pb2.Event:
    event = telemetry_pb2.Event(device_id="dev-01", boot_id="boot-1", sequence=sequence)
    event.time.FromNanoseconds(time.time_ns())
    event.metrics.metrics.add(name="temp", double_value=20.0 + sequence)
    return event


def test_keepalive_options_accept_client_pings() -> None:
    options = dict(KEEPALIVE_OPTIONS)

    assert options["grpc.keepalive_permit_without_calls"] == 1
    assert options[MIN_PING_INTERVAL_KEY] <= CLIENT_KEEPALIVE_MS


def test_server_options_carry_message_limit() -> None:
    options = dict(server_options(Settings.load({}, max_grpc_message_bytes=12_345)))

    assert options["grpc.max_receive_message_length"] == 12_345
    assert options["grpc.max_send_message_length"] == 12_345
    assert options["grpc.so_reuseport"] == 0


async def test_server_rejects_oversized_message(tmp_path) -> None:
    async with (
        running_server(tmp_path, max_grpc_message_bytes=10_000) as running,
        grpc.aio.insecure_channel(running.address) as channel,
    ):
        stub = ingest_service_pb2_grpc.IngestServiceStub(channel)
        request = ingest_service_pb2.IngestEventsRequest(
            events=[_event(i) for i in range(400)]
        )
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await stub.IngestEvents(request, metadata=bearer(running.admin_token))

    assert request.ByteSize() > 10_000
    assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


async def test_server_reports_port_in_use(server: RunningServer, tmp_path) -> None:
    with pytest.raises(RuntimeError) as raised:
        async with running_server(tmp_path / "second", grpc_address=server.address):
            pass

    assert str(raised.value).startswith(f"cannot listen on {server.address} (")
    assert str(raised.value).endswith(
        "; choose a free address with AETUS_GRPC_ADDRESS or --grpc-address"
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def _wait_for_line(stream: asyncio.StreamReader, text: str) -> str:
    seen = []
    while True:
        line = (await asyncio.wait_for(stream.readline(), 20)).decode()
        seen.append(line)
        if text in line:
            return "".join(seen)
        if not line:
            raise AssertionError(f"{text!r} never logged; output: {''.join(seen)}")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_serve_stops_cleanly_on_signal(tmp_path: Path, signum: int) -> None:
    address = f"127.0.0.1:{_free_port()}"
    data_dir = tmp_path / "data"
    environment = {
        **os.environ,
        "AETUS_GRPC_ADDRESS": address,
        "AETUS_DATA_DIR": str(data_dir),
        "AETUS_ADMIN_TOKEN": "admin-for-tests",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        SERVE_SCRIPT,
        env=environment,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stderr is not None
    try:
        started = await _wait_for_line(process.stderr, "listening on")
        async with grpc.aio.insecure_channel(address) as channel:
            stub = ingest_service_pb2_grpc.IngestServiceStub(channel)
            response = await stub.IngestEvents(
                ingest_service_pb2.IngestEventsRequest(events=[_event(1), _event(2)]),
                metadata=bearer("admin-for-tests"),
            )
        process.send_signal(signum)
        rest = (await asyncio.wait_for(process.stderr.read(), 30)).decode()
        code = await asyncio.wait_for(process.wait(), 30)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()

    assert f"AETUS gRPC server listening on {address}" in started
    assert response.accepted_count == 2
    assert code == 0
    assert f"AETUS gRPC server on {address} stopped" in rest
    assert "admin-for-tests" not in started + rest
    store = await asyncio.to_thread(EmbeddedStore, data_dir)
    try:
        row = await asyncio.to_thread(store.get_device, "dev-01")
    finally:
        await asyncio.to_thread(store.close)
    assert row is not None
    assert row.event_count == 2
