"""IngestHttpBody over real gRPC: protobuf and JSON bodies, strict JSON rules."""

from __future__ import annotations

import asyncio
import json
import math

import grpc
import pytest
from google.api import httpbody_pb2

from aetus.ingest.v1 import ingest_service_pb2, ingest_service_pb2_grpc
from aetus.server.app import RunningServer
from aetus.server.testing import bearer, running_server

JSON = "application/json"
PROTOBUF = "application/x-protobuf"


def _event(sequence: int, time: str, **value: object) -> dict[str, object]:
    metric = {"name": f"m{sequence}", "unit": "V", **(value or {"doubleValue": 1.5})}
    return {
        "deviceId": "dev-01",
        "bootId": "boot-1",
        "sequence": str(sequence),
        "time": time,
        "timeSource": "TIME_SOURCE_SYNCED",
        "metrics": {"metrics": [metric]},
    }


def _body(*events: dict[str, object]) -> bytes:
    return json.dumps({"events": list(events)}).encode()


async def _post(ingest, device, data: bytes, content_type: str = JSON):
    return await ingest.IngestHttpBody(
        httpbody_pb2.HttpBody(content_type=content_type, data=data),
        metadata=device.metadata,
    )


async def _rejected(ingest, device, data: bytes) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await _post(ingest, device, data)
    return raised.value


async def _points(server: RunningServer, name: str) -> tuple[list[int], list[float]]:
    stream = await asyncio.to_thread(server.store.find_stream, "dev-01", name)
    assert stream is not None, f"stream {name} was not stored"
    page = await asyncio.to_thread(server.store.read_points, stream, 0, 2**63 - 1)
    return [int(t) for t in page.time_ns], [float(v) for v in page.values]


async def _stream_names(server: RunningServer) -> list[str]:
    streams = await asyncio.to_thread(server.store.list_streams, "dev-01")
    return [stream.name for stream in streams]


async def test_http_body_json_reply_is_json(ingest, device) -> None:
    reply = await _post(ingest, device, _body(_event(1, "2024-05-01T12:00:00Z")))

    assert reply.content_type == JSON
    decoded = json.loads(reply.data)
    assert decoded["acceptedCount"] == 1
    assert decoded["duplicateCount"] == 0
    assert decoded["commitTime"].endswith("Z")


async def test_http_body_protobuf_reply_is_protobuf(ingest, device, events) -> None:
    request = ingest_service_pb2.IngestEventsRequest(events=[events.metrics(1)])

    reply = await _post(ingest, device, request.SerializeToString(), PROTOBUF)

    assert reply.content_type == PROTOBUF
    response = ingest_service_pb2.IngestEventsResponse.FromString(reply.data)
    assert response.accepted_count == 1
    assert response.duplicate_count == 0


async def test_http_body_rejects_other_content_type(ingest, device) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await _post(ingest, device, b"a,b", "text/csv")

    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert raised.value.details() == (
        "content type 'text/csv' is not supported; send application/x-protobuf "
        "or application/json"
    )


async def test_http_body_rejects_framed_protobuf(ingest, device, events) -> None:
    message = ingest_service_pb2.IngestEventsRequest(events=[events.metrics(1)])
    payload = message.SerializeToString()
    framed = b"\x00" + len(payload).to_bytes(4, "big") + payload

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await _post(ingest, device, framed, PROTOBUF)

    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "5-byte gRPC frame header" in raised.value.details()


async def test_http_body_stores_float_specials(server, ingest, device) -> None:
    time = "2024-05-01T12:00:00Z"
    body = _body(
        _event(1, time, doubleValue="NaN"),
        _event(2, time, doubleValue="Infinity"),
        _event(3, time, doubleValue="-Infinity"),
    )

    reply = await _post(ingest, device, body)

    assert json.loads(reply.data)["acceptedCount"] == 3
    _, nan_values = await _points(server, "m1")
    _, inf_values = await _points(server, "m2")
    _, minus_values = await _points(server, "m3")
    assert len(nan_values) == 1
    assert math.isnan(nan_values[0])
    assert inf_values == [math.inf]
    assert minus_values == [-math.inf]


@pytest.mark.parametrize(
    ("literal", "message"),
    [
        pytest.param(
            '"nan"',
            "events[1].metrics.metrics[0].double_value: invalid number 'nan'; send "
            'a JSON number or one of the strings "NaN", "Infinity" and "-Infinity"',
            id="nan-lower-case",
        ),
        pytest.param(
            '"inf"',
            "events[1].metrics.metrics[0].double_value: invalid number 'inf'; send "
            'a JSON number or one of the strings "NaN", "Infinity" and "-Infinity"',
            id="inf-short",
        ),
        pytest.param(
            "NaN",
            "invalid JSON at byte {offset}: the bare token NaN is not JSON; send the "
            'string "NaN", or null for a missing value',
            id="bare-nan",
        ),
        pytest.param(
            "1e400",
            "events[1].metrics.metrics[0].double_value: the number is beyond the "
            'range of a double; send "Infinity" or "-Infinity" as a string if you '
            "mean infinity",
            id="overflow",
        ),
    ],
)
async def test_http_body_rejects_bad_float(
    server, ingest, device, literal: str, message: str
) -> None:
    good = json.dumps(_event(1, "2024-05-01T12:00:00Z"))
    bad = json.dumps(_event(2, "2024-05-01T12:00:00Z", doubleValue="PLACEHOLDER"))
    bad = bad.replace('"PLACEHOLDER"', literal)
    text = '{"events": [' + good + ", " + bad + "]}"

    error = await _rejected(ingest, device, text.encode())

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == message.format(offset=text.index(literal))
    assert await _stream_names(server) == []


