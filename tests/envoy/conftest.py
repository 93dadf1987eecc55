"""Fixtures for Envoy tests that need upstream behaviour AETUS has no path for.

``scripted_front_door`` is the shipped Envoy config in front of a real
grpc.aio server whose servicers answer from a script: any status code with a
given message, a stream that waits before its last ack, and replies of a
requested size.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest_asyncio
from google.api import httpbody_pb2

from aetus.device.v1 import device_service_pb2, device_service_pb2_grpc
from aetus.ingest.v1 import ingest_service_pb2, ingest_service_pb2_grpc
from aetus.query.v1 import query_service_pb2, query_service_pb2_grpc
from aetus.server.errors import ApiError, abort

# Message of every scripted error: spaces, an em dash and a degree sign, so
# percent-encoding or a lossy charset shows up as a mismatch.
SCRIPTED_MESSAGE = "events[0].time: required — Messwert 21.5 °C ohne Zeitstempel"

# Metadata key whose value is the seconds StreamEvents waits after the
# client half-closes, before it sends its last ack.
FINAL_ACK_DELAY_KEY = "x-final-ack-delay-s"

SLOW_READ_S = 3.0


class ScriptedDevices(device_service_pb2_grpc.DeviceServiceServicer):
    """GetDevice on device id ``code-<n>`` fails with gRPC status code n."""

    async def GetDevice(
        self,
        request: device_service_pb2.GetDeviceRequest,
        context: grpc.aio.ServicerContext,
    ) -> device_service_pb2.Device:
        number = int(request.device_id.removeprefix("code-"))
        code = next(code for code in grpc.StatusCode if code.value[0] == number)
        await abort(
            context,
            ApiError(code, SCRIPTED_MESSAGE, "SCRIPTED", {"code": str(number)}),
        )


class ScriptedIngest(ingest_service_pb2_grpc.IngestServiceServicer):
    """IngestHttpBody echoes its input; StreamEvents waits before a final ack."""

    async def IngestHttpBody(
        self, request: httpbody_pb2.HttpBody, context: grpc.aio.ServicerContext
    ) -> httpbody_pb2.HttpBody:
        return httpbody_pb2.HttpBody(
            content_type=request.content_type, data=request.data
        )

    async def StreamEvents(
        self,
        request_iterator: AsyncIterator[ingest_service_pb2.StreamEventsRequest],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[ingest_service_pb2.StreamEventsResponse]:
        last = 0
        async for request in request_iterator:
            last = request.batch_sequence
            yield ingest_service_pb2.StreamEventsResponse(acked_batch_sequence=last)
        metadata = dict(context.invocation_metadata() or ())
        await asyncio.sleep(float(metadata.get(FINAL_ACK_DELAY_KEY, "0")))
        yield ingest_service_pb2.StreamEventsResponse(
            acked_batch_sequence=last, accepted_count=last
        )

    async def GetTime(
        self,
        request: ingest_service_pb2.GetTimeRequest,
        context: grpc.aio.ServicerContext,
    ) -> ingest_service_pb2.GetTimeResponse:
        return ingest_service_pb2.GetTimeResponse(unix_time_ns=1)


class ScriptedQuery(query_service_pb2_grpc.QueryServiceServicer):
    """ReadStream returns ``max_points`` raw points valued 0, 1, 2 and so on.

    On the stream named ``slow`` it waits ``SLOW_READ_S`` seconds first.
    """

    async def ReadStream(
        self,
        request: query_service_pb2.ReadStreamRequest,
        context: grpc.aio.ServicerContext,
    ) -> query_service_pb2.ReadStreamResponse:
        if request.stream == "slow":
            await asyncio.sleep(SLOW_READ_S)
        points = [
            query_service_pb2.Point(double_value=float(index))
            for index in range(request.max_points)
        ]
        return query_service_pb2.ReadStreamResponse(
            mode=query_service_pb2.READ_MODE_RAW,
            series=[query_service_pb2.ChannelSeries(points=points)],
            source_point_count=request.max_points,
        )


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def scripted_upstream() -> AsyncIterator[str]:
    """Start a real grpc.aio server with the scripted servicers on a free port."""
    server = grpc.aio.server()
    device_service_pb2_grpc.add_DeviceServiceServicer_to_server(
        ScriptedDevices(), server
    )
    ingest_service_pb2_grpc.add_IngestServiceServicer_to_server(
        ScriptedIngest(), server
    )
    query_service_pb2_grpc.add_QueryServiceServicer_to_server(ScriptedQuery(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(0)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def scripted_front_door(scripted_upstream: str, envoy_factory: Any) -> Any:
    """Start the shipped Envoy config in front of the scripted server."""
    return await envoy_factory(scripted_upstream)
