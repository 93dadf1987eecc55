"""Rejections through Envoy: the HTTP status, the JSON body and nothing stored.

Each error is compared with what a gRPC client gets from the server directly
for the same request, so the HTTP path and the gRPC path carry the same code
and the same message.
"""

from __future__ import annotations

import asyncio
import json
import struct

import grpc
import pytest
from google.api import httpbody_pb2

from aetus.device.v1 import device_service_pb2, device_service_pb2_grpc
from aetus.ingest.v1 import ingest_service_pb2, ingest_service_pb2_grpc
from aetus.telemetry.v1 import telemetry_pb2

pytestmark = [pytest.mark.envoy, pytest.mark.asyncio(loop_scope="module")]

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
NON_ASCII_TIME = "Messwert 21.5 °C ohne Zeitstempel"


async def direct_http_body(
    front_door, token: str, content_type: str, data: bytes
) -> tuple[int, str]:
    """Call IngestHttpBody on the server itself and return (code, message)."""
    async with grpc.aio.insecure_channel(front_door.grpc_address) as channel:
        stub = ingest_service_pb2_grpc.IngestServiceStub(channel)
        try:
            await stub.IngestHttpBody(
                httpbody_pb2.HttpBody(content_type=content_type, data=data),
                metadata=(("authorization", f"Bearer {token}"),),
                timeout=10,
            )
        except grpc.aio.AioRpcError as error:
            return error.code().value[0], error.details() or ""
    return 0, ""


def json_batch(events: list[dict[str, object]]) -> bytes:
    """Encode events as an IngestEventsRequest in JSON."""
    return json.dumps({"events": events}).encode()


def metric_json(device_id: str, sequence: int, **fields: object) -> dict[str, object]:
    """Build one JSON metric event; ``fields`` override or add event fields."""
    event: dict[str, object] = {
        "device_id": device_id,
        "boot_id": "boot-errors",
        "sequence": str(sequence),
        "time": "2024-05-01T12:00:00Z",
        "metrics": {"metrics": [{"name": "env/temperature", "double_value": 21.5}]},
    }
    event.update(fields)
    return event


def assert_status_body(reply, code: int, message: str) -> None:
    """Check the JSON google.rpc.Status body and the grpc-status header."""
    assert reply.headers["content-type"] == JSON
    assert reply.headers["grpc-status"] == str(code)
    body = reply.json()
    assert body["code"] == code
    assert body["message"].encode("utf-8") == message.encode("utf-8")


async def test_misrouted_request_404_json(front_door) -> None:
    token_headers = front_door.bearer(front_door.device_token)
    body = json_batch([metric_json(front_door.device_id, 1)])
    before = front_door.upstream_requests()

    typo = await front_door.http(
        "POST", "/v1/ingset", body, {"content-type": JSON, **token_headers}
    )
    wrong_method = await front_door.http("GET", "/v1/ingest", headers=token_headers)
    after_rejections = front_door.upstream_requests()
    control = await front_door.http("GET", "/v1/time", headers=token_headers)

    assert typo.status == 404
    assert typo.headers["content-type"] == JSON
    assert typo.json()["code"] == 5
    assert "POST /v1/ingset" in typo.json()["message"]
    assert wrong_method.status in (404, 405)
    assert wrong_method.json()["code"] == 5
    assert "GET /v1/ingest" in wrong_method.json()["message"]
    assert after_rejections == before
    assert control.status == 200
    assert front_door.upstream_requests() == before + 1


async def test_unauthenticated_maps_to_401(front_door) -> None:
    reply = await front_door.http("GET", "/v1/time")
    async with grpc.aio.insecure_channel(front_door.grpc_address) as channel:
        stub = ingest_service_pb2_grpc.IngestServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as direct:
            await stub.GetTime(ingest_service_pb2.GetTimeRequest(), timeout=10)

    assert reply.status == 401
    assert direct.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert_status_body(reply, 16, direct.value.details())


