"""Readings without a value: stored as NULL, read back as points with no value."""

from __future__ import annotations

import asyncio
import json
import math

import grpc
import pytest
from google.api import httpbody_pb2
from google.protobuf import timestamp_pb2

from aetus.ingest.v1 import ingest_service_pb2
from aetus.query.v1 import query_service_pb2, query_service_pb2_grpc
from aetus.server.records import ValueType
from aetus.server.store import PointPage
from aetus.server.testing import bearer

JSON = "application/json"
PROTOBUF = "application/x-protobuf"
T0 = "2024-05-01T12:00:0{}Z"


def reading(sequence: int, second: int, **value: object) -> dict[str, object]:
    """Build one JSON event with one metric ``t``; ``value`` sets its value field."""
    return {
        "deviceId": "dev-01",
        "bootId": "boot-1",
        "sequence": str(sequence),
        "time": T0.format(second),
        "metrics": {"metrics": [{"name": "t", "unit": "degC", **value}]},
    }


async def post_json(ingest, device, text: str) -> httpbody_pb2.HttpBody:
    return await ingest.IngestHttpBody(
        httpbody_pb2.HttpBody(content_type=JSON, data=text.encode()),
        metadata=device.metadata,
    )


async def stored(server, name: str) -> PointPage:
    stream = await asyncio.to_thread(server.store.find_stream, "dev-01", name)
    assert stream is not None, f"stream {name} was not stored"
    return await asyncio.to_thread(server.store.read_points, stream, 0, 2**63 - 1)


async def test_missing_reading_json_null_and_omitted(server, ingest, device) -> None:
    events = [
        reading(5, 0, doubleValue=21.0),
        reading(6, 1, doubleValue=None),
        reading(7, 2),
        reading(8, 3, doubleValue=0),
        reading(9, 4, doubleValue="NaN"),
    ]

    reply = await post_json(ingest, device, json.dumps({"events": events}))

    assert json.loads(reply.data)["acceptedCount"] == 5
    page = await stored(server, "t")
    assert page.missing.tolist() == [False, True, True, False, False]
    assert page.values[0] == 21.0
    assert page.values[3] == 0.0
    assert math.isnan(page.values[4])
    stream = await asyncio.to_thread(server.store.find_stream, "dev-01", "t")
    assert stream.value_type == ValueType.DOUBLE
    assert stream.point_count == 5


async def test_missing_reading_protobuf_keeps_siblings(
    server, ingest, device, events
) -> None:
    first = events.metrics(1, temp=21.5)
    first.metrics.metrics.add(name="count", int_value=5)
    second = events.metrics(2, temp=22.0)
    second.metrics.metrics.add(name="count")
    second.metrics.metrics.add(name="rh", unit="%")
    request = ingest_service_pb2.IngestEventsRequest(events=[first, second])

    response = await ingest.IngestEvents(request, metadata=device.metadata)

    assert response.accepted_count == 2
    temp = await stored(server, "temp")
    assert temp.values.tolist() == [21.5, 22.0]
    assert temp.missing.tolist() == [False, False]
    count = await stored(server, "count")
    assert count.values[0] == 5
    assert count.missing.tolist() == [False, True]
    rh = await stored(server, "rh")
    assert rh.missing.tolist() == [True]
    streams = await asyncio.to_thread(server.store.list_streams, "dev-01")
    types = {stream.name: stream.value_type for stream in streams}
    assert types == {
        "count": ValueType.INT64,
        "rh": ValueType.DOUBLE,
        "temp": ValueType.DOUBLE,
    }


async def test_missing_reading_takes_stored_type(
    server, ingest, device, events
) -> None:
    flag = events.metrics(1)
    flag.metrics.metrics[0].ClearField("double_value")
    flag.metrics.metrics.add(name="door", bool_value=True)
    await ingest.IngestEvents(
        ingest_service_pb2.IngestEventsRequest(events=[flag]), metadata=device.metadata
    )
    later = events.metrics(2)
    del later.metrics.metrics[:]
    later.metrics.metrics.add(name="door")
    later.metrics.metrics.add(name="temp", unit="degC", string_value="warming")

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await ingest.IngestEvents(
            ingest_service_pb2.IngestEventsRequest(events=[later]),
            metadata=device.metadata,
        )

    # temp was created as double by its missing reading, so a string is a
    # conflict, while door's missing reading fits its stored bool type.
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "metric 'temp' is stored as double" in raised.value.details()
    door = await stored(server, "door")
    assert door.values.tolist() == [1]
    assert door.missing.tolist() == [False]
    later.metrics.metrics[1].ClearField("string_value")
    await ingest.IngestEvents(
        ingest_service_pb2.IngestEventsRequest(events=[later]), metadata=device.metadata
    )
    door = await stored(server, "door")
    assert door.missing.tolist() == [False, True]
    stream = await asyncio.to_thread(server.store.find_stream, "dev-01", "door")
    assert stream.value_type == ValueType.BOOL


@pytest.mark.parametrize("token", ["NaN", "nan"])
async def test_missing_reading_bare_nan_rejected(
    server, ingest, device, token: str
) -> None:
    good = json.dumps(reading(5, 0, doubleValue=21.0))
    bad = json.dumps(reading(6, 1, doubleValue="PLACEHOLDER"))
    text = '{"events": [' + good + ", " + bad.replace('"PLACEHOLDER"', token) + "]}"

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await post_json(ingest, device, text)

    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert f"invalid JSON at byte {text.index(token)}" in raised.value.details()
    streams = await asyncio.to_thread(server.store.list_streams, "dev-01")
    assert streams == []


def stamp(text: str) -> timestamp_pb2.Timestamp:
    result = timestamp_pb2.Timestamp()
    result.FromJsonString(text)
    return result


async def test_missing_reading_read_back(server, channel, ingest, device) -> None:
    values = [{"doubleValue": 5}, {}, {"doubleValue": 0}, {"doubleValue": 7}]
    events = [reading(i, i, **value) for i, value in enumerate(values)]
    await post_json(ingest, device, json.dumps({"events": events}))
    query = query_service_pb2_grpc.QueryServiceStub(channel)
    admin = bearer(server.admin_token)

    raw = await query.ReadStream(
        query_service_pb2.ReadStreamRequest(device_id="dev-01", stream="t"),
        metadata=admin,
    )
    buckets = await query.ReadStream(
        query_service_pb2.ReadStreamRequest(
            device_id="dev-01",
            stream="t",
            mode=query_service_pb2.READ_MODE_ENVELOPE,
            calendar_unit=query_service_pb2.CALENDAR_UNIT_DAY,
        ),
        metadata=admin,
    )

    points = raw.series[0].points
    assert [p.WhichOneof("value") for p in points] == [
        "double_value",
        None,
        "double_value",
        "double_value",
    ]
    assert [p.double_value for p in points] == [5.0, 0.0, 0.0, 7.0]
    assert [p.gap for p in points] == [False] * 4
    assert points[1].time == stamp(T0.format(1))
    bucket = buckets.series[0].buckets[0]
    assert bucket.count == 4
    assert bucket.min == 0.0
    assert bucket.max == 7.0
    assert bucket.first == 5.0
    assert bucket.last == 7.0
    assert bucket.mean == 4.0
