"""Envoy behaviour against a scripted upstream: error mapping, long streams, pings."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import grpc
import pytest

from aetus.device.v1 import device_service_pb2, device_service_pb2_grpc
from aetus.ingest.v1 import ingest_service_pb2, ingest_service_pb2_grpc
from aetus.server.envoy import TEMPLATE_PATH

pytestmark = [pytest.mark.envoy, pytest.mark.asyncio(loop_scope="module")]

SCRIPTED_MESSAGE = "events[0].time: required — Messwert 21.5 °C ohne Zeitstempel"
FINAL_ACK_DELAY_KEY = "x-final-ack-delay-s"

# gRPC status code and the HTTP status the transcoder must map it to.
STATUS_TABLE = [
    pytest.param(16, 401, id="unauthenticated"),
    pytest.param(7, 403, id="permission_denied"),
    pytest.param(5, 404, id="not_found"),
    pytest.param(8, 429, id="resource_exhausted"),
    pytest.param(14, 503, id="unavailable"),
    pytest.param(4, 504, id="deadline_exceeded"),
    pytest.param(13, 500, id="internal"),
    pytest.param(3, 400, id="invalid_argument"),
]


@pytest.mark.parametrize(("code", "http_status"), STATUS_TABLE)
async def test_error_mapping_status_and_message(
    scripted_front_door, code: int, http_status: int
) -> None:
    reply = await scripted_front_door.http("GET", f"/v1/devices/code-{code}")

    assert reply.status == http_status
    assert reply.headers["content-type"] == "application/json"
    assert reply.headers["grpc-status"] == str(code)
    body = reply.json()
    assert body["code"] == code
    assert body["message"] == SCRIPTED_MESSAGE
    assert "%" not in reply.body.decode("utf-8")
    assert body["details"][0]["reason"] == "SCRIPTED"


@pytest.mark.parametrize(("code", "http_status"), STATUS_TABLE)
async def test_error_mapping_native_grpc_unchanged(
    scripted_front_door, code: int, http_status: int
) -> None:
    async with grpc.aio.insecure_channel(scripted_front_door.http_address) as channel:
        stub = device_service_pb2_grpc.DeviceServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.GetDevice(
                device_service_pb2.GetDeviceRequest(device_id=f"code-{code}"),
                timeout=10,
            )

    assert caught.value.code().value[0] == code
    assert caught.value.details() == SCRIPTED_MESSAGE


async def _batches(count: int) -> AsyncIterator[ingest_service_pb2.StreamEventsRequest]:
    for number in range(1, count + 1):
        yield ingest_service_pb2.StreamEventsRequest(batch_sequence=number)


@pytest.mark.slow
async def test_stream_outlives_half_close_wait(scripted_front_door) -> None:
    # Envoy's default route timeout is 15 s, counted from the end of the
    # request. The server here sends its last ack 16 s after the half-close.
    delay_s = 16.0

    async with grpc.aio.insecure_channel(scripted_front_door.http_address) as channel:
        stub = ingest_service_pb2_grpc.IngestServiceStub(channel)
        started = time.monotonic()
        call = stub.StreamEvents(
            _batches(100), metadata=((FINAL_ACK_DELAY_KEY, str(delay_s)),)
        )
        acks = [ack async for ack in call]
        code = await call.code()
        elapsed_s = time.monotonic() - started

    assert code == grpc.StatusCode.OK
    assert elapsed_s >= delay_s
    assert [ack.acked_batch_sequence for ack in acks[:100]] == list(range(1, 101))
    assert acks[-1].acked_batch_sequence == 100
    assert acks[-1].accepted_count == 100


async def test_stream_survives_client_keepalive_pings(scripted_front_door) -> None:
    # A client that pings every second, with and without data in flight,
    # keeps its stream: Envoy answers pings itself and has no ping limit.
    options = [
        ("grpc.keepalive_time_ms", 1000),
        ("grpc.keepalive_timeout_ms", 5000),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0),
    ]
    first_batch_sent = asyncio.Event()
    idle_s = 4.0

    async def requests() -> AsyncIterator[ingest_service_pb2.StreamEventsRequest]:
        yield ingest_service_pb2.StreamEventsRequest(batch_sequence=1)
        first_batch_sent.set()
        await asyncio.sleep(idle_s)
        yield ingest_service_pb2.StreamEventsRequest(batch_sequence=2)

    async with grpc.aio.insecure_channel(
        scripted_front_door.http_address, options=options
    ) as channel:
        stub = ingest_service_pb2_grpc.IngestServiceStub(channel)
        call = stub.StreamEvents(requests())
        acks = [ack.acked_batch_sequence async for ack in call]
        code = await call.code()

    assert first_batch_sent.is_set()
    assert code == grpc.StatusCode.OK
    assert acks == [1, 2, 2]


async def test_response_over_limit_is_500_not_200(
    scripted_upstream, envoy_factory
) -> None:
    limit = 64 * 1024
    front = await envoy_factory(scripted_upstream, max_grpc_message_bytes=limit)

    small = await front.http("GET", "/v1/devices/d/series?stream=s&max_points=100")
    large = await front.http("GET", "/v1/devices/d/series?stream=s&max_points=20000")

    assert small.status == 200
    points = small.json()["series"][0]["points"]
    assert [point["doubleValue"] for point in points] == list(range(100))
    assert large.status == 500
    assert large.headers["content-type"] == "application/json"
    assert large.json()["code"] == 13
    assert f"response limit: {limit} bytes" in large.json()["message"]


async def test_http_body_query_parameters_left_out(scripted_front_door) -> None:
    # HttpBody has fields named data and content_type; query parameters with
    # those names must neither replace them nor fail the request.
    samples = bytes([0x00, 0x00, 0x80, 0x3F])

    reply = await scripted_front_door.http(
        "POST",
        "/v1/ingest?data=1&content_type=x",
        samples,
        {"content-type": "application/octet-stream"},
    )

    assert reply.status == 200
    assert reply.body == samples
    assert reply.headers["content-type"] == "application/octet-stream"


async def test_route_timeout_is_504_json(scripted_upstream, envoy_factory, tmp_path):
    # The shipped HTTP route timeout is 60 s; a copy with 1 s shows the reply
    # that a client gets when it runs out, without a minute of waiting.
    template = tmp_path / "envoy.yaml"
    shipped = TEMPLATE_PATH.read_text()
    template.write_text(shipped.replace("timeout: 60s", "timeout: 1s"))
    front = await envoy_factory(scripted_upstream, template_path=template)

    reply = await front.http("GET", "/v1/devices/d/series?stream=slow")

    assert shipped.count("timeout: 60s") == 2
    assert reply.status == 504
    assert reply.headers["grpc-status"] == "4"
    assert reply.json()["code"] == 4
    assert reply.json()["message"].startswith("AETUS gRPC server did not reply in time")
