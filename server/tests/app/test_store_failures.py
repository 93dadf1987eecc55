"""Store failures over a real server process: invalidation and memory limits."""

from __future__ import annotations

import resource
import signal
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from aetus.ingest.v1 import ingest_service_pb2, ingest_service_pb2_grpc
from aetus.query.v1 import query_service_pb2, query_service_pb2_grpc
from aetus.server.testing import bearer, server_process
from aetus.telemetry.v1 import telemetry_pb2

ADMIN_TOKEN = "aetus_admin_store-failure-test"
# Files the server may write, in bytes: enough to open the store and take a
# few batches, then writes fail as on a full disk.
MAX_FILE_BYTES = 2 * 1_048_576


def _limit_file_size() -> None:
    # Runs in the child: a write beyond the limit then fails with EFBIG
    # instead of killing the process with SIGXFSZ.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (MAX_FILE_BYTES, MAX_FILE_BYTES))


def _batch(first: int) -> ingest_service_pb2.IngestEventsRequest:
    events = []
    for sequence in range(first, first + 500):
        event = telemetry_pb2.Event(
            device_id="dev-01", boot_id="boot-1", sequence=sequence
        )
        event.time.FromNanoseconds(time.time_ns())
        event.metrics.metrics.add(name="text", string_value="x" * 200)
        events.append(event)
    return ingest_service_pb2.IngestEventsRequest(events=events)


async def test_store_invalidated_fails_loudly(tmp_path) -> None:
    data_dir = tmp_path / "data"
    admin = bearer(ADMIN_TOKEN)
    async with (
        server_process(data_dir, ADMIN_TOKEN, _limit_file_size) as (_, address),
        grpc.aio.insecure_channel(address) as channel,
    ):
        ingest = ingest_service_pb2_grpc.IngestServiceStub(channel)
        query = query_service_pb2_grpc.QueryServiceStub(channel)
        health = health_pb2_grpc.HealthStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as failed_write:
            for first in range(0, 1_000_000, 500):
                await ingest.IngestEvents(_batch(first), metadata=admin)
        status = await health.Check(health_pb2.HealthCheckRequest())
        with pytest.raises(grpc.aio.AioRpcError) as failed_read:
            await query.ListStreams(
                query_service_pb2.ListStreamsRequest(device_id="dev-01"),
                metadata=admin,
            )
    log = data_dir.with_name("data.log").read_text(encoding="utf-8")

    assert failed_write.value.code() == grpc.StatusCode.UNAVAILABLE
    assert status.status == health_pb2.HealthCheckResponse.NOT_SERVING
    assert failed_read.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "restarts the server" in failed_read.value.details()
    assert "DuckDB invalidated the telemetry store" in log
    assert "Health set to NOT_SERVING" in log
