"""Ingest and time through Envoy: JSON, protobuf and native gRPC on one port."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import time

import grpc
import pytest

from aetus.ingest.v1 import ingest_service_pb2, ingest_service_pb2_grpc
from aetus.telemetry.v1 import telemetry_pb2

pytestmark = [pytest.mark.envoy, pytest.mark.asyncio(loop_scope="module")]

PROTOBUF = "application/x-protobuf"
JSON = "application/json"


def metric_event(
    device_id: str, sequence: int, value: float, *, boot_id: str = "boot-ingest"
) -> telemetry_pb2.Event:
    """Build one metric event at a fixed synchronised time."""
    event = telemetry_pb2.Event(
        device_id=device_id,
        boot_id=boot_id,
        sequence=sequence,
        time_source=telemetry_pb2.TIME_SOURCE_SYNCED,
    )
    event.time.FromJsonString("2024-05-01T12:00:00Z")
    event.time.seconds += sequence
    event.metrics.metrics.add(name="env/temperature", unit="degC", double_value=value)
    return event


async def test_time_with_device_token(front_door) -> None:
    before_ns = time.time_ns()

    reply = await front_door.http(
        "GET", "/v1/time", headers=front_door.bearer(front_door.device_token)
    )

    assert reply.status == 200
    assert reply.headers["content-type"] == JSON
    body = reply.json()
    assert before_ns <= int(body["unixTimeNs"]) <= time.time_ns()
    assert body["validAfterTime"] == "2020-01-01T00:00:00Z"


async def test_time_without_token_is_401_json(front_door) -> None:
    reply = await front_door.http("GET", "/v1/time")

    assert reply.status == 401
    assert reply.headers["content-type"] == JSON
    assert reply.headers["grpc-status"] == "16"
    assert reply.json()["code"] == 16


async def test_ingest_json_post_stores(front_door) -> None:
    before = front_door.event_count()
    events = [
        json.loads(_event_json(front_door.device_id, sequence, 20.0 + sequence))
        for sequence in range(3)
    ]
    body = json.dumps({"events": events}).encode()

    reply = await front_door.http(
        "POST",
        "/v1/ingest",
        body,
        {"content-type": JSON, **front_door.bearer(front_door.device_token)},
    )

    assert reply.status == 200, reply.body
    assert reply.headers["content-type"] == JSON
    assert reply.headers["grpc-status"] == "0"
    assert reply.json()["acceptedCount"] == 3
    assert front_door.event_count() == before + 3


async def test_ingest_protobuf_post_replies_raw_protobuf(front_door) -> None:
    before = front_door.event_count()
    request = ingest_service_pb2.IngestEventsRequest(
        events=[
            metric_event(front_door.device_id, sequence, 1.5, boot_id="boot-proto")
            for sequence in range(4)
        ]
    )

    reply = await front_door.http(
        "POST",
        "/v1/ingest",
        request.SerializeToString(),
        {"content-type": PROTOBUF, **front_door.bearer(front_door.device_token)},
    )

    assert reply.status == 200, reply.body
    assert reply.headers["content-type"] == PROTOBUF
    assert reply.headers["grpc-status"] == "0"
    # Raw protobuf: no 5-byte gRPC frame (flag byte 0 plus a length) in front.
    response = ingest_service_pb2.IngestEventsResponse.FromString(reply.body)
    assert response.accepted_count == 4
    assert response.commit_time.seconds > 0
    assert front_door.event_count() == before + 4


async def test_ingest_protobuf_ignores_query_parameters(front_door) -> None:
    # google.api.HttpBody has fields named data and content_type; query
    # parameters with those names must not replace the posted bytes.
    before = front_door.event_count()
    request = ingest_service_pb2.IngestEventsRequest(
        events=[metric_event(front_door.device_id, 0, 7.0, boot_id="boot-query")]
    )

    reply = await front_door.http(
        "POST",
        "/v1/ingest?data=1&content_type=x",
        request.SerializeToString(),
        {"content-type": PROTOBUF, **front_door.bearer(front_door.device_token)},
    )

    assert reply.status == 200, reply.body
    assert reply.headers["content-type"] == PROTOBUF
    response = ingest_service_pb2.IngestEventsResponse.FromString(reply.body)
    assert response.accepted_count == 1
    assert front_door.event_count() == before + 1


async def test_native_grpc_through_envoy(front_door) -> None:
    metadata = (("authorization", f"Bearer {front_door.device_token}"),)
    batches = [
        ingest_service_pb2.StreamEventsRequest(
            batch_sequence=number,
            events=[metric_event(front_door.device_id, number, 3.0, boot_id="boot-s")],
        )
        for number in (1, 2, 3)
    ]
    before = front_door.event_count()

    async with grpc.aio.insecure_channel(front_door.http_address) as channel:
        stub = ingest_service_pb2_grpc.IngestServiceStub(channel)
        time_reply = await stub.GetTime(
            ingest_service_pb2.GetTimeRequest(), metadata=metadata, timeout=10
        )
        call = stub.StreamEvents(iter(batches), metadata=metadata, timeout=20)
        acks = [response async for response in call]
        code = await call.code()

    assert time_reply.unix_time_ns > 0
    assert code == grpc.StatusCode.OK
    assert acks[-1].acked_batch_sequence == 3
    assert sum(ack.accepted_count for ack in acks) == 3
    assert front_door.event_count() == before + 3


def _event_json(device_id: str, sequence: int, value: float) -> str:
    return json.dumps(
        {
            "device_id": device_id,
            "boot_id": "boot-json",
            "sequence": str(sequence),
            "time": f"2024-05-01T12:00:{sequence:02d}+02:00",
            "metrics": {"metrics": [{"name": "env/humidity", "double_value": value}]},
        }
    )


async def test_front_door_concurrent_posts(front_door) -> None:
    before = front_door.event_count()
    headers = {"content-type": JSON, **front_door.bearer(front_door.device_token)}
    bodies = [
        json.dumps(
            {
                "events": [
                    {
                        "device_id": front_door.device_id,
                        "boot_id": "boot-parallel",
                        "sequence": str(number),
                        "time": "2024-05-01T12:00:00Z",
                        "metrics": {"metrics": [{"name": "p", "int_value": number}]},
                    }
                ]
            }
        ).encode()
        for number in range(8)
    ]

    replies = await asyncio.gather(
        *(front_door.http("POST", "/v1/ingest", body, headers) for body in bodies)
    )

    assert [reply.status for reply in replies] == [200] * 8
    assert front_door.event_count() == before + 8


def _raw_exchange(
    address: str, request: bytes, wait_for_close: bool
) -> tuple[bytes, bool]:
    """Send raw bytes, read the reply, and, if asked, whether the peer closed."""
    host, _, port = address.rpartition(":")
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(request)
        reply = b""
        while b"\r\n\r\n" not in reply:
            reply += connection.recv(65_536)
        head, _, rest = reply.partition(b"\r\n\r\n")
        length = int(re.search(rb"content-length: (\d+)", head, re.I).group(1))
        while len(rest) < length:
            rest += connection.recv(65_536)
        closed = False
        if wait_for_close:
            # Envoy closes a rejected connection after its delayed-close
            # timeout of 1 s, so wait a little longer than that.
            connection.settimeout(3)
            closed = connection.recv(1) == b""
    return head + b"\r\n\r\n" + rest, closed


@pytest.mark.parametrize(
    ("framing", "status", "closed"),
    [
        pytest.param("both", 400, True, id="length_and_chunked"),
        pytest.param("chunked", 200, False, id="chunked_only"),
        pytest.param("length", 200, False, id="length_only"),
    ],
)
async def test_body_framing_headers(
    front_door, framing: str, status: int, closed: bool
) -> None:
    sequence = {"both": 800, "chunked": 801, "length": 802}[framing]
    body = json.dumps({"events": [json.loads(_event_json(front_door.device_id, 0, 1))]})
    body = body.replace('"sequence": "0"', f'"sequence": "{sequence}"').encode()
    head = (
        "POST /v1/ingest HTTP/1.1\r\nHost: ingest\r\n"
        f"Content-Type: {JSON}\r\nAuthorization: Bearer {front_door.device_token}\r\n"
    )
    if framing in ("both", "length"):
        head += f"Content-Length: {0 if framing == 'both' else len(body)}\r\n"
    if framing in ("both", "chunked"):
        head += "Transfer-Encoding: chunked\r\n"
        payload = f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n"
    else:
        payload = body
    before = front_door.event_count()

    reply, peer_closed = await asyncio.to_thread(
        _raw_exchange,
        front_door.http_address,
        head.encode() + b"\r\n" + payload,
        closed,
    )

    assert reply.startswith(f"HTTP/1.1 {status} ".encode())
    assert peer_closed is closed
    assert front_door.event_count() == before + (1 if status == 200 else 0)
    if status == 400:
        message = json.loads(reply.partition(b"\r\n\r\n")[2])["message"]
        assert message == (
            "malformed HTTP request: http1.content_length_and_chunked_not_allowed"
        )