async def test_http_body_stores_float_specials_from_protobuf(
    server, ingest, device, events
) -> None:
    event = events.metrics(1, temp=math.nan)
    request = ingest_service_pb2.IngestEventsRequest(events=[event])

    await _post(ingest, device, request.SerializeToString(), PROTOBUF)

    _, values = await _points(server, "temp")
    assert len(values) == 1
    assert math.isnan(values[0])


@pytest.mark.parametrize(
    ("text", "expected_ns"),
    [
        pytest.param(
            "2024-03-31T02:30:00.123456789+05:45",
            1_711_831_500_123_456_789,
            id="offset-0545-nanoseconds",
        ),
        pytest.param(
            "2024-11-03T01:30:00-04:00", 1_730_611_800_000_000_000, id="offset-0400"
        ),
        pytest.param(
            "2024-05-01T12:00:00.1Z", 1_714_564_800_100_000_000, id="one-digit"
        ),
        pytest.param(
            "2024-05-01t12:00:00.5z", 1_714_564_800_500_000_000, id="lower-case"
        ),
    ],
)
async def test_http_body_stores_exact_timestamps(
    server, ingest, device, text: str, expected_ns: int
) -> None:
    await _post(ingest, device, _body(_event(1, text)))

    times, _ = await _points(server, "m1")
    assert times == [expected_ns]


async def test_http_body_requires_timezone_offset(server, ingest, device) -> None:
    error = await _rejected(ingest, device, _body(_event(1, "2024-05-01T12:00:00")))

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == "events[0].time: timezone offset required"
    assert await _stream_names(server) == []


async def test_http_body_rejects_long_fraction(ingest, device) -> None:
    text = "2024-05-01T12:00:00.1234567891Z"

    error = await _rejected(ingest, device, _body(_event(1, text)))

    assert error.details() == (
        f"events[0].time: 10 fractional digits in {text!r}; send at most 9"
    )


async def test_http_body_rejects_unknown_enum_name(server, ingest, device) -> None:
    event = _event(1, "2024-05-01T12:00:00Z")
    event["timeSource"] = "BAD"

    error = await _rejected(ingest, device, _body(event))

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == (
        "events[0].time_source: invalid enum value 'BAD' for TimeSource; use one "
        "of TIME_SOURCE_UNSPECIFIED, TIME_SOURCE_SYNCED, TIME_SOURCE_UPTIME"
    )
    assert await _stream_names(server) == []


async def test_http_body_rejects_undeclared_enum_number(server, ingest, device) -> None:
    event = _event(1, "2024-05-01T12:00:00Z")
    del event["metrics"]
    event["alert"] = {"code": "SENSOR_TIMEOUT", "severity": 7}

    error = await _rejected(ingest, device, _body(event))

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == (
        "events[0].alert.severity: 7 is not a declared Severity value; use "
        "SEVERITY_INFO (1), SEVERITY_WARNING (2), SEVERITY_ERROR (3) or "
        "SEVERITY_CRITICAL (4)"
    )
    row = await asyncio.to_thread(server.store.get_device, "dev-01")
    assert row is not None
    assert row.event_count == 0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(
            '{"events": [{"deviceId": "dev-01", "colour": 1}]}',
            "events[0].colour: unknown field of Event; the fields are device_id, "
            "boot_id, sequence, uptime_ms, time, time_source, firmware_version, "
            "metrics, signal_frame, status, alert, metric_columns",
            id="unknown-field",
        ),
        pytest.param(
            '{"events": [], "events": []}',
            "duplicate key 'events' in one JSON object; send each field once",
            id="duplicate-key",
        ),
        pytest.param(
            '{"events": [{"deviceId": "dev-01",}]}',
            "invalid JSON at byte 34 (line 1, column 35): Expecting property name "
            "enclosed in double quotes",
            id="syntax",
        ),
        pytest.param(
            '{"events": [{"sequence": "18446744073709551616"}]}',
            "events[0].sequence: 18446744073709551616 is out of range for uint64 "
            "(0 to 18446744073709551615)",
            id="uint64-overflow",
        ),
        pytest.param(
            '{"events": [{"metrics": {}, "status": {}}]}',
            "events[0]: body has both metrics and status; set exactly one",
            id="two-bodies",
        ),
        pytest.param(
            "[]",
            "body: expected a JSON object, got an array",
            id="not-an-object",
        ),
    ],
)
async def test_http_body_rejects_malformed_json(
    ingest, device, text: str, message: str
) -> None:
    error = await _rejected(ingest, device, text.encode())

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == message


@pytest.mark.parametrize("sequence", [None, "absent"])
async def test_http_body_requires_sequence(server, ingest, device, sequence) -> None:
    second = _event(2, "2024-05-01T12:00:01Z")
    if sequence == "absent":
        del second["sequence"]
    else:
        second["sequence"] = sequence

    error = await _rejected(
        ingest, device, _body(_event(1, "2024-05-01T12:00:00Z"), second)
    )

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == (
        "events[1].sequence: missing; number the events of each boot from 0 "
        "(0, 1, 2, ...) so that the server recognises a retried event, because "
        "events of one boot with the same sequence are stored once"
    )
    assert await _stream_names(server) == []


async def test_http_body_limits_body_size(tmp_path, events) -> None:
    async with (
        running_server(tmp_path, max_request_bytes=100) as running,
        grpc.aio.insecure_channel(running.address) as channel,
    ):
        stub = ingest_service_pb2_grpc.IngestServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await stub.IngestHttpBody(
                httpbody_pb2.HttpBody(content_type=JSON, data=b" " * 101),
                metadata=bearer(running.admin_token),
            )

    assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert raised.value.details() == (
        "request body of 101 bytes exceeds the limit of 100 bytes "
        "(AETUS_MAX_REQUEST_BYTES); split the batch"
    )