async def test_permission_denied_maps_to_403(front_door) -> None:
    body = json_batch([metric_json(front_door.device_id, 1)])
    before = front_door.event_count()

    reply = await front_door.http(
        "POST",
        "/v1/ingest",
        body,
        {"content-type": JSON, **front_door.bearer(front_door.read_token)},
    )
    code, message = await direct_http_body(
        front_door, front_door.read_token, JSON, body
    )

    assert reply.status == 403
    assert code == 7
    assert_status_body(reply, 7, message)
    assert front_door.event_count() == before


async def test_not_found_maps_to_404(front_door) -> None:
    reply = await front_door.http(
        "GET",
        "/v1/devices/no-such-device",
        headers=front_door.bearer(front_door.admin_token),
    )
    async with grpc.aio.insecure_channel(front_door.grpc_address) as channel:
        stub = device_service_pb2_grpc.DeviceServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as direct:
            await stub.GetDevice(
                device_service_pb2.GetDeviceRequest(device_id="no-such-device"),
                metadata=front_door.grpc_metadata(front_door.admin_token),
                timeout=10,
            )

    assert reply.status == 404
    assert direct.value.code() == grpc.StatusCode.NOT_FOUND
    assert_status_body(reply, 5, direct.value.details())


async def test_non_ascii_message_exact(front_door) -> None:
    body = json_batch([metric_json(front_door.device_id, 1, time=NON_ASCII_TIME)])
    before = front_door.event_count()

    reply = await front_door.http(
        "POST",
        "/v1/ingest",
        body,
        {"content-type": JSON, **front_door.bearer(front_door.device_token)},
    )
    code, message = await direct_http_body(
        front_door, front_door.device_token, JSON, body
    )

    assert reply.status == 400
    assert code == 3
    assert NON_ASCII_TIME in message
    assert_status_body(reply, 3, message)
    assert b"%C2%B0" not in reply.body
    assert front_door.event_count() == before


async def test_server_body_limit_maps_to_429(front_door, envoy_factory) -> None:
    # Envoy rejects bodies over the same limit first, so this Envoy allows
    # twice the server's limit to reach the server's own check.
    limit = front_door.settings.max_request_bytes
    roomy = await envoy_factory(front_door.grpc_address, max_request_bytes=2 * limit)
    body = json_batch([metric_json(front_door.device_id, 1)])
    body += b" " * (limit + 1 - len(body))
    before = front_door.event_count()

    reply = await roomy.http(
        "POST",
        "/v1/ingest",
        body,
        {"content-type": JSON, **front_door.bearer(front_door.device_token)},
    )
    code, message = await direct_http_body(
        front_door, front_door.device_token, JSON, body
    )

    assert reply.status == 429
    assert code == 8
    assert str(limit) in message
    assert_status_body(reply, 8, message)
    assert front_door.event_count() == before


async def test_rejected_protobuf_batch_never_2xx(front_door) -> None:
    # One event with a device id and nothing else: no boot id, no body.
    rejected = ingest_service_pb2.IngestEventsRequest(
        events=[telemetry_pb2.Event(device_id=front_door.device_id)]
    ).SerializeToString()
    valid = ingest_service_pb2.IngestEventsRequest(
        events=[_proto_event(front_door.device_id, 1)]
    ).SerializeToString()
    framed = b"\x00" + struct.pack(">I", len(valid)) + valid
    headers = {"content-type": PROTOBUF, **front_door.bearer(front_door.device_token)}
    before = front_door.event_count()

    rejected_reply = await front_door.http("POST", "/v1/ingest", rejected, headers)
    framed_reply = await front_door.http("POST", "/v1/ingest", framed, headers)
    stored_before_valid = front_door.event_count()
    valid_reply = await front_door.http("POST", "/v1/ingest", valid, headers)

    assert rejected_reply.status == 400
    assert rejected_reply.headers["grpc-status"] == "3"
    assert rejected_reply.json()["code"] == 3
    assert not 200 <= framed_reply.status < 300
    assert framed_reply.headers["grpc-status"] == str(framed_reply.json()["code"])
    assert stored_before_valid == before
    assert valid_reply.status == 200
    assert valid_reply.headers["grpc-status"] == "0"
    response = ingest_service_pb2.IngestEventsResponse.FromString(valid_reply.body)
    assert response.accepted_count == 1
    # The whole body is the message: no 5-byte gRPC frame in front of it.
    assert len(valid_reply.body) == response.ByteSize()
    assert front_door.event_count() == before + 1


