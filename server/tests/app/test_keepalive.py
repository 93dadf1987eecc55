"""Keepalive pings on an idle stream, against a real server."""

from __future__ import annotations

import asyncio
import time

import grpc

from aetus.ingest.v1 import ingest_service_pb2 as pb
from aetus.ingest.v1 import ingest_service_pb2_grpc
from aetus.server.app import start_server
from aetus.server.config import Settings
from aetus.server.testing import bearer
from aetus.telemetry.v1 import telemetry_pb2

PING_INTERVAL_MS = 1_000

# The client pings every second and sends no data while the stream is idle.
CLIENT_OPTIONS = [
    ("grpc.keepalive_time_ms", PING_INTERVAL_MS),
    ("grpc.keepalive_timeout_ms", 5_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
]


def _batch(batch_sequence: int) -> pb.StreamEventsRequest:
    event = telemetry_pb2.Event(
        device_id="dev-01", boot_id="boot-1", sequence=batch_sequence
    )
    event.time.FromNanoseconds(time.time_ns())
    event.metrics.metrics.add(name="n", double_value=batch_sequence)
    return pb.StreamEventsRequest(batch_sequence=batch_sequence, events=[event])


async def test_keepalive_idle_stream_survives_pings(tmp_path) -> None:
    settings = Settings.load({}, data_dir=tmp_path / "data", grpc_address="127.0.0.1:0")
    server = await start_server(settings, min_ping_interval_ms=PING_INTERVAL_MS)
    try:
        async with grpc.aio.insecure_channel(
            server.address, options=CLIENT_OPTIONS
        ) as channel:
            stub = ingest_service_pb2_grpc.IngestServiceStub(channel)
            call = stub.StreamEvents(metadata=bearer(server.admin_token))
            await call.write(_batch(1))
            first = await call.read()

            # gRPC core sends GOAWAY too_many_pings once more than two pings
            # arrive sooner than the server's minimum interval, so 4.5 pings
            # of idle time would end this call if the minimum were not set.
            await asyncio.sleep(4.5 * PING_INTERVAL_MS / 1000)
            await call.write(_batch(2))
            second = await call.read()
            await call.done_writing()
            status = await call.code()
    finally:
        await server.stop(grace_s=1.0)

    assert first.acked_batch_sequence == 1
    assert second.acked_batch_sequence == 2
    assert second.accepted_count == 1
    assert status == grpc.StatusCode.OK