def _proto_event(device_id: str, sequence: int) -> telemetry_pb2.Event:
    event = telemetry_pb2.Event(
        device_id=device_id, boot_id="boot-proto-errors", sequence=sequence
    )
    event.time.FromJsonString("2024-05-01T12:00:00Z")
    event.metrics.metrics.add(name="env/pressure", unit="hPa", double_value=1013.2)
    return event


@pytest.mark.parametrize("chunked", [False, True], ids=["content_length", "chunked"])
async def test_body_over_limit_413(front_door, chunked) -> None:
    limit = front_door.settings.max_request_bytes
    events = [
        metric_json(front_door.device_id, sequence, boot_id="boot-large")
        for sequence in range(20_000)
    ]
    body = json_batch(events)
    headers = {"content-type": JSON, **front_door.bearer(front_door.device_token)}
    before_events = front_door.event_count()
    before_upstream = front_door.upstream_requests()

    reply = await front_door.http("POST", "/v1/ingest", body, headers, chunked=chunked)

    assert len(body) > 1.5 * 1_048_576
    assert reply.status == 413
    assert reply.headers["content-type"] == JSON
    assert reply.headers["grpc-status"] == "8"
    assert reply.json()["code"] == 8
    assert f"limit of {limit} bytes" in reply.json()["message"]
    assert front_door.event_count() == before_events
    if not chunked:
        # With a Content-Length, the request never reaches the server.
        assert front_door.upstream_requests() == before_upstream


@pytest.mark.slow
async def test_body_under_limit_stores_all(front_door) -> None:
    limit = front_door.settings.max_request_bytes
    # Status events are the smallest valid events, so 12,000 fit in 1 MiB.
    events = [
        {
            "deviceId": front_door.device_id,
            "bootId": "b12k",
            "sequence": sequence,
            "status": {},
        }
        for sequence in range(12_000)
    ]
    body = json.dumps({"events": events}, separators=(",", ":")).encode()
    body += b" " * (limit - 1 - len(body))
    headers = {"content-type": JSON, **front_door.bearer(front_door.device_token)}
    before = front_door.event_count()

    reply = await front_door.http("POST", "/v1/ingest", body, headers)

    assert len(body) == limit - 1
    assert reply.status == 200, reply.body[:300]
    assert reply.json()["acceptedCount"] == 12_000
    assert front_door.event_count() == before + 12_000


async def test_access_log_omits_credentials(front_door, envoy_factory) -> None:
    secret = "SECRET_123"
    front = await envoy_factory(front_door.grpc_address)
    series = f"/v1/devices/{front_door.device_id}/series"

    with_header = await front.http(
        "GET", "/v1/time", headers={"authorization": f"Bearer tkn_{secret}"}
    )
    in_query = await front.http(
        "GET",
        f"{series}?stream=x&token={secret}",
        headers=front_door.bearer(front_door.read_token),
    )
    # Envoy writes its access log in the background; stopping it flushes.
    await asyncio.to_thread(front.envoy.stop)
    access_log = front.envoy.access_log_path.read_text()

    assert with_header.status == 401
    assert in_query.status == 400
    assert '"token"' in in_query.json()["message"]
    assert f"GET {series} HTTP/1.1" in access_log
    assert secret not in access_log
    assert secret not in front.envoy.log_path.read_text()
    assert front_door.read_token not in access_log
